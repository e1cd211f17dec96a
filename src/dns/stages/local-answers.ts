// Queries egressd answers by itself, before cache, policy and upstream: an EDNS version it does not
// implement (RFC 6891 6.1.3: BADVERS, our OPT says version 0), CHAOS class (version.bind & co.:
// forwarded, the upstream's answer would tell its software and version; dns.chaos.answer answers
// them), zone transfers (a forwarder has no zones to transfer; RFC 5936 defines AXFR over TCP only,
// but either way the answer is REFUSED with EDE 21, as Unbound's). Other classes than IN and CH
// are forwarded as any query. An ordinary query (IN, EDNS version 0, no transfer) passes one test.

import type { DnsConfig } from '../../config/types.js'
import type { Outcome, QueryContext, Stage } from '../contract.js'
import type { DnsMetrics } from '../metrics.js'
import { edeOption, emptyResponse, QClass, QType, Rcode, txtRdata, txtResponse } from '../wire.js'

/** EDE info-code 21 "Not Supported" (RFC 8914 4.22): a zone transfer asked of a forwarder. */
const EDE_NOT_SUPPORTED = 21

/** CHAOS-class TXT names that ask a server about itself (BIND, NSD, Unbound, RFC 4892): dns.chaos.answer answers them. */
const CHAOS_NAMES: ReadonlySet<string> = new Set(['version.bind', 'version.server', 'hostname.bind', 'id.server', 'authors.bind'])

export function localAnswersStage (dns: DnsConfig, metrics: DnsMetrics): Stage {
  const ednsSize = dns.ednsUdpSize
  const chaosTxt = dns.chaos.answer === undefined ? undefined : txtRdata(dns.chaos.answer)
  const notSupported = edeOption(EDE_NOT_SUPPORTED, '')
  const local = metrics.localAnswers
  /** The answer to a query that is not ordinary; undefined to forward it as any query (another class than IN or CH). */
  const answer = (ctx: QueryContext): Outcome | undefined => {
    const { q, msg } = ctx
    if (q.ednsVersion !== 0) {
      local.badvers++
      return { kind: 'local', result: 'badvers', answer: emptyResponse(msg, q, Rcode.BADVERS, ednsSize) }
    }
    if (q.qclass === QClass.CH) {
      local.chaos++
      if (chaosTxt !== undefined && (q.qtype === QType.TXT || q.qtype === QType.ANY) && CHAOS_NAMES.has(q.qname)) {
        return { kind: 'local', result: 'local', answer: txtResponse(msg, q, chaosTxt, ednsSize) }
      }
      return { kind: 'local', result: 'refused', answer: emptyResponse(msg, q, Rcode.REFUSED, ednsSize) }
    }
    if (q.qtype === QType.AXFR || q.qtype === QType.IXFR) {
      local['zone-transfer']++
      return { kind: 'local', result: 'refused', answer: emptyResponse(msg, q, Rcode.REFUSED, ednsSize, notSupported) }
    }
    return undefined
  }
  // The handler on every query's path is kept this small (the rest is `answer`'s, called for the
  // rare query it concerns) so that the optimizing compiler inlines it into the chain.
  return next => ctx => {
    const q = ctx.q
    if (q.ednsVersion === 0 && q.qclass === QClass.IN && q.qtype !== QType.AXFR && q.qtype !== QType.IXFR) return next(ctx)
    return answer(ctx) ?? next(ctx)
  }
}
