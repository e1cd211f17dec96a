// The query path as a chain of stages (STYLE.md), composed once in `createPipeline`:
//
//   bytes ─▶ readQuery ─▶ [count] ─▶ [cache] ─▶ [coalesce] ─▶ forward (upstream pool)
//                                                              ◀── Outcome ──┘
//   Outcome ─▶ render (ID, question case, TTLs, OPT) ─▶ truncate for UDP ─▶ bytes
//
// A stage is `(next) => (ctx) => Outcome | Promise<Outcome>`. A stage that can answer by itself
// (a cache hit) returns synchronously without calling `next`, so the hot path allocates no Promise.
// The Outcome is a discriminated union; metrics read it and never look at packets again.

import type { CacheConfig, DnsConfig } from '../config/types.js'
import type { AnswerCache } from './cache.js'
import type { DnsMetrics } from './metrics.js'
import type { Resolution, UpstreamPool } from './upstream/pool.js'
import {
  edeOption, emptyResponse, headerOnlyResponse, malformedRcode, readQuery, renderAnswer, Rcode,
  truncateForUdp, upstreamQuestion, type Query, type StoredAnswer
} from './wire.js'

export type Protocol = 'udp' | 'tcp'

export interface QueryContext {
  /** The client's bytes; response builders copy header and question from here. */
  readonly msg: Buffer
  readonly q: Query
  readonly protocol: Protocol
  readonly client: string
}

export type Outcome =
  | { readonly kind: 'cached', readonly answer: StoredAnswer, readonly elapsed: number }
  | { readonly kind: 'resolved', readonly answer: StoredAnswer, readonly upstream: string }
  | { readonly kind: 'servfail', readonly reason: string }
  | { readonly kind: 'refused', readonly reason: string }

export type Handler = (ctx: QueryContext) => Outcome | Promise<Outcome>
export type Stage = (next: Handler) => Handler

/** Folds stages around a terminal handler: the first stage in the array runs first. */
export function compose (stages: readonly Stage[], terminal: Handler): Handler {
  return stages.reduceRight<Handler>((next, stage) => stage(next), terminal)
}

/** Counts every outcome by kind, for sync and async answers alike. */
export function countStage (metrics: DnsMetrics): Stage {
  const count = (o: Outcome): Outcome => { metrics.outcomes[o.kind]++; return o }
  return next => ctx => {
    const o = next(ctx)
    return o instanceof Promise ? o.then(count) : count(o)
  }
}

/** Serves live cache entries; stores what comes back resolved and cacheable. */
export function cacheStage (cache: AnswerCache, now: () => number): Stage {
  return next => ctx => {
    const t = now()
    const hit = cache.get(ctx.q.key, t)
    if (hit !== undefined) return { kind: 'cached', answer: hit.answer, elapsed: Math.floor((t - hit.storedAt) / 1000) }
    const o = next(ctx)
    const store = (r: Outcome): Outcome => {
      if (r.kind === 'resolved') cache.put(ctx.q.key, r.answer)
      return r
    }
    return o instanceof Promise ? o.then(store) : store(o)
  }
}

/**
 * One upstream query per distinct key in flight: later identical queries wait for the first one's
 * outcome. Also caps how many distinct upstream queries may be in flight (REFUSED beyond that).
 */
export function coalesceStage (metrics: DnsMetrics, maxInflight: number): Stage {
  const inflight = new Map<string, Promise<Outcome>>()
  return next => ctx => {
    const key = ctx.q.key
    const running = inflight.get(key)
    if (running !== undefined) { metrics.coalesced++; return running }
    if (inflight.size >= maxInflight) {
      metrics.overloaded++
      return { kind: 'refused', reason: 'too many upstream queries in flight' }
    }
    const o = next(ctx)
    if (!(o instanceof Promise)) return o
    const p = o.then(r => { inflight.delete(key); return r }, (err: unknown) => { inflight.delete(key); throw err })
    inflight.set(key, p)
    return p
  }
}

/** The terminal handler: asks the upstream pool; a total failure becomes SERVFAIL, never silence. */
export function forward (pool: UpstreamPool): Handler {
  const resolved = (r: Resolution): Outcome => ({ kind: 'resolved', answer: r.answer, upstream: r.upstream })
  const failed = (err: Error): Outcome => ({ kind: 'servfail', reason: err.message })
  return ctx => pool.resolve(upstreamQuestion(ctx.msg, ctx.q), ctx.q.do).then(resolved, failed)
}

export interface PipelineDeps {
  readonly dns: DnsConfig
  readonly cache: CacheConfig
  readonly answers: AnswerCache
  readonly pool: UpstreamPool
  readonly metrics: DnsMetrics
  readonly now: () => number
}

/** EDE info-code 22 "No Reachable Authority" (RFC 8914 4.23). */
const EDE_NO_REACHABLE_AUTHORITY = 22

/**
 * Builds the query path once and returns the function listeners call with a client's bytes.
 * It returns the answer bytes (sync for cache hits and malformed packets), or null to send nothing.
 */
export function createPipeline (d: PipelineDeps): (msg: Buffer, protocol: Protocol, client: string) => Buffer | Promise<Buffer> | null {
  const stages: Stage[] = [
    countStage(d.metrics),                              // every outcome counted, whoever produced it
    ...(d.cache.enabled ? [cacheStage(d.answers, d.now)] : []),  // hits answer here, synchronously
    coalesceStage(d.metrics, d.dns.maxInflight)         // identical misses share one upstream query
  ]
  const handle = compose(stages, forward(d.pool))
  const ednsSize = d.dns.ednsUdpSize
  const servfailEde = edeOption(EDE_NO_REACHABLE_AUTHORITY, 'egressd: no upstream answered')

  const render = (ctx: QueryContext, o: Outcome): Buffer => {
    let resp: Buffer
    switch (o.kind) {
      case 'cached': resp = renderAnswer(o.answer, ctx.msg, ctx.q, o.elapsed); break
      case 'resolved': resp = renderAnswer(o.answer, ctx.msg, ctx.q, 0); break
      case 'servfail': resp = emptyResponse(ctx.msg, ctx.q, Rcode.SERVFAIL, ednsSize, servfailEde); break
      case 'refused': resp = emptyResponse(ctx.msg, ctx.q, Rcode.REFUSED, ednsSize); break
    }
    if (ctx.protocol === 'udp') {
      const limit = ctx.q.udpSize < ednsSize ? ctx.q.udpSize : ednsSize
      if (resp.length > limit) {
        d.metrics.truncated++
        resp = truncateForUdp(resp, ctx.msg, ctx.q, limit, ednsSize)
      }
    }
    return resp
  }

  return (msg, protocol, client) => {
    d.metrics.queries[protocol]++
    const q = readQuery(msg)
    if (typeof q === 'string') {
      d.metrics.malformed[q]++
      const rcode = malformedRcode(q)
      return rcode < 0 ? null : headerOnlyResponse(msg, rcode)
    }
    const ctx: QueryContext = { msg, q, protocol, client }
    const o = handle(ctx)
    return o instanceof Promise ? o.then(r => render(ctx, r)) : render(ctx, o)
  }
}
