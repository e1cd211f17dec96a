// What the management API needs from the running daemon. The daemon implements it; the API never
// reaches further (no sockets, no DNS wire format), and tests can hand it a real Daemon.

import type { ReloadCounters } from '../config/reload.js'
import type { Config } from '../config/types.js'
import type { CacheStats } from '../dns/cache.js'
import type { BoundAddress, ListenerFigures } from '../dns/listener.js'
import type { DnsMetrics } from '../dns/metrics.js'
import type { ElementSyncState } from '../firewall/elements.js'
import type { EvidenceState } from '../firewall/evidence.js'
import type { LatencyHistogram, UpstreamHealth } from '../dns/upstream/pool.js'
import type { EngineBuild } from '../policy/build.js'
import type { Engine } from '../policy/engine.js'
import type { BlockReader } from '../store/block-reader.js'
import type { Db } from '../store/db.js'
import type { CustomPolicy } from '../store/custom-policy.js'
import type { PolicyStoreStatus } from '../store/policy-db.js'
import type { BlockLogFigures } from '../store/stores.js'
import type { ListSourceStatus, SourceUpdateResult } from '../lists/updater.js'
import type { ReloadBy, ReloadReport } from '../reload.js'
import type { Learning } from '../learn/learning.js'

export interface ApiHost {
  /** The config in force (replaced by reloads). */
  readonly config: Config
  readonly startedAt: number
  readonly metrics: DnsMetrics
  readonly cache: { readonly size: number, readonly stats: CacheStats }
  readonly pool: { health: () => UpstreamHealth[], latency: () => LatencyHistogram[] }
  /** Bound DNS listeners (empty before start). */
  readonly addresses: readonly BoundAddress[]
  /** Client queries being answered right now. */
  readonly inflight: number
  /** DNS listener sockets now (TCP connections, unsent answers, UDP kernel drops); computed when called. */
  readonly dnsSockets?: () => ListenerFigures
  readonly policy: { readonly engine: Engine }
  readonly policyBuild: EngineBuild
  /** When the engine in force was built (ms). */
  readonly policyLoadedAt: number
  readonly firewall: { readonly attempts: number, readonly failures: number, readonly lastError: string | undefined, readonly lastOkAt: number | undefined }
  /**
   * The firewall's learned-set element sync and evidence reader (firewall/sync.ts FirewallSync:
   * /metrics and the status read their counters); a host without them reports zeros.
   */
  readonly firewallSync?: {
    readonly elements: { readonly state: Readonly<ElementSyncState>, readonly pending: number }
    readonly evidence: { readonly state: Readonly<EvidenceState> }
  }
  /** Firewall hits whose set tag named no set the evidence reader knows (counted, not stored), and their attempts. */
  readonly firewallUnknownSet?: { readonly hits: number, readonly attempts: number }
  readonly db: Db | undefined
  /** Custom rules, category overrides and the audit log; undefined when the policy file is unavailable. */
  readonly customPolicy: CustomPolicy | undefined
  /** The policy file (policy.sqlite): available, complete, and why not (readiness part `policy`). */
  readonly policyStore?: PolicyStoreStatus
  readonly blockLogFigures: () => BlockLogFigures | undefined
  /** Downloaded (URL) list sources and their update state. */
  readonly lists?: {
    status: () => readonly ListSourceStatus[]
    updateNow: (opts: { source?: string, force?: boolean }) => Promise<SourceUpdateResult[]>
  }
  /** Reloads so far by trigger and outcome (/metrics: egressd_config_reloads_total). */
  readonly reloads?: ReloadCounters
  /** The block log's reader (search, stats, bypass, live tail); without it the API has no block-log routes. */
  readonly blockSearch?: BlockReader
  /** Learned address sets (learn/learning.ts); undefined with learning off. */
  readonly learning?: Learning
  /** Reloads the config from where it came from (as SIGHUP); throws ConfigError or PolicyError, changing nothing. */
  reloadConfig: (by?: ReloadBy) => ReloadReport
}
