// Wires the components together from one Config, starts and stops them in order, and reloads.
// Everything is built here and passed down; nothing is a module-level singleton, so tests can run
// two daemons side by side.

import type { Logger } from 'pino'
import type { Config } from './config/types.js'
import { AnswerCache } from './dns/cache.js'
import { DnsListener, type BoundAddress } from './dns/listener.js'
import { DnsMetrics } from './dns/metrics.js'
import { createPipeline } from './dns/pipeline.js'
import { UpstreamPool } from './dns/upstream/pool.js'

export interface DaemonDeps {
  readonly log: Logger
  /** Milliseconds clock; injectable so tests control time. */
  readonly now?: () => number
}

export interface ReloadResult { readonly applied: string[], readonly needsRestart: string[] }

export class Daemon {
  readonly metrics = new DnsMetrics()
  readonly #log: Logger
  readonly #now: () => number
  #config: Config
  #cache: AnswerCache
  #pool: UpstreamPool
  readonly #listener: DnsListener
  #addresses: BoundAddress[] = []
  readonly startedAt: number

  constructor (config: Config, deps: DaemonDeps) {
    this.#config = config
    this.#log = deps.log
    this.#now = deps.now ?? Date.now
    this.startedAt = this.#now()
    this.#cache = new AnswerCache({ maxEntries: config.cache.maxEntries, now: this.#now })
    this.#pool = this.#newPool(config)
    this.#listener = new DnsListener({ dns: config.dns, log: deps.log, metrics: this.metrics }, this.#newPipeline())
  }

  get config (): Config { return this.#config }
  get cache (): AnswerCache { return this.#cache }
  get pool (): UpstreamPool { return this.#pool }
  /** Where the DNS listeners are bound (ports resolved when the config asked for port 0). */
  get addresses (): readonly BoundAddress[] { return this.#addresses }

  #newPool (c: Config): UpstreamPool {
    return new UpstreamPool({
      upstreams: c.upstreams,
      udpSockets: c.dns.udpSockets,
      ednsUdpSize: c.dns.ednsUdpSize,
      ttl: c.cache,
      log: this.#log,
      metrics: this.metrics,
      now: this.#now
    })
  }

  #newPipeline (): ReturnType<typeof createPipeline> {
    return createPipeline({ dns: this.#config.dns, cache: this.#config.cache, answers: this.#cache, pool: this.#pool, metrics: this.metrics, now: this.#now })
  }

  async start (): Promise<void> {
    this.#addresses = await this.#listener.start()
    this.#log.info({ upstreams: this.#config.upstreams.map(u => u.url), config: this.#config.source }, 'egressd started')
  }

  /**
   * Applies a new, already validated config: upstreams, cache and DNS settings take effect for the
   * next query; listen addresses and TCP limits need a restart and are reported as such.
   */
  reload (next: Config): ReloadResult {
    const prev = this.#config
    const applied: string[] = []
    const needsRestart: string[] = []
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
    if (!same(prev.dns.listen, next.dns.listen)) needsRestart.push('dns.listen')
    if (!same(prev.dns.tcp, next.dns.tcp)) needsRestart.push('dns.tcp')
    this.#config = next
    if (!same(prev.upstreams, next.upstreams) || !same(prev.dns, next.dns) || !same(prev.cache, next.cache)) {
      const old = this.#pool
      this.#pool = this.#newPool(next)
      if (!same(prev.cache, next.cache)) {
        this.#cache = new AnswerCache({ maxEntries: next.cache.maxEntries, now: this.#now })
        applied.push('cache')
      }
      this.#listener.serve = this.#newPipeline()
      // Queries already waiting on the old pool finish there; close it once they had their time.
      setTimeout(() => old.close(), Math.max(...prev.upstreams.map(u => u.timeoutMs)) * prev.upstreams.length + 1000).unref()
      if (!same(prev.upstreams, next.upstreams)) applied.push('upstreams')
      if (!same(prev.dns, next.dns)) applied.push('dns')
    }
    if (prev.log.level !== next.log.level) {
      this.#log.level = next.log.level
      applied.push('log.level')
    }
    this.#log.info({ applied, needsRestart, config: next.source }, 'config reloaded')
    if (needsRestart.length > 0) this.#log.warn({ needsRestart }, 'some changes take effect only after a restart')
    return { applied, needsRestart }
  }

  /** Stops accepting queries, lets in-flight ones finish (bounded), then releases everything. */
  async close (): Promise<void> {
    await this.#listener.close(this.#config.dns.shutdownGraceMs)
    this.#pool.close()
    this.#log.info('egressd stopped')
  }
}
