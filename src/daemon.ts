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
import { buildEngine, type EngineBuild } from './policy/build.js'
import type { Verdict } from './policy/engine.js'
import type { PolicyRef, QueryContext } from './dns/pipeline.js'

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
  /** The policy snapshot queries are decided with; replaced whole on reload. */
  readonly policy: PolicyRef
  #generation = 1

  /** Builds everything from `config`; throws a PolicyError when the lists cannot be compiled. */
  constructor (config: Config, deps: DaemonDeps) {
    this.#config = config
    this.#log = deps.log
    this.#now = deps.now ?? Date.now
    this.startedAt = this.#now()
    this.policy = { engine: this.#buildPolicy(config).engine }
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
    const c = this.#config
    return createPipeline({
      dns: c.dns,
      cache: c.cache,
      blocking: c.blocklists,
      policy: this.policy,
      report: (ctx, v) => this.#report(ctx, v),
      answers: this.#cache,
      pool: this.#pool,
      metrics: this.metrics,
      now: this.#now
    })
  }

  #buildPolicy (c: Config): EngineBuild {
    const b = buildEngine(c.blocklists, this.#generation++)
    const log = this.#log.child({ mod: 'policy' })
    for (const w of b.warnings.slice(0, 50)) log.warn(w)
    if (b.warnings.length > 50) log.warn(`${b.warnings.length - 50} more skipped lines not shown`)
    const stats = b.engine.stats()
    log.info({
      ms: b.ms,
      ...stats,
      skipped: b.warnings.length,
      enabled: b.engine.categories.filter(x => x.enabled).map(x => x.name),
      groups: b.engine.groups.map(g => g.name)
    }, 'policy loaded')
    return b
  }

  /** Every policy match: counted, and logged at info (one line per blocked or monitored query). */
  #report (ctx: QueryContext, v: Verdict): void {
    const byCategory = v.action === 'monitor' ? this.metrics.monitoredByCategory : this.metrics.blockedByCategory
    byCategory.set(v.category, (byCategory.get(v.category) ?? 0) + 1)
    if (this.#log.isLevelEnabled('info')) {
      this.#log.info({
        client: ctx.client, group: v.group, qname: ctx.q.qname, qtype: ctx.q.qtype, action: v.action, category: v.category,
        matched: v.matched, value: v.value, rule: v.rule, list: v.list, line: v.line
      }, v.action === 'monitor' ? 'would block (monitor)' : 'blocked')
    }
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
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
    const applied: string[] = []
    const needsRestart: string[] = []
    if (!same(prev.dns.listen, next.dns.listen)) needsRestart.push('dns.listen')
    if (!same(prev.dns.tcp, next.dns.tcp)) needsRestart.push('dns.tcp')
    // Build everything that can fail first (lists, upstream transports reading CA files); only
    // then change state, so a rejected reload leaves the daemon exactly as it was.
    const policy = this.#buildPolicy(next)
    const poolChanged = !same(prev.upstreams, next.upstreams) || !same(prev.dns, next.dns) || !same(prev.cache, next.cache)
    const pool = poolChanged ? this.#newPool(next) : undefined
    const cache = same(prev.cache, next.cache) ? undefined : new AnswerCache({ maxEntries: next.cache.maxEntries, now: this.#now })

    this.#config = next
    this.policy.engine = policy.engine
    applied.push('blocklists')
    if (pool !== undefined) {
      const old = this.#pool
      this.#pool = pool
      // Queries already waiting on the old pool finish there (each upstream may be asked twice:
      // UDP, then TCP after TC); close it once they had their time.
      const budget = 2 * prev.upstreams.reduce((sum, u) => sum + u.timeoutMs, 0) + 1000
      setTimeout(() => old.close(), budget).unref()
      if (!same(prev.upstreams, next.upstreams)) applied.push('upstreams')
      if (!same(prev.dns, next.dns)) applied.push('dns')
    }
    if (cache !== undefined) {
      this.#cache = cache
      applied.push('cache')
    }
    this.#listener.serve = this.#newPipeline()
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
