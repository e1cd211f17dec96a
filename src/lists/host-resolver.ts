// Resolves the host name of a list URL through the configured upstreams directly (the daemon's
// UpstreamPool, or one built for the CLI): never through egressd's own filtering listener (a list
// host must not depend on the lists it serves) and never through the system resolver (whose
// answers egressd does not see). The addresses are then checked by the fetcher before it connects.

import { answerTargets, QType, Rcode } from '../dns/wire.js'
import type { Resolution } from '../dns/upstream/pool.js'
import { ListUpdateError } from '../errors.js'
import { ipv4Text } from '../policy/names.js'

/** A host name -> its IPv4 and IPv6 addresses (A and AAAA). */
export type HostResolver = (host: string) => Promise<string[]>

/** What the resolver needs of an UpstreamPool. */
export interface QuestionResolver { query (question: Buffer, dnssecOk: boolean): Promise<Resolution> }

/** The question section for `name` (lower-cased), `qtype`, class IN. */
function question (name: string, qtype: number): Buffer {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.')
  const parts: Buffer[] = []
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii')
    if (b.length === 0 || b.length > 63) throw new Error(`not a host name: ${JSON.stringify(name)}`)
    parts.push(Buffer.from([b.length]), b)
  }
  const tail = Buffer.alloc(5)
  tail.writeUInt16BE(qtype, 1)
  tail.writeUInt16BE(1, 3)
  return Buffer.concat([...parts, tail])
}

/** `pool` is asked each time, so a daemon reload that replaces its pool is followed. */
export function upstreamHostResolver (pool: () => QuestionResolver): HostResolver {
  return async host => {
    const results = await Promise.allSettled([QType.A, QType.AAAA].map(async t => {
      const r = await pool().query(question(host, t), false)
      if (r.answer.rcode !== Rcode.NOERROR) throw new Error(`rcode ${r.answer.rcode} from ${r.upstream}`)
      const found = answerTargets(r.answer)
      // A CNAME chain may carry addresses of both families; keep those of the asked type.
      return t === QType.A ? found.v4.slice(0, found.v4Count).map(ipv4Text) : found.v6.slice(0, found.v6Count)
    }))
    const addresses = results.flatMap(r => r.status === 'fulfilled' ? r.value : [])
    if (addresses.length > 0) return addresses
    const why = results.map(r => r.status === 'rejected' ? (r.reason as Error).message : 'no address').join('; ')
    throw new ListUpdateError('EGRESSD_ERR_LIST_FETCH', host, 'network', `cannot resolve ${host} through the upstreams: ${why}`)
  }
}
