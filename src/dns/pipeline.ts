// The query path, composed once: the stages in the order a query meets them, each in its own file
// under stages/ (STYLE.md: a stage is `(next) => (ctx) => Outcome | PENDING`), around the
// terminal that forwards to the upstream pool:
//
//   bytes ─▶ readQuery ─▶ [client ACL] ─▶ [local answers] ─▶ [observe] ─▶ [answer policy] ─▶ [cache] ─▶ [query policy] ─▶ [coalesce] ─▶ forward
//                                                                                                   ◀── Outcome ──┘
//   Outcome ─▶ [queued steps] ─▶ respond: render (ID, question case, TTLs, OPT), count, time, truncate for UDP ─▶ bytes
//
// A stage that can answer by itself (a refused client, a block, a cache hit) returns its Outcome
// without calling `next`. PENDING means the outcome comes later, through the query's context: a
// forwarded query's context is what the upstream pool calls back (`resolved` / `failed`), so a
// forwarded query has no promise of its own and no promise reaction between the upstream's
// datagram and the answer to the client. A stage that works on the outcome on its way back (store
// it, inspect it) does so at once when the outcome is there; when it is PENDING, the stage queues
// its step on the context (`later`), and the responder runs the queued steps, innermost first,
// when the outcome arrives (respond.ts). The types the stages and the listener share are in
// contract.ts.

import type { BlocklistsConfig, CacheConfig, DnsConfig } from '../config/types.js'
import { answerClock } from './answer-time.js'
import type { AnswerCache } from './cache.js'
import type { ClientAcl } from './client-acl.js'
import { type Handler, type ObserveAnswer, PENDING, QueryContext, type ReportMatch, type Serve, type Stage } from './contract.js'
import type { DnsMetrics } from './metrics.js'
import { Responder } from './respond.js'
import { type AllowedAnswer, answerPolicyStage, cacheStage, clientAclStage, coalesceStage, forward, localAnswersStage, observeStage, queryPolicyStage } from './stages/index.js'
import type { UpstreamPool } from './upstream/pool.js'
import type { Engine } from '../policy/engine.js'
import { headerOnlyResponse, malformedRcode, readQuery, Rcode } from './wire.js'

// What the daemon and tests import from here (their home is contract.ts).
export { PENDING, QueryContext } from './contract.js'
export type { ObserveAnswer, Outcome, Protocol, ReportMatch, Serve, Stage } from './contract.js'

/** Where the current policy snapshot lives; swapping `engine` applies to the next query. */
export interface PolicyRef { engine: Engine }

/** Folds stages around a terminal handler: the first stage in the array runs first. */
export function compose (stages: readonly Stage[], terminal: Handler): Handler {
  return stages.reduceRight<Handler>((next, stage) => stage(next), terminal)
}

export interface PipelineDeps {
  readonly dns: DnsConfig
  readonly cache: CacheConfig
  readonly blocking: BlocklistsConfig
  readonly policy: PolicyRef
  readonly report: ReportMatch
  /** Only when every query is logged (store.logQueries: all); absent, the stage is not in the chain. */
  readonly observe?: ObserveAnswer | undefined
  /** Only when learning is on: fresh answers let through, for the collateral guard (handed over by the answer-policy stage). */
  readonly allowed?: AllowedAnswer | undefined
  readonly answers: AnswerCache
  readonly pool: UpstreamPool
  readonly metrics: DnsMetrics
  /** Wall-clock milliseconds (Date.now): cache ages and the observe stage's times. */
  readonly now: () => number
  /** The answer-time clock (default performance.now()); see contract.ts Serve. */
  readonly clock?: () => number
  /** Which clients are answered (dns.allowClients); the others get REFUSED. */
  readonly acl: ClientAcl
}

/**
 * Builds the query path once and returns the function listeners call with a client's bytes
 * (contract.ts Serve): the answer bytes now (cache hits, blocks, refusals, malformed packets),
 * null to send nothing, or PENDING and the answer to the listener's replier once it is known.
 */
export function createPipeline (d: PipelineDeps): Serve {
  const m = d.metrics
  const stages: Stage[] = [
    clientAclStage(d.acl, m, d.dns.ednsUdpSize),                     // first: a client outside dns.allowClients gets REFUSED before any work
    localAnswersStage(d.dns, m),                                     // BADVERS, CHAOS, zone transfers: answered by egressd itself
    ...(d.observe !== undefined ? [observeStage(d.observe, d.answers, d.now)] : []), // logQueries: all
    answerPolicyStage(d.report, d.answers, d.allowed),               // above the cache: cached answers follow list changes; learning: which addresses allowed names use
    ...(d.cache.enabled ? [cacheStage(d.answers, d.now)] : []),      // hits answer here, synchronously
    queryPolicyStage(d.report),                                      // a miss: blocked names never leave the gateway
    coalesceStage(m, d.dns.maxInflight)                              // identical misses share one upstream query
  ]
  const handle = compose(stages, forward(d.pool))
  const respond = new Responder({ dns: d.dns, blocking: d.blocking, answers: d.answers, metrics: m, clock: d.clock ?? answerClock })
  const finish = respond.finish

  return (msg, protocol, client, replier, to, arrival) => {
    m.queries[protocol]++
    const q = readQuery(msg)
    if (typeof q === 'string') {
      m.malformed[q]++
      const rcode = malformedRcode(q)
      m.results[protocol][rcode < 0 ? 'dropped' : rcode === Rcode.NOTIMP ? 'notimp' : 'formerr']++
      return rcode < 0 ? null : headerOnlyResponse(msg, rcode)
    }
    const ctx = new QueryContext(msg, q, protocol, client, d.policy.engine, replier, to, arrival, finish)
    try {
      const o = handle(ctx)
      return o === PENDING ? PENDING : respond.now(ctx, o)
    } catch (err) {
      // A fault (an exception) anywhere on the query path is answered SERVFAIL: it must not reach
      // the socket's event handler (an uncaught exception stops the daemon). Answered now; if the
      // query did reach the upstream, its outcome finds it answered.
      ctx.answered = true
      return respond.now(ctx, { kind: 'servfail', reason: (err as Error).message })
    }
  }
}
