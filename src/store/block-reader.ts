// BlockSearch: the block log's query side as the API uses it. Searches, statistics, the bypass
// and discovery reports run in a reader worker on its own read-only connection, so long queries do not block the
// DNS event loop; results come back as plain data. A QueryError from the worker is rebuilt here,
// so the API can answer 400 naming the parameter.

import type { Worker } from 'node:worker_threads'
import { QueryError, StoreError } from '../errors.js'
import type { BlockFilter } from './block-filter.js'
import type { FromReader, ReaderOp, ReaderWorkerData, ToReader } from './block-search-worker.js'
import type { BlockLog } from './block-log.js'
import type { BypassClient, BypassRequest, Page, PageRequest, Stats, StatsRequest } from './block-search.js'
import type { DiscoveryReport, DiscoveryRequest } from './discovery.js'
import { startWorker } from './worker-url.js'
import type { ThreadPriority } from './thread-priority.js'

export interface BlockReader {
  search (filter: BlockFilter, page: PageRequest): Promise<Page>
  stats (req: StatsRequest): Promise<Stats>
  bypass (req: BypassRequest): Promise<BypassClient[]>
  /** The banned-app discovery report (discovery.ts). */
  discovery (req: DiscoveryRequest): Promise<DiscoveryReport>
  /** Whether the store knows a category (on some event) or group name the policy no longer has (storedFilterValue). */
  stored? (parameter: 'category' | 'group', value: string): Promise<boolean>
  /** The live tail's source; undefined when no writer runs (read-only use). */
  readonly live: Pick<BlockLog, 'subscribe'> | undefined
  /** Milliseconds clock for relative times ('-24h'). */
  readonly now: () => number
}

export class BlockSearch implements BlockReader {
  readonly #worker: Worker
  readonly #waiting = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  #next = 0
  #closed = false
  readonly live: Pick<BlockLog, 'subscribe'> | undefined
  readonly now: () => number

  /** The reader thread's id and nice value, as it set them (or why it could not). */
  readonly priority: ThreadPriority | undefined

  private constructor (worker: Worker, priority: ThreadPriority | undefined, live: Pick<BlockLog, 'subscribe'> | undefined, now: () => number) {
    this.#worker = worker
    this.priority = priority
    this.live = live
    this.now = now
    worker.on('message', (m: FromReader) => {
      if (m.type !== 'result' && m.type !== 'error') return
      const w = this.#waiting.get(m.id)
      if (w === undefined) return
      this.#waiting.delete(m.id)
      if (m.type === 'result') w.resolve(m.value)
      else if (m.parameter !== undefined) w.reject(new QueryError(m.parameter, m.message.replace(`${m.parameter}: `, '')))
      else w.reject(new StoreError('EGRESSD_ERR_STORE', `block log query failed: ${m.code}: ${m.message}`))
    })
    worker.on('error', err => this.#failAll(err))
    worker.on('exit', () => this.#failAll(new StoreError('EGRESSD_ERR_STORE', 'block log reader stopped')))
    worker.unref()
  }

  static open (opts: { path: string, busyTimeoutMs?: number, nice?: number, live?: Pick<BlockLog, 'subscribe'>, now?: () => number }): Promise<BlockSearch> {
    const data: ReaderWorkerData = { path: opts.path, busyTimeoutMs: opts.busyTimeoutMs ?? 5000, nice: opts.nice }
    return startWorker(import.meta.url, 'block-search-worker', data).then(
      ({ worker, ready }) => new BlockSearch(worker, ready.priority, opts.live, opts.now ?? Date.now),
      (err: Error) => { throw new StoreError('EGRESSD_ERR_STORE', err.message, { cause: err }) })
  }

  #call<T> (op: ReaderOp, args: unknown[]): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreError('EGRESSD_ERR_STORE', 'block log reader is closed'))
    const id = ++this.#next
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      if (this.#waiting.size === 1) this.#worker.ref()
      this.#worker.postMessage({ id, op, args } satisfies ToReader)
    }).finally(() => { if (this.#waiting.size === 0) this.#worker.unref() })
  }

  search (filter: BlockFilter, page: PageRequest): Promise<Page> { return this.#call('search', [filter, page]) }
  stats (req: StatsRequest): Promise<Stats> { return this.#call('stats', [req]) }
  bypass (req: BypassRequest): Promise<BypassClient[]> { return this.#call('bypass', [req]) }
  discovery (req: DiscoveryRequest): Promise<DiscoveryReport> { return this.#call('discovery', [req]) }
  stored (parameter: 'category' | 'group', value: string): Promise<boolean> { return this.#call('stored', [parameter, value]) }

  #failAll (err: Error): void {
    for (const w of this.#waiting.values()) w.reject(err)
    this.#waiting.clear()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#worker.postMessage('close')
    await this.#worker.terminate()
  }
}
