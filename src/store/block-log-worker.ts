// The block-log writer thread: holds its own connection and writes what the DNS thread queued, one
// transaction per batch, so no SQL ever runs on the DNS event loop. Also runs retention in small
// steps and WAL checkpoints when asked. Purely reactive: the DNS-thread side (block-log.ts) owns
// the queue, the timers and the clock, and decides about retries.

import { parentPort, workerData } from 'node:worker_threads'
import { openDatabase, type Db } from './db.js'
import { EventWriter, runRetention, type RetentionLimits } from './block-writer.js'
import type { EventBatch } from './event-batch.js'
import { setThreadNice, threadTimes } from './thread-priority.js'
import { threadCpu } from './thread-cpu.js'
import type { WorkerReady } from './worker-url.js'

export interface WriterWorkerData {
  readonly path: string
  readonly synchronous: 'NORMAL' | 'FULL'
  readonly busyTimeoutMs: number
  /** CPU priority for this thread (store.threadNice); left alone when undefined. */
  readonly nice?: number
  /** Tests: cap the file (PRAGMA max_page_count) to provoke SQLITE_FULL. */
  readonly maxPageCount?: number
  /** Tests: the thread dies on every write, as a writer with a bug would. */
  readonly crashOnWrite?: boolean
}

export type ToWriter =
  | { readonly type: 'write', readonly seq: number, readonly batch: EventBatch }
  | { readonly type: 'retain', readonly now: number, readonly limits: RetentionLimits }
  | { readonly type: 'checkpoint' }
  | { readonly type: 'pragma', readonly sql: string }
  /** Tests: the thread dies now. */
  | { readonly type: 'crash' }
  | { readonly type: 'close' }

export type FromWriter =
  | WorkerReady
  | { readonly type: 'fatal', readonly code: string, readonly message: string }
  /** `ms`: wall time of the write; `cpuMs`/`waitMs`: on a CPU / runnable but waiting for one (-1: unknown); `cpu`: the CPU it ended on (-1: unknown). */
  | { readonly type: 'written', readonly seq: number, readonly n: number, readonly ms: number, readonly cpuMs: number, readonly waitMs: number, readonly cpu: number }
  | { readonly type: 'failed', readonly seq: number, readonly code: string, readonly message: string, readonly ms: number, readonly cpuMs: number, readonly waitMs: number, readonly cpu: number }
  | { readonly type: 'retained', readonly deleted: number, readonly names: number, readonly overBytes: number, readonly ms: number }
  | { readonly type: 'retain-failed', readonly code: string, readonly message: string }
  | { readonly type: 'closed' }

const port = parentPort
if (port === null) throw new Error('block-log-worker must run in a worker thread')
const data = workerData as WriterWorkerData
const post = (m: FromWriter): void => port.postMessage(m)
const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' || typeof code === 'number' ? String(code) : 'ERR'
}

let db: Db
let writer: EventWriter
try {
  db = openDatabase(data.path, { synchronous: data.synchronous, busyTimeoutMs: data.busyTimeoutMs, check: false })
  // A bigger page cache for the writer: index pages of recent rows stay hot.
  db.pragma('cache_size = -65536')
  // Checkpoint every ~40 MiB of WAL instead of ~4 MiB (bulk writes copy pages less often); the
  // periodic PASSIVE checkpoint and journal_size_limit keep the file bounded.
  db.pragma('wal_autocheckpoint = 10000')
  if (data.maxPageCount !== undefined) db.pragma(`max_page_count = ${data.maxPageCount}`)
  writer = new EventWriter(db)
  post({ type: 'ready', priority: data.nice === undefined ? undefined : setThreadNice(data.nice) })
} catch (err) {
  post({ type: 'fatal', code: codeOf(err), message: (err as Error).message })
  process.exit(1)
}

let retaining = false
port.on('message', (m: ToWriter) => {
  switch (m.type) {
    case 'write': {
      if (data.crashOnWrite === true) throw new Error('writer crash on write (tests)')
      const t = performance.now()
      const before = threadTimes()
      const spent = (): { ms: number, cpuMs: number, waitMs: number, cpu: number } => {
        const after = threadTimes()
        const ms = performance.now() - t
        const cpu = threadCpu()
        if (before === undefined || after === undefined) return { ms, cpuMs: -1, waitMs: -1, cpu }
        return { ms, cpuMs: Math.min(ms, (after.cpuNs - before.cpuNs) / 1e6), waitMs: Math.min(ms, (after.waitNs - before.waitNs) / 1e6), cpu }
      }
      try {
        writer.writeBatch(m.batch)
        post({ type: 'written', seq: m.seq, n: m.batch.n, ...spent() })
      } catch (err) {
        post({ type: 'failed', seq: m.seq, code: codeOf(err), message: (err as Error).message, ...spent() })
      }
      break
    }
    case 'retain': {
      if (retaining) break
      retaining = true
      const t = performance.now()
      runRetention(db, m.limits, m.now, () => new Promise(resolve => setImmediate(resolve)), undefined, () => writer.forgetNames()).then(
        r => post({ type: 'retained', deleted: r.events, names: r.names, overBytes: r.overBytes, ms: performance.now() - t }),
        (err: unknown) => post({ type: 'retain-failed', code: codeOf(err), message: (err as Error).message })
      ).finally(() => { retaining = false })
      break
    }
    case 'checkpoint':
      try { db.pragma('wal_checkpoint(PASSIVE)') } catch { /* busy: the next one will do */ }
      break
    case 'pragma':
      try { db.pragma(m.sql) } catch { /* tests only */ }
      break
    case 'crash':
      throw new Error('writer crash (tests)')
    case 'close':
      try { db.pragma('optimize') } catch { /* best effort */ }
      try { db.pragma('wal_checkpoint(TRUNCATE)') } catch { /* best effort */ }
      db.close()
      post({ type: 'closed' })
      port.close()
      break
  }
})
