// Reloading a running daemon (SIGHUP, POST /api/v1/reload): read the config again, build what can
// fail first (lists, upstream transports), then swap in one step what applies live; restart-only
// changes keep their running values and are reported. Every attempt is counted and audited (who,
// what changed, which tokens came and went, or why it was rejected).

import type { Logger } from 'pino'
import { configChanges, keepRunning, touches, type ReloadCounters, type ReloadTrigger } from './config/reload.js'
import type { ApiToken, Config } from './config/types.js'
import { AnswerCache } from './dns/cache.js'
import type { DnsListener, Serve } from './dns/listener.js'
import type { UpstreamPool } from './dns/upstream/pool.js'
import type { FirewallSync } from './firewall/sync.js'
import type { Learning } from './learn/learning.js'
import type { ListUpdater } from './lists/updater.js'
import { sameLists, type PolicyManager } from './policy/manager.js'
import { ConfigError, PolicyError } from './errors.js'
import type { Actor } from './store/custom-policy.js'
import type { Stores } from './store/stores.js'

/** Who reloads: a signal (actor `signal`) or an API token. */
export interface ReloadBy { readonly trigger: ReloadTrigger, readonly actor: Actor }

/** Token names added, removed, or changed (role or secret) by a reload. */
export interface TokenChanges { readonly added: readonly string[], readonly removed: readonly string[], readonly changed: readonly string[] }

export interface ReloadReport {
  /** applied: something took effect; unchanged: nothing did (restart-only changes may still be pending). */
  readonly status: 'applied' | 'unchanged'
  /** Config slices (dotted paths) that took effect, `blocklists` also when only the list files changed. */
  readonly applied: readonly string[]
  /** Changed slices that keep their running value until a restart. */
  readonly needsRestart: readonly string[]
  readonly tokens: TokenChanges
  readonly generation: number
}

/** The daemon as a reload sees it. */
export interface Reloadable {
  readonly config: Config
  readonly log: Logger
  readonly now: () => number
  readonly reloads: ReloadCounters
  readonly firewallSync: FirewallSync
  readonly parts: { stores: Stores, lists: ListUpdater, policy: PolicyManager, cache: AnswerCache, pool: UpstreamPool, listener: DnsListener, learning: Learning | undefined }
  setConfig: (next: Config) => void
  newPool: (c: Config) => UpstreamPool
  newPipeline: (c: Config) => Serve
}

/**
 * Reloads with the config `load` returns, counts and audits. Throws (ConfigError, PolicyError, an
 * upstream's unreadable CA file, ...), counted and audited as rejected, and changes nothing then.
 */
export function applyReload (d: Reloadable, by: ReloadBy, load: () => Config): ReloadReport {
  const before = { config: d.config.source, generation: d.parts.policy.ref.engine.generation }
  let report: ReloadReport
  try {
    report = reload(d, load())
  } catch (err) {
    d.reloads.counts[by.trigger].rejected++
    const issues = err instanceof ConfigError
      ? err.issues.map(i => `${i.path === '' ? '(file)' : i.path}: ${i.message}`)
      : err instanceof PolicyError ? [...err.problems] : [(err as Error).message]
    audit(d, by, 'config.reload.rejected', before, { issues })
    d.log.error({ trigger: by.trigger, actor: by.actor.name, issues }, `reload rejected, the running config stays: ${issues.length} problem(s)`)
    throw err
  }
  d.reloads.counts[by.trigger][report.status]++
  if (report.status === 'applied') d.reloads.lastAppliedAt = d.now()
  audit(d, by, 'config.reload', before, { config: d.config.source, ...report })
  return report
}

function audit (d: Reloadable, by: ReloadBy, action: string, before: unknown, after: unknown): void {
  try {
    d.parts.stores.customPolicy?.record(by.actor, action, d.config.source, before, after)
  } catch (err) {
    d.log.error({ err, action }, 'could not write the reload to the audit log')
  }
}

function reload (d: Reloadable, file: Config): ReloadReport {
  const prev = d.config
  const parts = d.parts
  const changes = configChanges(prev, file)
  const next = keepRunning(file, prev, changes.restart)
  const live = changes.live
  // Build everything that can fail first (lists, upstream transports reading CA files); only then
  // change state, so a rejected reload leaves the daemon exactly as it was. URL sources may have
  // changed, and `egressd lists update` may have stored new copies: read them.
  parts.lists.reconfigure(next)
  let prepared, pool: UpstreamPool | undefined, cache: AnswerCache | undefined
  try {
    prepared = parts.policy.prepare(next.blocklists, { sourceFiles: parts.lists.files(), sharedRanges: next.firewall.sharedRanges })
    pool = touches(live, 'upstreams') || touches(live, 'dns') || touches(live, 'cache') ? d.newPool(next) : undefined
    cache = touches(live, 'cache') ? new AnswerCache({ maxEntries: next.cache.maxEntries, now: d.now }) : undefined
  } catch (err) {
    pool?.close()
    parts.lists.reconfigure(prev)
    throw err
  }

  const applied = live.filter(p => !p.startsWith('blocklists'))
  const listsChanged = touches(live, 'blocklists') || !sameLists(parts.policy.build, prepared.build) ||
    prev.firewall.sharedRanges.join() !== next.firewall.sharedRanges.join() // the build carries the opted-in ranges
  if (listsChanged) applied.unshift('blocklists')
  d.setConfig(next)
  if (touches(live, 'firewall') || touches(live, 'upstreams')) parts.learning?.reconfigure(next) // the guard's never-block ranges
  if (listsChanged) parts.policy.swap(prepared, 'config reloaded')
  if (pool !== undefined) {
    const old = parts.pool
    parts.pool = pool
    // Queries already waiting on the old pool finish there (each upstream may be asked twice:
    // UDP, then TCP after TC); close it once they had their time.
    const budget = 2 * prev.upstreams.reduce((sum, u) => sum + u.timeoutMs, 0) + 1000
    setTimeout(() => old.close(), budget).unref()
  }
  if (cache !== undefined) parts.cache = cache
  if (applied.length > 0) parts.listener.serve = d.newPipeline(next)
  if (touches(live, 'log')) d.log.level = next.log.level
  // A firewall-only change needs a sync of its own; a list swap has started one.
  if (touches(live, 'firewall') && !listsChanged) void d.firewallSync.sync(next, parts.policy.build)

  const report: ReloadReport = {
    status: applied.length > 0 ? 'applied' : 'unchanged',
    applied,
    needsRestart: changes.restart,
    tokens: tokenChanges(prev.api.tokens, next.api.tokens),
    generation: parts.policy.ref.engine.generation
  }
  d.log.info({ ...report, config: next.source }, report.status === 'applied' ? 'config reloaded' : 'config reloaded: nothing changed')
  if (report.needsRestart.length > 0) d.log.warn({ needsRestart: report.needsRestart }, 'some changes take effect only after a restart')
  return report
}

function tokenChanges (prev: readonly ApiToken[], next: readonly ApiToken[]): TokenChanges {
  const was = new Map(prev.map(t => [t.name, t]))
  const now = new Map(next.map(t => [t.name, t]))
  return {
    added: next.filter(t => !was.has(t.name)).map(t => t.name),
    removed: prev.filter(t => !now.has(t.name)).map(t => t.name),
    changed: next.filter(t => { const w = was.get(t.name); return w !== undefined && (w.role !== t.role || w.sha256 !== t.sha256) }).map(t => t.name)
  }
}
