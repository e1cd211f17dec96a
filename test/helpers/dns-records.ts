// dns-packet records, typed, for tests that build messages with packet.encode() or read decoded ones.
// @types/dns-packet's OptAnswer is the decoded shape (every field present, only the option codes it
// names), so an OPT to encode is built here, once; decoded records are read by narrowing on `type`.
import type * as packet from 'dns-packet'

/** What an OPT pseudo-record to encode says; dns-packet writes 0 for what is left out. */
export interface OptSpec {
  udpPayloadSize: number
  ednsVersion?: number
  flags?: number
  /** Any option code (e.g. 15, Extended DNS Error), not only those @types/dns-packet names. */
  options?: Array<{ code: number, data?: Buffer }>
}

/** An OPT pseudo-record for packet.encode(). */
export function optRecord (spec: OptSpec): packet.Answer {
  // encode() reads only these fields; the decoded type's other fields and option codes do not apply.
  return { type: 'OPT', name: '.', ...spec } as unknown as packet.Answer
}

/** `r` as an OPT record; throws (failing the test) when it is missing or another type. */
export function asOpt (r: packet.Answer | undefined): packet.OptAnswer {
  if (r?.type !== 'OPT') throw new Error(`expected an OPT record, got ${r?.type ?? 'nothing'}`)
  return r
}

/** The message's OPT record, if it has one. */
export function optOf (p: packet.Packet): packet.OptAnswer | undefined {
  for (const r of p.additionals ?? []) if (r.type === 'OPT') return r
  return undefined
}

/** The data of an address or name record (A, AAAA, CNAME, DNAME, NS, PTR); undefined for any other. */
export function stringData (r: packet.Answer | undefined): string | undefined {
  switch (r?.type) {
    case 'A': case 'AAAA': case 'CNAME': case 'DNAME': case 'NS': case 'PTR': return r.data
    default: return undefined
  }
}

/** A record's TTL (undefined for OPT, which has none). */
export function ttlOf (r: packet.Answer | undefined): number | undefined {
  return r === undefined || r.type === 'OPT' ? undefined : r.ttl
}
