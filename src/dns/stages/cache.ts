// The answer cache in the chain: a live entry answers here, synchronously (no clock read for a
// miss: the cache reads it on a hit); what comes back resolved and cacheable is stored.

import { type AnswerCache, MISS } from '../cache.js'
import { later, type Stage, type Step } from '../contract.js'

export function cacheStage (cache: AnswerCache, now: () => number): Stage {
  const store: Step = (ctx, o) => {
    if (o.kind === 'resolved') cache.put(ctx.q.key, o.answer, now(), ctx.q.keyHash)
    return o
  }
  return next => ctx => {
    const slot = cache.find(ctx.q.key, undefined, ctx.q.keyHash)
    if (slot !== MISS) return { kind: 'cached', slot, elapsed: Math.floor((cache.checkedAt - cache.storedAt(slot)) / 1000) }
    return later(ctx, next(ctx), store)
  }
}
