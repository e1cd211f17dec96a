// Wires the components together from one Config, starts and stops them in order, and reloads.
// Everything is built here and passed down; nothing is a module-level singleton, so tests can run
// two daemons side by side.

import { spawn } from 'node:child_process'
import type { Logger } from 'pino'
import type { Config } from './config/types.js'
import { AnswerCache } from './dns/cache.js'
import { DnsListener, type BoundAddress } from './dns/listener.js'
import { DnsMetrics } from './dns/metrics.js'
import { createPipeline, type PolicyRef, type QueryContext } from './dns/pipeline.js'
import { UpstreamPool } from './dns/upstream/pool.js'
import { renderNftables } from './firewall/nftables.js'
import { buildEngine, type EngineBuild, type PolicyInputs } from './policy/build.js'
import type { Verdict } from './policy/engine.js'

export interface DaemonDeps {
  readonly log: Logger
  /** Milliseconds clock; injectable so tests control time. */
  readonly now?: () => number
}

export interface ReloadResult { readonly applied: string[], readonly needsRestart: string[] }

/** The nftables script for a config and its compiled lists (enabled categories of the default group). */
export function firewallScript (config: Config, build: EngineBuild, generatedBy: string): string {
  const engine = build.engine
  const enabled = engine.groups[0].enabled
  const categories = engine.categories
    .filter((c, i) => enabled[i] === 1 && !c.name.startsWith('custom:'))
    .map(c => {
      const a = build.addresses.block.get(c.name)
      return { name: c.name, title: c.title, v4: a?.v4 ?? [], v6: a?.v6 ?? [] }
    })
  const exempt = config.blocklists.groups.filter(g => g.exempt).flatMap(g => g.clients)
  return renderNftables({
    config: config.firewall,
    dnsPort: config.dns.listen[0]?.port ?? 53,
    categories,
    allow: build.addresses.allow,
    exempt: { v4: exempt.filter(c => !c.includes(':')), v6: exempt.filter(c => c.includes(':')) },
    generatedBy
  })
}

/** Outcome of the last nftables sync, for status and metrics. */
export interface FirewallSyncState { attempts: number, failures: number, lastError: string | undefined, lastOkAt: number | undefined }

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
  readonly firewall: FirewallSyncState = { attempts: 0, failures: 0, lastError: undefined, lastOkAt: undefined }
  #lastBuild: EngineBuild
  #inputs: PolicyInputs = {}

  /** Builds everything from `config`; throws a PolicyError when the lists cannot be compiled. */
  constructor (config: Config, deps: DaemonDeps) {
    this.#config = config
    this.#log = deps.log
    this.#now = deps.now ?? Date.now
    this.startedAt = this.#now()
    this.#lastBuild = this.#buildPolicy(config)
    this.policy = { engine: this.#lastBuild.engine }
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
    const b = buildEngine(c.blocklists, this.#generation++, this.#inputs)
    const log = this.#log.child({ mod: 'policy' })
    for (const w of b.warnings.slice(0, 50)) log.warn(w)
    if (b.warnings.length > 50) log.warn(`${b.warnings.length - 50} more skipped lines not shown`)
    const stats = b.engine.stats()
    log.info({
      ms: b.ms,
      ...stats,
      skipped: b.warnings.length,
      lists: b.lists.map(l => `${l.list}: ${l.rules} rules${l.skipped > 0 ? `, ${l.skipped} lines skipped` : ''}`),
      enabled: b.engine.categories.filter(x => x.enabled).map(x => x.name),
      groups: b.engine.groups.map(g => g.name)
    }, 'policy loaded')
    return b
  }

  /**
   * Replaces some run-time policy inputs (custom rules from the store, downloaded list copies),
   * builds a new engine and swaps it in one step; queries in flight finish on the old one. Throws a
   * PolicyError (and changes nothing) when the new lists do not compile.
   */
  updatePolicyInputs (patch: PolicyInputs, reason: string): EngineBuild {
    const previous = this.#inputs
    this.#inputs = { ...previous, ...patch }
    let b: EngineBuild
    try {
      b = this.#buildPolicy(this.#config)
    } catch (err) {
      this.#inputs = previous
      throw err
    }
    this.#lastBuild = b
    this.policy.engine = b.engine
    this.#log.info({ reason, generation: b.engine.generation, ms: b.ms }, 'policy swapped')
    void this.#syncFirewall()
    return b
  }

  /** The last compiled policy (engine, address sets, per-list counts). */
  get policyBuild (): EngineBuild { return this.#lastBuild }

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
    this.#syncFirewall()
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
    this.#lastBuild = policy
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
    this.#syncFirewall()
    if (needsRestart.length > 0) this.#log.warn({ needsRestart }, 'some changes take effect only after a restart')
    return { applied, needsRestart }
  }

  /**
   * With firewall.sync on, applies the nftables script (`nft -f -`, one transaction). Runs beside
   * DNS: a failure (no nft, no CAP_NET_ADMIN, a kernel without a feature) is logged and counted,
   * never fatal.
   */
  #syncFirewall (): Promise<void> {
    if (!this.#config.firewall.sync) return Promise.resolve()
    const script = firewallScript(this.#config, this.#lastBuild, `egressd sync, generation ${this.#lastBuild.engine.generation}`)
    const state = this.firewall
    state.attempts++
    const log = this.#log.child({ mod: 'firewall' })
    return new Promise(resolve => {
      const nft = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] })
      let err = ''
      nft.stderr.on('data', d => { err += String(d) })
      nft.on('error', e => { err += e.message })
      nft.on('close', code => {
        if (code === 0) {
          state.lastOkAt = this.#now()
          state.lastError = undefined
          log.info({ table: this.#config.firewall.table }, 'nftables rules applied')
        } else {
          state.failures++
          state.lastError = err.trim().split('\n').slice(0, 5).join(' | ') || `nft exited with ${String(code)}`
          log.error({ err: state.lastError }, 'nftables sync failed; DNS filtering goes on')
        }
        resolve()
      })
      nft.stdin.on('error', () => {})
      nft.stdin.end(script)
    })
  }

  /** Stops accepting queries, lets in-flight ones finish (bounded), then releases everything. */
  async close (): Promise<void> {
    await this.#listener.close(this.#config.dns.shutdownGraceMs)
    this.#pool.close()
    this.#log.info('egressd stopped')
  }
}
