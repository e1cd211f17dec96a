// The policy's decision on the query name, before the upstream is asked: a blocked name never
// leaves the gateway; a `monitor` match is reported and goes on. Below the cache: cached answers
// get their name checked by the answer-policy stage, once per snapshot and group. How a block is
// answered (NXDOMAIN, sinkhole, ...) is the responder's (../respond.ts).

import type { ReportMatch, Stage } from '../contract.js'

export function queryPolicyStage (report: ReportMatch): Stage {
  return next => ctx => {
    const v = ctx.nameVerdict = ctx.engine.decideName(ctx.q.qname, ctx.group, ctx.q.qtype)
    if (v === undefined) return next(ctx)
    report(ctx, v)
    return v.action === 'monitor' ? next(ctx) : { kind: 'blocked', verdict: v }
  }
}
