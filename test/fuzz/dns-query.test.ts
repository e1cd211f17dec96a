// Fuzzing the reader of client packets (src/dns/wire.ts readQuery) and the answers built from what
// it read: any bytes give a Query or a Malformed kind (never a throw); a generated query reads back
// as it was written (by hand with any label bytes, and by dns-packet); every truncation of a valid
// query is a FORMERR (or a drop below 12 bytes); trailing bytes are 'trailing'; mutations keep every
// invariant of a Query.

import t from 'tap'
import {
  MALFORMED_KINDS, Rcode, emptyResponse, headerOnlyResponse, keyHash, malformedRcode, readQuery, type Malformed, type Query
} from '../../src/dns/wire.js'
import { fc, fuzz } from './harness.js'
import { encodeQuery, packet, plainNameArb, presentation, querySpecArb, readLabels, recordTypeArb } from './dns-gen.js'

const TARGET = 'dns-query'

/** Everything that must hold for readQuery's result on `msg`, whatever the bytes. */
function checkRead (msg: Buffer, r: Query | Malformed): void {
  if (typeof r === 'string') {
    if (!MALFORMED_KINDS.includes(r)) throw new Error(`unknown kind ${r}`)
    const rc = malformedRcode(r)
    if (![-1, Rcode.FORMERR, Rcode.NOTIMP].includes(rc)) throw new Error(`rcode ${rc} for ${r}`)
    if ((msg.length < 12) !== (r === 'short')) throw new Error(`'short' for ${msg.length} bytes`)
    if (rc >= 0) {
      const a = headerOnlyResponse(msg, rc)
      if (a.length !== 12 || a[0] !== msg[0] || a[1] !== msg[1] || (a[2] & 0x80) === 0 || (a[3] & 0x0f) !== rc) throw new Error(`bad header-only answer ${a.toString('hex')}`)
    }
    return
  }
  if (msg.length < 12 || (msg[2] & 0x80) !== 0 || (msg[2] & 0x78) !== 0) throw new Error('accepted a response or another opcode')
  if (r.id !== msg.readUInt16BE(0) || r.flags !== msg.readUInt16BE(2)) throw new Error('id/flags')
  if (r.questionEnd > msg.length || r.questionEnd < 12 + 1 + 4) throw new Error(`questionEnd ${r.questionEnd}`)
  if (r.qtype !== msg.readUInt16BE(r.questionEnd - 4) || r.qclass !== msg.readUInt16BE(r.questionEnd - 2)) throw new Error('qtype/qclass')
  const labels = readLabels(msg, 12)
  if (labels === undefined) throw new Error('accepted an unreadable name')
  if (r.qname !== presentation(labels)) throw new Error(`qname ${JSON.stringify(r.qname)} != ${JSON.stringify(presentation(labels))}`)
  if (!r.key.startsWith(r.qname)) throw new Error(`key ${r.key} does not start with qname`)
  if (r.key !== r.qname && r.key[r.qname.length] !== '/') throw new Error(`key ${r.key}: no '/' after the name`)
  if (keyHash(r.key) !== r.keyHash || r.keyHash === 0) throw new Error(`keyHash ${r.keyHash} != ${keyHash(r.key)}`)
  if (r.udpSize < 512 || r.udpSize > 65535 || (!r.edns && r.udpSize !== 512)) throw new Error(`udpSize ${r.udpSize}`)
  if (!r.edns && r.do) throw new Error('DO without EDNS')
  const e = emptyResponse(msg, r, Rcode.SERVFAIL, 1232)
  if (e[0] !== msg[0] || e[1] !== msg[1] || (e[3] & 0x0f) !== Rcode.SERVFAIL) throw new Error('empty response header')
  if (!e.subarray(12, r.questionEnd).equals(msg.subarray(12, r.questionEnd))) throw new Error('empty response question')
  if (e.length !== r.questionEnd + (r.edns ? 11 : 0)) throw new Error(`empty response length ${e.length}`)
}

const checkBytes = (b: Uint8Array): void => {
  const msg = Buffer.from(b)
  checkRead(msg, readQuery(msg))
}

/** 12 bytes of a query header (QR 0, opcode 0, QDCOUNT 1, other counts mostly 0), then anything. */
const headerThenBytes = fc.tuple(
  fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0x07ff }), fc.constantFrom(0, 0, 0, 1, 2, 0xffff),
  fc.uint8Array({ maxLength: 300 })
).map(([id, flags, arcount, rest]) => {
  const h = Buffer.alloc(12)
  h.writeUInt16BE(id, 0)
  h.writeUInt16BE(flags, 2)
  h.writeUInt16BE(1, 4)
  h.writeUInt16BE(arcount, 10)
  return Uint8Array.from(Buffer.concat([h, Buffer.from(rest)]))
})

fuzz(t, { target: TARGET, name: 'arbitrary-bytes', runs: 1500, arb: fc.uint8Array({ maxLength: 600 }), check: checkBytes })

fuzz(t, { target: TARGET, name: 'header-then-bytes', runs: 2000, arb: headerThenBytes, check: checkBytes })

fuzz(t, {
  target: TARGET,
  name: 'valid-round-trip',
  runs: 2000,
  arb: querySpecArb,
  check: q => {
    const msg = encodeQuery(q)
    const r = readQuery(msg)
    if (typeof r === 'string') throw new Error(`valid query read as '${r}'`)
    checkRead(msg, r)
    const want = {
      id: q.id, qname: presentation(q.labels), qtype: q.qtype, qclass: q.qclass, edns: q.edns !== null,
      do: q.edns?.do ?? false, udpSize: q.edns === null ? 512 : Math.max(512, q.edns.size), questionEnd: 12 + 1 + q.labels.reduce((n, l) => n + 1 + l.length, 0) + 4
    }
    const got = { id: r.id, qname: r.qname, qtype: r.qtype, qclass: r.qclass, edns: r.edns, do: r.do, udpSize: r.udpSize, questionEnd: r.questionEnd }
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`read ${JSON.stringify(got)}, wrote ${JSON.stringify(want)}`)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'dns-packet-round-trip',
  runs: 1000,
  arb: fc.record({
    id: fc.integer({ min: 0, max: 0xffff }),
    name: plainNameArb,
    type: recordTypeArb,
    klass: fc.constantFrom<packet.RecordClass>('IN', 'CH', 'HS', 'ANY'),
    edns: fc.option(fc.record({ size: fc.integer({ min: 0, max: 0xffff }), do: fc.boolean() }), { nil: null })
  }),
  check: s => {
    const msg = packet.encode({
      type: 'query',
      id: s.id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ name: s.name, type: s.type, class: s.klass }],
      ...(s.edns !== null && { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: s.edns.size, flags: s.edns.do ? packet.DNSSEC_OK : 0 } as packet.Answer] })
    })
    const r = readQuery(msg)
    if (typeof r === 'string') throw new Error(`dns-packet query read as '${r}'`)
    checkRead(msg, r)
    const d = packet.decode(msg)
    const q = d.questions![0]
    if (r.qname !== s.name.toLowerCase()) throw new Error(`qname ${r.qname} != ${s.name.toLowerCase()}`)
    if (r.qtype !== msg.readUInt16BE(r.questionEnd - 4) || packet.decode(msg).questions![0].type !== q.type) throw new Error('qtype')
    if (r.id !== d.id || r.edns !== (s.edns !== null) || r.do !== (s.edns?.do ?? false)) throw new Error('id/edns/do')
    // dns-packet writes a payload size of 0 as 4096: compare with what it decodes.
    const opt = d.additionals?.find(a => a.type === 'OPT') as { udpPayloadSize: number } | undefined
    if (opt !== undefined && r.udpSize !== Math.max(512, opt.udpPayloadSize)) throw new Error(`udpSize ${r.udpSize}, OPT says ${opt.udpPayloadSize}`)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'truncated',
  runs: 2000,
  arb: fc.tuple(querySpecArb, fc.double({ min: 0, max: 1, noNaN: true })),
  check: ([q, f]) => {
    const full = encodeQuery(q)
    const cut = Math.min(full.length - 1, Math.floor(f * full.length))
    const msg = full.subarray(0, cut)
    const r = readQuery(msg)
    checkRead(msg, r)
    if (typeof r !== 'string') throw new Error(`a ${cut}-byte prefix of a ${full.length}-byte query was read as a query`)
    const want = cut < 12 ? -1 : Rcode.FORMERR
    if (malformedRcode(r) !== want) throw new Error(`prefix of ${cut} bytes: '${r}' (rcode ${malformedRcode(r)}, want ${want})`)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'trailing',
  runs: 1000,
  arb: fc.tuple(querySpecArb, fc.uint8Array({ minLength: 1, maxLength: 30 })),
  check: ([q, extra]) => {
    const msg = Buffer.concat([encodeQuery(q), Buffer.from(extra)])
    const r = readQuery(msg)
    checkRead(msg, r)
    if (r !== 'trailing') throw new Error(`query with ${extra.length} trailing bytes read as ${typeof r === 'string' ? r : 'a query'}`)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'mutated',
  runs: 3000,
  arb: fc.tuple(querySpecArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })),
  check: ([q, changes]) => {
    const msg = encodeQuery(q)
    for (const [at, v] of changes) msg[at % msg.length] = v
    checkRead(msg, readQuery(msg))
  }
})
