// Generators and reference decoders for the DNS fuzz tests: names as label bytes, queries encoded
// by hand (any label byte) or by dns-packet (plain names), and the presentation form a name should
// come out in, written independently of src/dns/wire.ts.

import * as packet from 'dns-packet'
import { fc } from './harness.js'

const HOST_CHARS = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_', 'latin1')

/** `min`..`max` characters of [A-Za-z0-9_-] (fc.stringMatching is much slower). */
export const hostChars = (min: number, max: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map(a => a.map(x => HOST_CHARS[x % HOST_CHARS.length]))

/** A label: mostly hostname characters in mixed case, sometimes any byte at all. */
export const labelArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: hostChars(1, 20) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 63 }) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(0x2e, 0x5c, 0x2f, 0x20, 0x00, 0x7f, 0xff, 0x41, 0x61, 0x30), { minLength: 1, maxLength: 8 }).map(a => Uint8Array.from(a)) }
)

/** Labels whose wire form (with the root byte) fits in 255 bytes. */
export const labelsArb: fc.Arbitrary<Uint8Array[]> = fc.array(labelArb, { maxLength: 12 }).map(labels => {
  const out: Uint8Array[] = []
  let wire = 1
  for (const l of labels) {
    if (wire + l.length + 1 > 255) break
    wire += l.length + 1
    out.push(l)
  }
  return out
})

/** The presentation form readQuery promises: lower-cased, odd bytes escaped, dot-joined. */
export function presentation (labels: readonly Uint8Array[]): string {
  return labels.map(l => {
    let s = ''
    for (let c of l) {
      if (c >= 0x41 && c <= 0x5a) c |= 0x20
      if (c <= 0x20 || c >= 0x7f) s += '\\' + String(c).padStart(3, '0')
      else if (c === 0x2e || c === 0x5c || c === 0x2f) s += '\\' + String.fromCharCode(c)
      else s += String.fromCharCode(c)
    }
    return s
  }).join('.')
}

export function nameWire (labels: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = []
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l))
  parts.push(Buffer.from([0]))
  return Buffer.concat(parts)
}

/** Labels of a name read from `b` at `p` (no compression), or undefined. */
export function readLabels (b: Buffer, p: number): Uint8Array[] | undefined {
  const out: Uint8Array[] = []
  for (;;) {
    if (p >= b.length) return undefined
    const l = b[p]
    if (l === 0) return out
    if (l > 63 || p + 1 + l > b.length) return undefined
    out.push(b.subarray(p + 1, p + 1 + l))
    p += 1 + l
  }
}

export interface QuerySpec {
  readonly id: number
  /** Header flags other than QR and opcode (both zero in a query egressd serves). */
  readonly flags: number
  readonly labels: Uint8Array[]
  readonly qtype: number
  readonly qclass: number
  readonly edns: { readonly size: number, readonly do: boolean, readonly options: Uint8Array } | null
}

export const querySpecArb: fc.Arbitrary<QuerySpec> = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: 0xffff }).map(f => f & 0x07ff),
  labels: labelsArb,
  qtype: fc.oneof(fc.constantFrom(1, 28, 5, 64, 65, 16, 12, 15, 255, 41), fc.integer({ min: 0, max: 0xffff })),
  qclass: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 0xffff })),
  edns: fc.option(fc.record({
    size: fc.oneof(fc.constantFrom(0, 512, 1232, 4096, 65535), fc.integer({ min: 0, max: 0xffff })),
    do: fc.boolean(),
    options: fc.uint8Array({ maxLength: 40 })
  }), { nil: null })
})

export function encodeQuery (q: QuerySpec): Buffer {
  const h = Buffer.alloc(12)
  h.writeUInt16BE(q.id, 0)
  h.writeUInt16BE(q.flags, 2)
  h.writeUInt16BE(1, 4)
  h.writeUInt16BE(q.edns === null ? 0 : 1, 10)
  const tail = Buffer.alloc(4)
  tail.writeUInt16BE(q.qtype, 0)
  tail.writeUInt16BE(q.qclass, 2)
  const parts = [h, nameWire(q.labels), tail]
  if (q.edns !== null) {
    const opt = Buffer.alloc(11)
    opt[0] = 0
    opt.writeUInt16BE(41, 1)
    opt.writeUInt16BE(q.edns.size, 3)
    opt.writeUInt16BE(q.edns.do ? 0x8000 : 0, 7)
    opt.writeUInt16BE(q.edns.options.length, 9)
    parts.push(opt, Buffer.from(q.edns.options))
  }
  return Buffer.concat(parts)
}

/** Plain names as dns-packet writes them (letters, digits, '-', '_'), 1-5 labels. */
export const plainNameArb: fc.Arbitrary<string> = fc.array(hostChars(1, 30), { minLength: 1, maxLength: 5 }).map(l => l.map(x => Buffer.from(x).toString('latin1')).join('.'))

export const recordTypeArb: fc.Arbitrary<packet.RecordType> = fc.constantFrom<packet.RecordType>('A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'PTR', 'SOA', 'SRV', 'CAA', 'DNSKEY', 'DS', 'NAPTR')

export { packet }
