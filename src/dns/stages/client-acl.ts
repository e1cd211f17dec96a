// The first stage: which clients egressd answers (dns.allowClients). A client outside the list gets
// REFUSED with EDE 18 "Prohibited" before any other work: no local answer, no cache lookup, no
// policy, no upstream. The answer is no larger than the query (nothing to amplify) and has no EDE
// text. The address ranges themselves are ClientAcl's (../client-acl.ts).

import type { ClientAcl } from '../client-acl.js'
import type { Outcome, QueryContext, Stage } from '../contract.js'
import type { DnsMetrics } from '../metrics.js'
import { edeOption, emptyResponse, Rcode } from '../wire.js'

/** EDE info-code 18 "Prohibited" (RFC 8914 4.19): a client the resolver does not serve. */
const EDE_PROHIBITED = 18

export function clientAclStage (acl: ClientAcl, metrics: DnsMetrics, ednsUdpSize: number): Stage {
  const prohibited = edeOption(EDE_PROHIBITED, '') // no text: the answer stays as small as the query allows
  const refuse = (ctx: QueryContext): Outcome => {
    metrics.refusedClients++
    return { kind: 'local', result: 'refused', answer: emptyResponse(ctx.msg, ctx.q, Rcode.REFUSED, ednsUdpSize, prohibited) }
  }
  // Small on purpose, like every handler on the common path: the optimizing compiler inlines it.
  return next => ctx => acl.allows(ctx.client) ? next(ctx) : refuse(ctx)
}
