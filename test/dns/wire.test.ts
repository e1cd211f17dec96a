import t from 'tap'
import * as packet from 'dns-packet'
import {
  readQuery, malformedRcode, prepareAnswer, renderAnswer, renderCached, renderInPlace, upstreamQuestion, emptyResponse, headerOnlyResponse,
  truncateForUdp, edeOption, buildUpstreamQuery, questionMatches, Rcode, answerTargets, answerTargetsIn, AnswerTargets, keyHash, type Query, type StoredAnswer,
  txtRdata, txtResponse, edeOptions, buildOpt, type Malformed
} from '../../src/dns/wire.js'
import { asOpt, optOf, optRecord, stringData, ttlOf } from '../helpers/dns-records.js'

const TTL = { minTtl: 0, maxTtl: 86400, negativeMaxTtl: 3600 }

function query (name: string, opts: { type?: packet.RecordType, id?: number, edns?: number, do?: boolean } = {}): Buffer {
  return packet.encode({
    type: 'query',
    id: opts.id ?? 0x1234,
    flags: packet.RECURSION_DESIRED,
    questions: [{ name, type: opts.type ?? 'A', class: 'IN' }],
    additionals: opts.edns === undefined ? [] : [optRecord({ udpPayloadSize: opts.edns, flags: opts.do === true ? packet.DNSSEC_OK : 0 })]
  })
}

function read (msg: Buffer): Query {
  const q = readQuery(msg)
  if (typeof q === 'string') throw new Error(`unexpected ${q}`)
  return q
}

t.test('readQuery reads header, question and OPT', async t => {
  const q = read(query('WwW.Example.COM', { type: 'AAAA', id: 7, edns: 4096, do: true }))
  t.equal(q.id, 7)
  t.equal(q.qname, 'www.example.com')
  t.equal(q.qtype, 28)
  t.equal(q.qclass, 1)
  t.equal(q.edns, true)
  t.equal(q.udpSize, 4096)
  t.equal(q.do, true)
  t.equal(q.key, 'www.example.com/28/do')
  const plain = read(query('example.com'))
  t.equal(plain.edns, false)
  t.equal(plain.udpSize, 512)
  t.equal(plain.key, 'example.com', 'A/IN without DO: the name alone')
  t.equal(read(query('example.com', { type: 'AAAA' })).key, 'example.com/28')
  t.equal(read(query('x.test', { edns: 100 })).udpSize, 512, 'advertised sizes under 512 count as 512')
  t.equal(read(query('.')).qname, '', 'root')
})

t.test('readQuery escapes dots and odd bytes inside labels', async t => {
  // label "a.b" then "test": must not collide with a.b.test
  const msg = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x2e, 0x62, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1])
  t.equal(read(msg).qname, 'a\\.b.test')
  const odd = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x07, 0, 0, 1, 0, 1])
  t.equal(read(odd).qname, 'a\\007')
})

t.test('readQuery classifies every malformation', async t => {
  const ok = query('example.com')
  const mut = (f: (b: Buffer) => Buffer): Buffer => f(Buffer.from(ok))
  const name255 = Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.') // 5*64+1 = 321 bytes on the wire
  const cases: Array<[string, Buffer, Malformed, number]> = [
    ['11 bytes', ok.subarray(0, 11), 'short', -1],
    ['QR=1', mut(b => { b[2] |= 0x80; return b }), 'response', -1],
    ['opcode 2 (STATUS)', mut(b => { b[2] |= 2 << 3; return b }), 'opcode', Rcode.NOTIMP],
    ['QDCOUNT 0', mut(b => { b[5] = 0; return b }), 'qdcount', Rcode.FORMERR],
    ['QDCOUNT 2', mut(b => { b[5] = 2; return b }), 'qdcount', Rcode.FORMERR],
    ['ANCOUNT 1', mut(b => { b[7] = 1; return b }), 'sections', Rcode.FORMERR],
    ['label length 64', mut(b => { b[12] = 64; return b }), 'label', Rcode.FORMERR],
    ['compression pointer', Buffer.concat([ok.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), 'pointer', Rcode.FORMERR],
    ['name over 255 bytes', query(name255), 'name-too-long', Rcode.FORMERR],
    ['label past the end', ok.subarray(0, 15), 'truncated', Rcode.FORMERR],
    ['no QTYPE/QCLASS', ok.subarray(0, ok.length - 3), 'truncated', Rcode.FORMERR],
    ['two OPT records', (() => { const b = query('x.test', { edns: 1232 }); const opt = b.subarray(b.length - 11); const two = Buffer.concat([b, opt]); two[11] = 2; return two })(), 'opt', Rcode.FORMERR],
    ['non-OPT additional', (() => { const b = Buffer.concat([ok, Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]); b[11] = 1; return b })(), 'opt', Rcode.FORMERR],
    ['trailing garbage', Buffer.concat([ok, Buffer.from([1, 2, 3])]), 'trailing', Rcode.FORMERR]
  ]
  for (const [label, msg, kind, rcode] of cases) {
    t.equal(readQuery(msg), kind, label)
    t.equal(malformedRcode(kind), rcode, `${label}: rcode`)
  }
})

t.test('headerOnlyResponse echoes ID and opcode with QR and the rcode', async t => {
  const msg = query('x.test', { id: 0xbeef })
  msg[2] |= 2 << 3
  const r = headerOnlyResponse(msg, Rcode.NOTIMP)
  t.equal(r.length, 12)
  t.equal(r.readUInt16BE(0), 0xbeef)
  t.equal(r[2] & 0x80, 0x80)
  t.equal((r[2] >> 3) & 0xf, 2)
  t.equal(r[3] & 0xf, Rcode.NOTIMP)
})

function answer (q: Buffer, answers: packet.Answer[], opts: { rcode?: 'NOERROR' | 'SERVFAIL' | 'NXDOMAIN', authorities?: packet.Answer[], edns?: boolean, tc?: boolean } = {}): Buffer {
  const d = packet.decode(q)
  return packet.encode({
    type: 'response',
    id: d.id,
    // The rcode is the flags' low 4 bits: dns-packet's encode() reads no `rcode` field.
    flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (opts.tc === true ? packet.TRUNCATED_RESPONSE : 0) | Rcode[opts.rcode ?? 'NOERROR'],
    questions: d.questions,
    answers,
    authorities: opts.authorities ?? [],
    additionals: opts.edns === false ? [] : [optRecord({ udpPayloadSize: 4096, flags: 0 })]
  })
}

/** The TTLs stored in the body, every section, as dns-packet reads them. */
const ttlsOf = (a: StoredAnswer): number[] => {
  const d = packet.decode(a.body)
  return [...d.answers ?? [], ...d.authorities ?? [], ...d.additionals ?? []].map(r => (r as { ttl: number }).ttl)
}

/**
 * The answer as a cache hit `elapsed` seconds after storing: renderCached from body and OPT laid
 * out one after the other at an odd offset of a larger buffer, as in the cache's arena.
 */
function cached (a: StoredAnswer, msg: Buffer, elapsed: number): Buffer {
  const src = Buffer.concat([Buffer.alloc(77, 0xee), a.body, a.opt, Buffer.alloc(20, 0xee)])
  return renderCached(src, 77, a.body.length, a.opt.length, msg, read(msg), elapsed)
}

function prepared (msg: Buffer, resp: Buffer): StoredAnswer {
  const q = read(msg)
  const a = prepareAnswer(resp, upstreamQuestion(msg, q), TTL, 1232)
  if (typeof a === 'string') throw new Error(a)
  return a
}

t.test('prepareAnswer validates and clamps TTLs', async t => {
  const msg = query('www.test', { edns: 1232 })
  // prepareAnswer may take the answer over (changed in place): each call gets its own copy.
  const resp = (): Buffer => answer(msg, [
    { name: 'www.test', type: 'CNAME', ttl: 300, data: 'Edge.CDN.test' },
    { name: 'edge.cdn.test', type: 'A', ttl: 60, data: '192.0.2.1' },
    { name: 'edge.cdn.test', type: 'AAAA', ttl: 120, data: '2001:db8::1' }
  ])
  const a = prepared(msg, resp())
  t.equal(a.rcode, 0)
  t.equal(a.lifetime, 60)
  t.same(ttlsOf(a), [300, 60, 120])
  t.equal(a.ancount, 3)
  t.equal(a.body.readUInt16BE(10), 0, 'OPT removed from the body')
  const clamped = prepareAnswer(resp(), upstreamQuestion(msg, read(msg)), { minTtl: 100, maxTtl: 200, negativeMaxTtl: 50 }, 1232) as StoredAnswer
  t.same(ttlsOf(clamped), [200, 100, 120])
  t.equal(clamped.lifetime, 100)
  // Served 10 s later: every TTL field found and decremented.
  const later = packet.decode(cached(a, msg, 10))
  t.same(later.answers!.map(r => (r as { ttl: number }).ttl), [290, 50, 110])
})

t.test('TTLs are decremented in every section, across compressed names', async t => {
  const msg = query('nx.test', { edns: 1232 })
  const resp = Buffer.from(packet.encode({
    type: 'response', id: 1, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
    questions: [{ name: 'nx.test', type: 'A', class: 'IN' }],
    answers: [{ name: 'nx.test', type: 'CNAME', ttl: 500, data: 'alias.nx.test' }],
    authorities: [{ name: 'nx.test', type: 'SOA', ttl: 900, data: { mname: 'ns.nx.test', rname: 'host.nx.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 300 } }],
    additionals: [{ name: 'ns.nx.test', type: 'A', ttl: 700, data: '192.0.2.53' }, optRecord({ udpPayloadSize: 4096 })]
  }))
  const a = prepared(msg, resp)
  t.same(ttlsOf(a), [500, 900, 700])
  const out = packet.decode(cached(a, msg, 100))
  t.same([...out.answers!, ...out.authorities!, ...out.additionals!.filter(r => r.type !== 'OPT')].map(r => (r as { ttl: number }).ttl), [400, 800, 600])
})

t.test('prepareAnswer keeps a datagram that owns its memory, and copies a view into a larger buffer', async t => {
  const msg = query('www.test', { edns: 1232 })
  const resp = answer(msg, [{ name: 'www.test', type: 'A', ttl: 60, data: '192.0.2.1' }])
  const slab = Buffer.alloc(resp.length + 100)
  resp.copy(slab, 50)
  const view = slab.subarray(50, 50 + resp.length)
  const fromView = prepared(msg, view)
  t.not(fromView.body.buffer, slab.buffer, 'a view is copied: the cache does not pin its buffer')
  t.same(view, resp, 'and the view is left as it was')
  const datagram = Buffer.from(new Uint8Array(resp).buffer) // as node:dgram delivers it: a buffer of its own
  t.equal(datagram.buffer.byteLength, resp.length)
  const fromDatagram = prepared(msg, datagram)
  t.equal(fromDatagram.body.buffer, datagram.buffer, 'a datagram becomes the body in place')
  t.equal(fromDatagram.body.readUInt16BE(10), 0, 'OPT cut off')
  t.same(fromDatagram.body, fromView.body, 'both give the same body')
})

t.test('prepareAnswer rejects answers that do not fit the question or are broken', async t => {
  const msg = query('www.test')
  const q = upstreamQuestion(msg, read(msg))
  t.equal(prepareAnswer(answer(query('other.test'), []), q, TTL, 1232), 'question')
  t.equal(prepareAnswer(answer(query('www.test', { type: 'AAAA' }), []), q, TTL, 1232), 'question')
  t.equal(prepareAnswer(msg, q, TTL, 1232), 'not-response')
  t.equal(prepareAnswer(answer(msg, [], { tc: true }), q, TTL, 1232), 'truncated')
  const good = answer(msg, [{ name: 'www.test', type: 'A', ttl: 60, data: '192.0.2.1' }])
  t.equal(prepareAnswer(good.subarray(0, good.length - 3), q, TTL, 1232), 'format')
  t.equal(prepareAnswer(good.subarray(0, 8), q, TTL, 1232), 'short')
  t.ok(questionMatches(answer(query('WWW.TEST'), []), q), 'question case does not matter')
  // QTYPE 65 (HTTPS) is the byte 0x41 ('A'): it must not be case-folded into 0x61 (97).
  const https = query('svc.test')
  https.writeUInt16BE(65, https.length - 4) // dns-packet does not know HTTPS
  const httpsQuestion = upstreamQuestion(https, read(https))
  t.equal(httpsQuestion.readUInt16BE(httpsQuestion.length - 4), 65)
  const answer65 = Buffer.from(https)
  answer65[2] |= 0x80
  t.ok(questionMatches(answer65, httpsQuestion), 'type 65 matches itself')
  answer65.writeUInt16BE(97, answer65.length - 4)
  t.notOk(questionMatches(answer65, httpsQuestion), 'type 97 is not type 65')
})

t.test('negative answers live for min(SOA TTL, SOA MINIMUM), capped (RFC 2308)', async t => {
  const msg = query('nx.test')
  const soa = (ttl: number, minimum: number): packet.Answer => ({ name: 'test', type: 'SOA', ttl, data: { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum } })
  t.equal(prepared(msg, answer(msg, [], { rcode: 'NXDOMAIN', authorities: [soa(600, 120)] })).lifetime, 120)
  t.equal(prepared(msg, answer(msg, [], { rcode: 'NXDOMAIN', authorities: [soa(30, 120)] })).lifetime, 30)
  t.equal(prepared(msg, answer(msg, [], { rcode: 'NOERROR', authorities: [soa(9999, 9999)] })).lifetime, 3600, 'NODATA, capped at negativeMaxTtl')
  t.equal(prepared(msg, answer(msg, [], { rcode: 'NXDOMAIN' })).lifetime, 0, 'no SOA: not cached')
  t.equal(prepared(msg, answer(msg, [], { rcode: 'SERVFAIL' })).lifetime, 0, 'SERVFAIL: not cached')
  t.equal(prepared(msg, answer(msg, [], { rcode: 'SERVFAIL', authorities: [soa(600, 120)] })).lifetime, 0, 'SERVFAIL, even with an SOA: not cached')
})

t.test('renderCached patches ID, question case, RD, TTLs and OPT per client', async t => {
  const up = query('www.test', { edns: 1232 })
  const a = prepared(up, answer(up, [{ name: 'www.test', type: 'A', ttl: 300, data: '192.0.2.1' }]))
  const client = query('WwW.TeSt', { id: 0x4242, edns: 4096 })
  const out = packet.decode(cached(a, client, 100))
  t.equal(out.id, 0x4242)
  t.equal(out.questions![0].name, 'WwW.TeSt')
  t.equal(ttlOf(out.answers![0]), 200)
  t.equal(stringData(out.answers![0]), '192.0.2.1')
  const opt = asOpt(optOf(out))
  t.equal(opt.udpPayloadSize, 1232, 'our payload size, not the upstream one')
  const noEdns = query('www.test', { id: 1 })
  const plain = packet.decode(cached(a, noEdns, 400))
  t.equal(plain.additionals!.length, 0, 'no OPT for a client without EDNS')
  t.equal(ttlOf(plain.answers![0]), 0, 'TTL never below 0')
})

t.test('emptyResponse carries the question, OPT and EDE', async t => {
  const msg = query('blocked.test', { id: 99, edns: 1232, do: true })
  const r = packet.decode(emptyResponse(msg, read(msg), Rcode.NXDOMAIN, 1232, edeOption(15, 'telegram')))
  t.equal(r.id, 99)
  t.equal(r.rcode, 'NXDOMAIN')
  t.equal(r.questions![0].name, 'blocked.test')
  const opt = asOpt(r.additionals![0])
  t.equal(opt.type, 'OPT')
  t.equal(opt.flags & packet.DNSSEC_OK, packet.DNSSEC_OK)
  t.equal(opt.options[0].code, 15)
  t.equal(Buffer.from(opt.options[0].data!).subarray(2).toString(), 'telegram')
  t.equal(Buffer.from(opt.options[0].data!).readUInt16BE(0), 15)
  const plain = packet.decode(emptyResponse(query('x.test'), read(query('x.test')), Rcode.SERVFAIL, 1232))
  t.equal(plain.additionals!.length, 0)
  t.equal(plain.rcode, 'SERVFAIL')
})

t.test('truncateForUdp cuts to header and question with TC set', async t => {
  const msg = query('big.test', { type: 'TXT', edns: 1232 })
  const big = prepared(msg, answer(msg, Array.from({ length: 8 }, (_, i) => ({ name: 'big.test', type: 'TXT', ttl: 60, data: 'x'.repeat(250 + i) }) satisfies packet.Answer)))
  const full = renderAnswer(big, msg, read(msg))
  t.ok(full.length > 1232)
  const cut = truncateForUdp(full, msg, read(msg), 1232, 1232)
  const d = packet.decode(cut)
  t.ok((d.flags! & packet.TRUNCATED_RESPONSE) !== 0, 'TC')
  t.equal(d.answers!.length, 0)
  t.equal(d.questions![0].name, 'big.test')
  t.equal(truncateForUdp(full, msg, read(msg), 65535, 1232), full, 'fits: unchanged')
})

t.test('buildUpstreamQuery asks with RD, our OPT and the DO bit', async t => {
  const msg = query('X.Test', { edns: 512, do: true })
  const d = packet.decode(buildUpstreamQuery(upstreamQuestion(msg, read(msg)), true, 1232))
  t.equal(d.questions![0].name, 'x.test', 'lower-cased')
  t.ok((d.flags! & packet.RECURSION_DESIRED) !== 0)
  const opt = asOpt(d.additionals![0])
  t.equal(opt.udpPayloadSize, 1232)
  t.equal(opt.flags & packet.DNSSEC_OK, packet.DNSSEC_OK)
  // Byte for byte (every byte is written, none left from the buffer pool): ID 0, RD, one question,
  // an OPT with our payload size and no DO.
  const plain = query('Y.test')
  const expected = Buffer.from(packet.encode({
    type: 'query', id: 0, flags: packet.RECURSION_DESIRED, questions: [{ name: 'y.test', type: 'A', class: 'IN' }],
    additionals: [optRecord({ udpPayloadSize: 1232, flags: 0 })]
  }))
  for (let i = 0; i < 50; i++) Buffer.allocUnsafe(64).fill(0xa5) // leave used bytes behind in the pool
  t.same(buildUpstreamQuery(upstreamQuestion(plain, read(plain)), false, 1232), expected)
})

t.test('records after an OPT in the middle are dropped with it; top-bit TTLs count as 0', async t => {
  const msg = query('mid.test')
  const resp = packet.encode({
    type: 'response', id: 1, flags: packet.RECURSION_AVAILABLE, questions: [{ name: 'mid.test', type: 'A', class: 'IN' }],
    answers: [{ name: 'mid.test', type: 'A', ttl: 60, data: '192.0.2.1' }],
    additionals: [
      optRecord({ udpPayloadSize: 4096 }),
      { name: 'ns1.mid.test', type: 'A', ttl: 60, data: '192.0.2.53' },
      { name: 'ns1.mid.test', type: 'AAAA', ttl: 60, data: '2001:db8::53' }
    ]
  })
  const a = prepared(msg, resp)
  t.equal(a.body.readUInt16BE(10), 0, 'ARCOUNT: nothing before the OPT')
  const d = packet.decode(renderAnswer(a, msg, read(msg)))
  t.same(d.answers!.map(stringData), ['192.0.2.1'])
  t.equal(d.additionals!.length, 0)
  const big = Buffer.from(packet.encode({
    type: 'response', id: 1, flags: 0, questions: [{ name: 'mid.test', type: 'A', class: 'IN' }],
    answers: [{ name: 'mid.test', type: 'A', ttl: 60, data: '192.0.2.1' }]
  }))
  big.writeUInt32BE(0x80000010, big.length - 10) // the A record's TTL
  const b = prepared(msg, big)
  t.equal(b.lifetime, 0, 'TTL with the top bit set is 0 (RFC 2181 8): not cached')
  t.same(ttlsOf(b), [0])
})

t.test('answerTargetsIn reads an answer kept at an offset of a larger buffer as answerTargets reads it alone', async t => {
  const msg = query('www.test', { edns: 1232 })
  const a = prepared(msg, answer(msg, [
    { name: 'www.test', type: 'CNAME', ttl: 300, data: 'edge.cdn.test' },
    { name: 'edge.cdn.test', type: 'CNAME', ttl: 300, data: 'x.edge.cdn.test' },
    { name: 'x.edge.cdn.test', type: 'A', ttl: 60, data: '192.0.2.1' },
    { name: 'x.edge.cdn.test', type: 'AAAA', ttl: 60, data: '2001:db8::1' }
  ]))
  const alone = answerTargets(a)
  // Compression pointers count from the message's first byte: read at offset 77, they must not
  // point into the bytes before it.
  const src = Buffer.concat([Buffer.alloc(77, 0xee), a.body, Buffer.alloc(20, 0xee)])
  const at = answerTargetsIn(src, 77, 77 + a.body.length, new AnswerTargets())
  const parts = (x: AnswerTargets): unknown[] => [x.names.slice(0, x.nameCount), x.v4.slice(0, x.v4Count), x.v6.slice(0, x.v6Count)]
  t.same(parts(alone), [['edge.cdn.test', 'x.edge.cdn.test'], [0xc0000201], ['2001:db8:0:0:0:0:0:1']])
  t.same(parts(at), parts(alone))
})

t.test('readQuery finds the key hash as keyHash(key) would, for every kind of key', async t => {
  const cases: Buffer[] = [
    query('WWW.Example.Test'),
    query('www.example.test', { type: 'AAAA' }),
    query('www.example.test', { edns: 1232, do: true }),
    query('') // the root
  ]
  const odd = query('a.test')
  odd[13] = 0x2e // a dot inside the label: the escaped (slow) path
  cases.push(odd)
  const chaos = query('version.bind', { type: 'TXT' })
  chaos.writeUInt16BE(3, chaos.length - 2) // class CH
  cases.push(chaos)
  const keys = new Set<string>()
  for (const msg of cases) {
    const q = read(msg)
    keys.add(q.key)
    t.equal(q.keyHash, keyHash(q.key), `key ${JSON.stringify(q.key)}`)
  }
  t.equal(keys.size, cases.length, 'every case has a key of its own')
})

t.test('renderInPlace sends the upstream datagram back changed for the client, as renderAnswer would build it', async t => {
  const up = query('www.test', { edns: 1232 })
  const own = (b: Buffer): Buffer => Buffer.from(new Uint8Array(b).buffer) // a datagram: a buffer of its own
  const records = [{ name: 'www.test', type: 'CNAME', ttl: 300, data: 'edge.test' }, { name: 'edge.test', type: 'A', ttl: 60, data: '192.0.2.1' }] as packet.Answer[]
  for (const client of [query('WwW.TeSt', { id: 0x1234, edns: 4096 }), query('WWW.test', { id: 0x4321 })]) {
    const copied = packet.decode(renderAnswer(prepared(up, own(answer(up, records))), client, read(client)))
    const datagram = own(answer(up, records))
    const a = prepared(up, datagram)
    const out = renderInPlace(a, client, read(client))
    t.equal(out.buffer, datagram.buffer, 'no copy: the datagram itself')
    t.same(packet.decode(out), copied, `the same answer as renderAnswer builds (${read(client).edns ? 'EDNS' : 'no EDNS'})`)
  }
  // An upstream OPT with options (here an EDE): ours carries them too, so it is the same size
  // and goes in place; with records after the OPT, it is not, and a new buffer is built.
  const ede = (more: packet.Answer[]): Buffer => own(Buffer.from(packet.encode({
    type: 'response', id: 1, flags: packet.RECURSION_DESIRED, questions: [{ name: 'www.test', type: 'A', class: 'IN' }],
    answers: [{ name: 'www.test', type: 'A', ttl: 60, data: '192.0.2.1' }],
    additionals: [optRecord({ udpPayloadSize: 4096, options: [{ code: 15, data: Buffer.from([0, 3]) }] }), ...more]
  })))
  const client = query('www.test', { id: 9, edns: 1232 })
  for (const [more, inPlace] of [[[], true], [[{ name: 'ns.test', type: 'A', ttl: 60, data: '192.0.2.53' }], false]] as Array<[packet.Answer[], boolean]>) {
    const expected = packet.decode(renderAnswer(prepared(up, ede(more)), client, read(client)))
    const datagram = ede(more)
    const out = renderInPlace(prepared(up, datagram), client, read(client))
    t.equal(out.buffer === datagram.buffer, inPlace, inPlace ? 'in place' : 'copied')
    t.same(packet.decode(out), expected)
    t.equal(asOpt(packet.decode(out).additionals![0]).options[0].code, 15, 'the EDE passed on')
  }
})

/** A query with an OPT of EDNS version `version` (and DO), as dns-packet writes it. */
function versioned (name: string, version: number, opts: { type?: packet.RecordType, class?: packet.RecordClass, do?: boolean } = {}): Buffer {
  return packet.encode({
    type: 'query', id: 0x4321, flags: packet.RECURSION_DESIRED,
    questions: [{ name, type: opts.type ?? 'A', class: opts.class ?? 'IN' }],
    additionals: [optRecord({ udpPayloadSize: 1232, ednsVersion: version, flags: opts.do === true ? packet.DNSSEC_OK : 0 })]
  })
}

t.test('readQuery reads the EDNS version (0 without EDNS)', async t => {
  const cases: Array<[string, Buffer, number]> = [
    ['no EDNS', query('x.test'), 0],
    ['version 0', versioned('x.test', 0), 0],
    ['version 1', versioned('x.test', 1), 1],
    ['version 255 with DO', versioned('x.test', 255, { do: true }), 255]
  ]
  for (const [label, msg, version] of cases) t.equal(read(msg).ednsVersion, version, label)
})

t.test('emptyResponse: the rcode\'s lower 4 bits in the header, its upper 8 in the OPT (RFC 6891 6.1.3), always our version 0', async t => {
  const cases: Array<[string, number, number, number]> = [
    // label, rcode, header bits, OPT EXTENDED-RCODE
    ['NOERROR', Rcode.NOERROR, 0, 0],
    ['SERVFAIL', Rcode.SERVFAIL, 2, 0],
    ['REFUSED', Rcode.REFUSED, 5, 0],
    ['BADVERS (16)', Rcode.BADVERS, 0, 1],
    ['BADKEY (17)', 17, 1, 1],
    ['largest (4095)', 4095, 15, 255]
  ]
  for (const [label, rcode, low, high] of cases) {
    for (const dnssecOk of [false, true]) {
      const msg = versioned('x.test', 3, { do: dnssecOk })
      const b = emptyResponse(msg, read(msg), rcode, 1232)
      const d = packet.decode(b)
      t.equal(d.flags! & 0x0f, low, `${label}: header`)
      const opt = d.additionals![0]
      t.match(opt, { type: 'OPT', extendedRcode: high, ednsVersion: 0, udpPayloadSize: 1232, flag_do: dnssecOk }, `${label}: OPT${dnssecOk ? ' with DO' : ''}`)
      t.equal(d.id, 0x4321)
      t.same(d.questions, [{ name: 'x.test', type: 'A', class: 'IN' }])
    }
  }
  const o = buildOpt(1232, false)
  t.same([...o.subarray(5, 7)], [0, 0], 'buildOpt: EXTENDED-RCODE 0, version 0')
  for (let i = 0; i < 50; i++) Buffer.allocUnsafe(64).fill(0xa5) // used bytes left in the pool
  const msg = query('x.test', { edns: 1232 })
  t.same([...emptyResponse(msg, read(msg), Rcode.SERVFAIL, 1232).subarray(-6, -4)], [0, 0], 'every OPT byte written')
})

t.test('txtRdata splits text into character-strings of at most 255 bytes', async t => {
  const cases: Array<[string, string, number[]]> = [
    ['empty', '', [0]],
    ['short', 'egressd', [7]],
    ['255 bytes', 'x'.repeat(255), [255]],
    ['256 bytes', 'x'.repeat(256), [255, 1]],
    ['600 bytes', 'y'.repeat(600), [255, 255, 90]]
  ]
  for (const [label, text, lengths] of cases) {
    const b = txtRdata(text)
    const got: number[] = []
    let joined = ''
    for (let p = 0; p < b.length; p += 1 + b[p]) { got.push(b[p]); joined += b.toString('latin1', p + 1, p + 1 + b[p]) }
    t.same(got, lengths, label)
    t.equal(joined, text, `${label}: the text`)
  }
})

t.test('txtResponse answers with one authoritative TXT record in the question\'s class', async t => {
  const cases: Array<{ label: string, msg: Buffer, cls: string, edns: boolean, text: string }> = [
    { label: 'CH, EDNS', msg: versioned('Version.Bind', 0, { type: 'TXT', class: 'CH' }), cls: 'CH', edns: true, text: 'egressd' },
    { label: 'CH, no EDNS', msg: packet.encode({ type: 'query', id: 5, questions: [{ name: 'id.server', type: 'TXT', class: 'CH' }] }), cls: 'CH', edns: false, text: 'egressd 1.0' },
    { label: 'IN, long text', msg: query('x.test', { type: 'TXT', edns: 1232 }), cls: 'IN', edns: true, text: 'z'.repeat(300) }
  ]
  for (const c of cases) {
    const q = read(c.msg)
    const d = packet.decode(txtResponse(c.msg, q, txtRdata(c.text), 1232))
    t.equal(d.id, q.id, `${c.label}: ID`)
    t.equal(d.rcode, 'NOERROR')
    t.ok((d.flags! & packet.AUTHORITATIVE_ANSWER) !== 0, `${c.label}: AA`)
    t.ok((d.flags! & packet.RECURSION_DESIRED) === (c.msg[2] & 1) << 8, `${c.label}: RD as asked`)
    t.equal(d.questions![0].name, packet.decode(c.msg).questions![0].name, `${c.label}: question case kept`)
    t.equal(d.answers!.length, 1)
    const a = d.answers![0]
    t.match(a, { type: 'TXT', class: c.cls, ttl: 0, name: d.questions![0].name }, `${c.label}: the record`)
    // dns-packet decodes TXT data as a list of Buffers, one per character-string.
    const text = a.type === 'TXT' && Array.isArray(a.data) ? Buffer.concat(a.data.map(s => typeof s === 'string' ? Buffer.from(s) : s)).toString() : undefined
    t.equal(text, c.text, `${c.label}: the text`)
    t.equal((d.additionals ?? []).filter(r => r.type === 'OPT').length, c.edns ? 1 : 0, `${c.label}: OPT as the client sent EDNS`)
  }
})

t.test('edeOptions picks the Extended DNS Error options out of an OPT record', async t => {
  const ede = (code: number, text: string): Buffer => edeOption(code, text)
  const cookie = Buffer.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
  const cases: Array<[string, Buffer, Buffer | undefined]> = [
    ['no options', buildOpt(1232, false), undefined],
    ['EDE alone', buildOpt(1232, false, ede(6, 'bogus')), ede(6, 'bogus')],
    ['cookie, then EDE', buildOpt(1232, true, Buffer.concat([cookie, ede(22, '')])), ede(22, '')],
    ['two EDEs', buildOpt(1232, false, Buffer.concat([ede(6, 'a'), cookie, ede(9, 'b')])), Buffer.concat([ede(6, 'a'), ede(9, 'b')])],
    ['cookie only', buildOpt(1232, false, cookie), undefined],
    ['EDE too short for an info-code', buildOpt(1232, false, Buffer.from([0, 15, 0, 1, 7])), undefined],
    ['option running past RDLENGTH', buildOpt(1232, false, Buffer.from([0, 15, 0, 9, 0, 6])), undefined],
    ['shorter than an OPT', Buffer.alloc(5), undefined]
  ]
  for (const [label, opt, want] of cases) t.same(edeOptions(opt), want, label)
})

t.test('readQuery takes an IXFR query\'s SOA in the authority section (RFC 1995), nothing else there', async t => {
  const soa: packet.Answer = { name: 'test', type: 'SOA', class: 'IN', ttl: 0, data: { mname: 'ns.test', rname: 'h.test', serial: 7, refresh: 1, retry: 1, expire: 1, minimum: 1 } }
  const ixfr = (authorities: packet.Answer[], edns = true): Buffer => packet.encode({
    type: 'query', id: 1, questions: [{ name: 'test', type: 'IXFR', class: 'IN' }], authorities,
    additionals: edns ? [optRecord({ udpPayloadSize: 1232, flags: 0 })] : []
  })
  const q = read(ixfr([soa]))
  t.match(q, { qtype: 251, qname: 'test', edns: true, udpSize: 1232 }, 'IXFR with its SOA, then OPT')
  t.match(read(ixfr([soa], false)), { qtype: 251, edns: false })
  const one = ixfr([soa], false)
  const cases: Array<[string, Buffer, string]> = [
    ['two authority records', ixfr([soa, soa]), 'sections'],
    ['an A query with an authority record', packet.encode({ type: 'query', id: 1, questions: [{ name: 'test', type: 'A', class: 'IN' }], authorities: [soa] }), 'sections'],
    ['IXFR with an answer record', (() => { const b = Buffer.from(one); b[7] = 1; b[9] = 0; return b })(), 'sections'],
    ['SOA cut short', one.subarray(0, one.length - 3), 'truncated'],
    ['SOA header cut short', one.subarray(0, 12 + 10 + 6), 'truncated']
  ]
  for (const [label, msg, kind] of cases) t.equal(readQuery(msg), kind, label)
})

