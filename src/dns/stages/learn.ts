// Tells the collateral guard (learn/) which addresses allowed names use: every fresh upstream
// answer that reaches a client unblocked is handed to `allowed` with its query name. Above the
// answer-policy stage, so it sees the final outcome: an answer that policy blocked (a CNAME or an
// address of a banned service) is not an allowed name's. Cache hits are not handed over: their
// answer was when it was fetched. Not in the chain when learning is off.

import { later, type QueryContext, type Stage, type Step } from '../contract.js'
import type { StoredAnswer } from '../wire.js'

/** An allowed name's fresh answer. */
export type AllowedAnswer = (ctx: QueryContext, answer: StoredAnswer) => void

export function learnStage (allowed: AllowedAnswer): Stage {
  const step: Step = (ctx, o) => {
    // A `monitor` match on the query name lets a banned name's answer through: not an allowed name's.
    if (o.kind === 'resolved' && ctx.nameVerdict == null) allowed(ctx, o.answer)
    return o
  }
  return next => ctx => later(ctx, next(ctx), step)
}
