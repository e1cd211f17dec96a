// Tells the collateral guard (learn/) which addresses allowed names use: every fresh upstream
// answer that reaches a client unblocked is handed to `allowed` with its query name. Above the
// answer-policy stage, so it sees the final outcome: an answer that policy blocked (a CNAME or an
// address of a banned service) is not an allowed name's. Cache hits are not handed over: their
// answer was when it was fetched. Not in the chain when learning is off.
//
// "Allowed" means allowed for the LAN as the firewall sees it, i.e. under the default group's
// policy: an exempt client (the security team's analysis subnet) or a group with a category
// turned off may resolve a banned name, and that answer must not take the service's addresses
// out of the learned sets for everyone. So an answer to a client of another group is handed over
// only when the default group would have let it through too (decided anew: fresh answers only).

import type { Engine } from '../../policy/engine.js'
import { later, type QueryContext, type Stage, type Step } from '../contract.js'
import { AnswerTargets, answerTargets, type StoredAnswer } from '../wire.js'

/** An allowed name's fresh answer. */
export type AllowedAnswer = (ctx: QueryContext, answer: StoredAnswer) => void

export function learnStage (allowed: AllowedAnswer): Stage {
  const targets = new AnswerTargets() // refilled per answer inspected (synchronously)
  const allowedByDefault = (ctx: QueryContext, e: Engine, a: StoredAnswer): boolean => {
    const g = e.groups[0]
    const qname = ctx.q.qname
    const qtype = ctx.q.qtype
    if (e.decideName(qname, g, qtype) !== undefined) return false
    return !e.inspectsAnswers || e.allowsName(qname, g, qtype) || e.decideAnswer(answerTargets(a, targets), g, qtype) === undefined
  }
  const step: Step = (ctx, o) => {
    if (o.kind !== 'resolved') return o
    // A `monitor` match on the query name lets a banned name's answer through: not an allowed name's.
    if (ctx.group.index === 0 ? ctx.nameVerdict == null : allowedByDefault(ctx, ctx.engine, o.answer)) allowed(ctx, o.answer)
    return o
  }
  return next => ctx => later(ctx, next(ctx), step)
}
