// What the API app is built from (ApiDeps) and what it hands each route plugin (RouteContext).
// Its own module, so route modules import neither app.ts nor each other.

import type { Logger } from 'pino'
import type { LiveTailConfig } from '../config/types.js'
import type { FilterValues } from '../store/block-filter.js'
import type { ApiHost } from './host.js'
import type { ApiLimitCounters, RateLimiter } from './rate-limit.js'

export interface ApiDeps {
  readonly host: ApiHost
  readonly log: Logger
  readonly now: () => number
  readonly version: string
  /** PEM contents; with them the app serves HTTPS. */
  readonly tls?: { readonly cert: Buffer, readonly key: Buffer }
}

/** What every route plugin gets (`app.register(xRoutes, ctx)`). */
export interface RouteContext extends ApiDeps {
  readonly rateLimiter: RateLimiter
  /** Counters of what the abuse limits refused or cut off (rendered by /metrics). */
  readonly limits: ApiLimitCounters
  /** The live tail's limits in force (read per stream: a reload applies to the next one). */
  readonly liveTail: () => LiveTailConfig
  /** The categories and client groups of the policy in force, which block-log filters must name. */
  readonly filterValues: () => FilterValues
}
