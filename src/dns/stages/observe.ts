// Every answer that is not a block, with its rcode and time to answer, handed to `observe`
// (store.logQueries: all; otherwise the stage is not in the chain). Blocks are reported by the
// policy stages instead.

import { later, PENDING, type ObserveAnswer, type Outcome, type QueryContext, type Stage } from '../contract.js'
import type { AnswerCache } from '../cache.js'
import { Rcode } from '../wire.js'

export function observeStage (observe: ObserveAnswer, cache: AnswerCache, now: () => number): Stage {
  const rcodeOf = (o: Outcome): number => {
    switch (o.kind) {
      case 'resolved': return o.answer.rcode
      case 'cached': return cache.rcode(o.slot)
      case 'servfail': return Rcode.SERVFAIL
      case 'local': return o.answer[3] & 0x0f // not below this stage: local answers come first
      case 'refused':
      case 'blocked': return Rcode.REFUSED
    }
  }
  const seen = (ctx: QueryContext, o: Outcome, started: number): Outcome => {
    if (o.kind !== 'blocked') observe(ctx, o, rcodeOf(o), now() - started)
    return o
  }
  return next => ctx => {
    const started = now()
    const o = next(ctx)
    return o === PENDING ? later(ctx, o, (c, r) => seen(c, r, started)) : seen(ctx, o, started)
  }
}
