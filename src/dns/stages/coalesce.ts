// One upstream query per distinct key in flight: later identical queries wait for the first one's
// outcome. Also caps how many distinct upstream queries may be in flight (REFUSED beyond that).
// The first query's step takes the key out again and settles the queries that waited on it, each
// of which then runs its own steps (store, inspect) and answers its own client.

import { later, PENDING, type QueryContext, type Stage, type Step } from '../contract.js'
import { InflightQueries } from '../inflight.js'
import type { DnsMetrics } from '../metrics.js'

export function coalesceStage (metrics: DnsMetrics, maxInflight: number): Stage {
  const inflight = new InflightQueries<QueryContext>()
  const done: Step = (ctx, o) => {
    inflight.remove(ctx.q.keyHash, ctx)
    const waiting = ctx.followers
    if (waiting !== null) {
      ctx.followers = null
      for (let i = 0; i < waiting.length; i++) waiting[i].settle(o)
    }
    return o
  }
  return next => ctx => {
    const first = inflight.get(ctx.q.key, ctx.q.keyHash)
    if (first !== undefined) {
      metrics.coalesced++
      ;(first.followers ??= []).push(ctx)
      return PENDING
    }
    if (inflight.size >= maxInflight) {
      metrics.overloaded++
      return { kind: 'refused', reason: 'too many upstream queries in flight' }
    }
    const o = next(ctx)
    if (o === PENDING) {
      inflight.add(ctx.q.keyHash, ctx)
      later(ctx, o, done)
    }
    return o
  }
}
