// The policy's decision on every answer, fresh or cached, under the client's policy: the query
// name, then the answer's CNAME targets, A/AAAA addresses and HTTPS/SVCB hints (an allow rule on
// the query name covers its whole answer). Above the cache, so a list change applies to cached
// answers at once. The decision on a cached answer is remembered in its cache slot per (snapshot,
// group): a cache hit costs one comparison, not a name walk. A fresh answer is decided once per
// query. Not in play (no step at all) when the snapshot has no rule an answer could match.
//
// With learning on, every fresh answer it lets through is also handed to `allowed` (the collateral
// guard: which addresses allowed names use) with the answer's targets as parsed for the decision
// (parsed for the hand-over only when the decision did not need them). "Let through" means under the default
// group's policy, which the firewall follows: an answer to an exempt client, or to a group with a
// category off, is handed over only when the default group would have let it through too (decided
// anew: fresh answers only). A `monitor` match on the name is not let through. Cache hits are not
// handed over: their answer was when it was fetched.

import type { Engine, Verdict } from '../../policy/engine.js'
import { type AnswerCache, FORGOTTEN } from '../cache.js'
import { later, type QueryContext, type ReportMatch, type Stage, type Step } from '../contract.js'
import { AnswerTargets, answerTargets, type StoredAnswer } from '../wire.js'

/** A fresh answer let through under the default group's policy, with its targets (valid during the call only). */
export type AllowedAnswer = (ctx: QueryContext, targets: AnswerTargets) => void

export function answerPolicyStage (report: ReportMatch, cache: AnswerCache, allowed?: AllowedAnswer): Stage {
  const targets = new AnswerTargets() // refilled for each answer inspected (synchronously)
  let parsed: StoredAnswer | undefined // the answer `targets` holds now
  const targetsOf = (a: StoredAnswer): AnswerTargets => {
    if (parsed !== a) { answerTargets(a, targets); parsed = a }
    return targets
  }
  const decideFresh = (ctx: QueryContext, a: StoredAnswer): Verdict | undefined => {
    const { engine, group } = ctx
    // The query name was decided below (only `monitor` lets a listed name through).
    const byName = ctx.nameVerdict !== null ? ctx.nameVerdict : engine.decideName(ctx.q.qname, group, ctx.q.qtype)
    if (byName !== undefined) return byName
    if (engine.allowsName(ctx.q.qname, group, ctx.q.qtype)) return undefined
    return engine.decideAnswer(targetsOf(a), group, ctx.q.qtype)
  }
  const decideCached = (ctx: QueryContext, slot: number): Verdict | undefined => {
    const { engine, group } = ctx
    // By the group's index and the snapshot's token: a reference to either would keep an old
    // snapshot's lists in memory as long as the slot is neither hit nor evicted.
    const remembered = cache.recall(slot, group.index, engine.token)
    if (remembered !== FORGOTTEN) return remembered as Verdict | undefined
    let v = engine.decideName(ctx.q.qname, group, ctx.q.qtype)
    if (v === undefined && !engine.allowsName(ctx.q.qname, group, ctx.q.qtype)) v = engine.decideAnswer(cache.targets(slot, targets), group, ctx.q.qtype)
    parsed = undefined // `targets` now holds a cached answer's
    cache.remember(slot, group.index, engine.token, v)
    return v
  }
  /** A fresh answer the client's group lets through: would the default group too? */
  const letThroughByDefault = (ctx: QueryContext, e: Engine, a: StoredAnswer): boolean => {
    if (ctx.group.index === 0) return true
    const g = e.groups[0]
    const { qname, qtype } = ctx.q
    if (e.decideName(qname, g, qtype) !== undefined) return false
    return !e.inspectsAnswers || e.allowsName(qname, g, qtype) || e.decideAnswer(targetsOf(a), g, qtype) === undefined
  }
  const handOver = (ctx: QueryContext, a: StoredAnswer): void => {
    if (allowed !== undefined && letThroughByDefault(ctx, ctx.engine, a)) allowed(ctx, targetsOf(a))
  }
  const inspect: Step = (ctx, o) => {
    let v: Verdict | undefined
    if (o.kind === 'resolved') v = decideFresh(ctx, o.answer)
    else if (o.kind === 'cached') v = decideCached(ctx, o.slot)
    else return o
    if (v === undefined) {
      if (o.kind === 'resolved') handOver(ctx, o.answer)
      return o
    }
    // A fresh answer's name was decided (and reported) by the query stage below; only `monitor`
    // lets one through, and it must not be reported twice.
    if (o.kind === 'cached' || v.matched !== 'qname') report(ctx, v)
    return v.action === 'monitor' ? o : { kind: 'blocked', verdict: v }
  }
  // No answer rule in the snapshot: only the hand-over (a monitored name is not let through).
  const observe: Step = (ctx, o) => {
    if (o.kind === 'resolved' && ctx.nameVerdict == null) handOver(ctx, o.answer)
    return o
  }
  return next => ctx => ctx.engine.inspectsAnswers ? later(ctx, next(ctx), inspect) : allowed !== undefined ? later(ctx, next(ctx), observe) : next(ctx)
}
