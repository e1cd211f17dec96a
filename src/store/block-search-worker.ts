// The block log's reader thread: a read-only connection that runs searches and statistics, so a
// query reading a few hundred thousand rows never stalls the DNS event loop. Requests are
// answered in order, one at a time.

import { parentPort, workerData } from 'node:worker_threads'
import { openDatabase } from './db.js'
import { blockStats, bypassClients, searchBlocks, storedFilterValue } from './block-search.js'
import { discoveryReport } from './discovery.js'
import { setThreadNice } from './thread-priority.js'
import type { WorkerReady } from './worker-url.js'

export interface ReaderWorkerData {
  readonly path: string
  readonly busyTimeoutMs: number
  /** CPU priority for this thread (store.threadNice); left alone when undefined. */
  readonly nice?: number
}
export type ReaderOp = 'search' | 'stats' | 'bypass' | 'stored' | 'discovery'
export interface ToReader { readonly id: number, readonly op: ReaderOp, readonly args: readonly unknown[] }
export type FromReader =
  | WorkerReady
  | { readonly type: 'fatal', readonly message: string }
  | { readonly type: 'result', readonly id: number, readonly value: unknown }
  | { readonly type: 'error', readonly id: number, readonly name: string, readonly code: string, readonly message: string, readonly parameter?: string }

const port = parentPort
if (port === null) throw new Error('block-search-worker must run in a worker thread')
const data = workerData as ReaderWorkerData
const post = (m: FromReader): void => port.postMessage(m)

let db: ReturnType<typeof openDatabase>
try {
  db = openDatabase(data.path, { readonly: true, busyTimeoutMs: data.busyTimeoutMs })
  db.pragma('cache_size = -65536')
  post({ type: 'ready', priority: data.nice === undefined ? undefined : setThreadNice(data.nice) })
} catch (err) {
  post({ type: 'fatal', message: (err as Error).message })
  process.exit(1)
}

const ops = {
  search: searchBlocks,
  stats: blockStats,
  bypass: bypassClients,
  stored: storedFilterValue,
  discovery: discoveryReport
} as Record<ReaderOp, (...a: unknown[]) => unknown>

port.on('message', (m: ToReader | 'close') => {
  if (m === 'close') { db.close(); port.close(); return }
  try {
    post({ type: 'result', id: m.id, value: ops[m.op](db, ...m.args) })
  } catch (err) {
    const e = err as { name?: string, code?: string, message?: string, parameter?: string }
    post({ type: 'error', id: m.id, name: e.name ?? 'Error', code: String(e.code ?? 'ERR'), message: e.message ?? String(err), parameter: e.parameter })
  }
})
