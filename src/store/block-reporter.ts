// What the DNS path tells about a query worth keeping: every policy match (counted by category,
// logged at info, written to the block log with the rule and list version that decided), and with
// store.logQueries: all, every allowed query. Also rate-limits the warning about clients outside
// dns.allowClients.

import type { Logger } from 'pino'
import type { StoreConfig } from '../config/types.js'
import type { DnsMetrics } from '../dns/metrics.js'
import type { QueryContext } from '../dns/pipeline.js'
import type { Engine, Verdict } from '../policy/engine.js'
import type { FirewallHit } from '../learn/types.js'
import type { BlockLog } from './block-log.js'
import { firewallEvent, firewallLogFields } from './firewall-event.js'

export interface BlockReporterDeps {
  readonly log: Logger
  readonly now: () => number
  readonly metrics: DnsMetrics
  /** The block-log writer; undefined while the store is unavailable. */
  readonly blockLog: () => BlockLog | undefined
  /** store.logQueries in force (a reload may change it). */
  readonly logQueries: () => StoreConfig['logQueries']
  /** The version (content hash) of `list` in the engine that decided. */
  readonly listHash: (engine: Engine, list: string) => string | undefined
  /** The policy in force (a firewall event's client group). */
  readonly engine: () => Engine | undefined
  /** The name a learned address was learned from. */
  readonly learnedName: (address: string) => string | undefined
}

export class BlockReporter {
  /** Firewall hits dropped because their set tag named no set the reader knows (for /metrics), and their attempts. */
  readonly firewallUnknownSet = { hits: 0, attempts: 0 }
  readonly #deps: BlockReporterDeps

  constructor (deps: BlockReporterDeps) {
    this.#deps = deps
  }

  /** A policy match: counted, logged at info (one line per blocked or monitored query), stored. */
  report (ctx: QueryContext, v: Verdict): void {
    const { log, metrics } = this.#deps
    const byCategory = v.action === 'monitor' ? metrics.monitoredByCategory : metrics.blockedByCategory
    byCategory.set(v.category, (byCategory.get(v.category) ?? 0) + 1)
    const logged = log.isLevelEnabled('info')
    const blockLog = this.#deps.blockLog()
    const stored = blockLog !== undefined && this.#deps.logQueries() !== 'none'
    if (!logged && !stored) return
    // Where the rule came from, looked up in the snapshot that decided (only when it is shown).
    const { list, line, rule } = ctx.engine.rule(v.ruleId)
    if (logged) {
      log.info({
        client: ctx.client, group: v.group, qname: ctx.q.qname, qtype: ctx.q.qtype, action: v.action, category: v.category,
        matched: v.matched, value: v.value, rule, list, line
      }, v.action === 'monitor' ? 'would block (monitor)' : 'blocked')
    }
    if (!stored) return
    blockLog.push({
      ts: this.#deps.now(), client: ctx.client, group: v.group, qname: ctx.q.qname, qtype: ctx.q.qtype, matched: v.matched, value: v.value,
      category: v.category, action: v.action, list, line, rule, listHash: this.#deps.listHash(ctx.engine, list)
    })
  }

  /**
   * A connection the firewall rejected (evidence.ts, already rate-limited per client and
   * destination): counted by category, logged at info, stored as a `matched: firewall` event.
   */
  firewall (hit: FirewallHit): void {
    if (hit.category === undefined || hit.set === undefined) {
      // A set the reader does not know (a table rendered with categories it was not told of): counted, not stored.
      this.firewallUnknownSet.hits++
      this.firewallUnknownSet.attempts += hit.attempts
      return
    }
    const { log, metrics } = this.#deps
    metrics.firewallByCategory.set(hit.category, (metrics.firewallByCategory.get(hit.category) ?? 0) + hit.attempts)
    const group = this.#deps.engine()?.groupOf(hit.client).name ?? 'default'
    const name = hit.set.startsWith('learned_') ? this.#deps.learnedName(hit.destination) : undefined
    const e = firewallEvent(hit, { category: hit.category, set: hit.set, name, group })
    log.info(firewallLogFields(e), 'blocked at the firewall')
    if (this.#deps.logQueries() !== 'none') this.#deps.blockLog()?.push(e)
  }

  /** store.logQueries: all — one event per allowed query, with the rcode the client got and the time taken. */
  observe (ctx: QueryContext, rcode: number, ms: number): void {
    this.#deps.blockLog()?.push({
      ts: this.#deps.now(), client: ctx.client, group: ctx.group.name, qname: ctx.q.qname, qtype: ctx.q.qtype, matched: 'none', value: '',
      category: '', action: 'allow', rcode, latencyMs: ms
    })
  }
}

/**
 * Clients outside dns.allowClients: one warning a minute at most (a flood of spoofed sources must
 * not flood the log), with how many more were refused since the last one. Every refused query is
 * counted in egressd_dns_refused_clients_total by the pipeline.
 */
export class RefusedClientLog {
  readonly #log: Logger
  readonly #now: () => number
  #loggedAt = -Infinity
  #unlogged = 0

  constructor (log: Logger, now: () => number) {
    this.#log = log
    this.#now = now
  }

  refused (client: string, allowClients: readonly string[]): void {
    const t = this.#now()
    if (t - this.#loggedAt < 60_000) {
      this.#unlogged++
      return
    }
    this.#log.warn({ client, otherClientsSinceLastWarning: this.#unlogged, allowClients }, 'refusing queries from a client outside dns.allowClients')
    this.#loggedAt = t
    this.#unlogged = 0
  }
}
