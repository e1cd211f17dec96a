// The policy's decision on every answer, fresh or cached, under the client's policy: the query
// name, then the answer's CNAME targets, A/AAAA addresses and HTTPS/SVCB hints (an allow rule on
// the query name covers its whole answer). Above the cache, so a list change applies to cached
// answers at once. The decision on a cached answer is remembered in its cache slot per (snapshot,
// group): a cache hit costs one comparison, not a name walk. A fresh answer is decided once per
// query. Not in play (no step at all) when the snapshot has no rule an answer could match.

import type { Verdict } from '../../policy/engine.js'
import { type AnswerCache, FORGOTTEN } from '../cache.js'
import { later, type QueryContext, type ReportMatch, type Stage, type Step } from '../contract.js'
import { AnswerTargets, answerTargets, type StoredAnswer } from '../wire.js'

export function answerPolicyStage (report: ReportMatch, cache: AnswerCache): Stage {
  const targets = new AnswerTargets() // refilled for each answer inspected (synchronously)
  const decideFresh = (ctx: QueryContext, a: StoredAnswer): Verdict | undefined => {
    const { engine, group } = ctx
    // The query name was decided below (only `monitor` lets a listed name through).
    const byName = ctx.nameVerdict !== null ? ctx.nameVerdict : engine.decideName(ctx.q.qname, group, ctx.q.qtype)
    if (byName !== undefined) return byName
    if (engine.allowsName(ctx.q.qname, group, ctx.q.qtype)) return undefined
    return engine.decideAnswer(answerTargets(a, targets), group, ctx.q.qtype)
  }
  const decideCached = (ctx: QueryContext, slot: number): Verdict | undefined => {
    const { engine, group } = ctx
    // By the group's index and the snapshot's token: a reference to either would keep an old
    // snapshot's lists in memory as long as the slot is neither hit nor evicted.
    const remembered = cache.recall(slot, group.index, engine.token)
    if (remembered !== FORGOTTEN) return remembered as Verdict | undefined
    let v = engine.decideName(ctx.q.qname, group, ctx.q.qtype)
    if (v === undefined && !engine.allowsName(ctx.q.qname, group, ctx.q.qtype)) v = engine.decideAnswer(cache.targets(slot, targets), group, ctx.q.qtype)
    cache.remember(slot, group.index, engine.token, v)
    return v
  }
  const inspect: Step = (ctx, o) => {
    let v: Verdict | undefined
    if (o.kind === 'resolved') v = decideFresh(ctx, o.answer)
    else if (o.kind === 'cached') v = decideCached(ctx, o.slot)
    else return o
    if (v === undefined) return o
    // A fresh answer's name was decided (and reported) by the query stage below; only `monitor`
    // lets one through, and it must not be reported twice.
    if (o.kind === 'cached' || v.matched !== 'qname') report(ctx, v)
    return v.action === 'monitor' ? o : { kind: 'blocked', verdict: v }
  }
  return next => ctx => ctx.engine.inspectsAnswers ? later(ctx, next(ctx), inspect) : next(ctx)
}
