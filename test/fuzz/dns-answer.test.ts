// Fuzzing the upstream-answer walker (src/dns/wire.ts prepareAnswer, then answerTargets and the
// cache's answerTargetsIn): generated answers (CNAME/DNAME chains, A, AAAA, HTTPS/SVCB with
// ipv4hint/ipv6hint, other types, SOA, OPT; owners written out or compressed) are accepted and
// give exactly the targets they hold; every truncation is rejected; any mutation or any bytes after
// the question give a clean accept/reject without a throw, and targets within bounds.

import t from 'tap'
import { AnswerTargets, answerTargets, answerTargetsIn, prepareAnswer, type BadAnswer, type StoredAnswer, type TtlPolicy } from '../../src/dns/wire.js'
import { fc, fuzz } from './harness.js'
import { labelsArb, nameWire, packet, plainNameArb } from './dns-gen.js'

const TARGET = 'dns-answer'
const TTL: TtlPolicy = { minTtl: 0, maxTtl: 86400, negativeMaxTtl: 3600 }
const BAD: readonly BadAnswer[] = ['short', 'not-response', 'question', 'format', 'truncated']

/** How readName writes a name: labels as latin1, lower-cased, joined by dots. */
function nameText (labels: readonly Uint8Array[]): string {
  return labels.map(l => Buffer.from(l).toString('latin1').toLowerCase()).join('.')
}

function v6Text (b: Uint8Array): string {
  const g: string[] = []
  for (let i = 0; i < 16; i += 2) g.push(((b[i] << 8) | b[i + 1]).toString(16))
  return g.join(':')
}

/** The question with ASCII letters of its name lower-cased, as upstreamQuestion sends it. */
function lowerName (q: Buffer): Buffer {
  const b = Buffer.from(q)
  for (let i = 0; i < b.length - 4; i++) if (b[i] >= 0x41 && b[i] <= 0x5a) b[i] |= 0x20
  return b
}

const u16 = (v: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b }
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b }

interface Expected { names: string[], v4: number[], v6: string[] }

type SvcParam = { key: 4, addrs: Uint8Array[] } | { key: 6, addrs: Uint8Array[] } | { key: number, value: Uint8Array }

type Rec =
  | { kind: 'a', addr: Uint8Array }
  | { kind: 'aaaa', addr: Uint8Array }
  | { kind: 'cname' | 'dname', target: Uint8Array[], pointer: boolean }
  | { kind: 'svcb', type: 64 | 65, priority: number, target: Uint8Array[], params: SvcParam[] }
  | { kind: 'other', type: number, data: Uint8Array }

const recArb: fc.Arbitrary<Rec> = fc.oneof(
  fc.record({ kind: fc.constant('a' as const), addr: fc.uint8Array({ minLength: 4, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('aaaa' as const), addr: fc.uint8Array({ minLength: 16, maxLength: 16 }) }),
  fc.record({ kind: fc.constantFrom('cname' as const, 'dname' as const), target: labelsArb, pointer: fc.boolean() }),
  fc.record({
    kind: fc.constant('svcb' as const),
    type: fc.constantFrom(64 as const, 65 as const),
    priority: fc.integer({ min: 0, max: 0xffff }),
    target: labelsArb,
    params: fc.array(fc.oneof(
      fc.record({ key: fc.constant(4 as const), addrs: fc.array(fc.uint8Array({ minLength: 4, maxLength: 4 }), { maxLength: 4 }) }),
      fc.record({ key: fc.constant(6 as const), addrs: fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { maxLength: 3 }) }),
      fc.record({ key: fc.constantFrom(0, 1, 2, 3, 5, 7, 0xffff), value: fc.uint8Array({ maxLength: 20 }) })
    ), { maxLength: 5 })
  }),
  fc.record({ kind: fc.constant('other' as const), type: fc.constantFrom(16, 15, 2, 12, 99, 46, 0xff00), data: fc.uint8Array({ maxLength: 40 }) })
)

interface AnswerSpec {
  id: number
  qlabels: Uint8Array[]
  qtype: number
  rcode: number
  records: Array<{ rec: Rec, ttl: number, ownerPointer: boolean }>
  soa: { ttl: number, minimum: number } | null
  extra: Array<{ ttl: number, data: Uint8Array }>
  opt: { options: Uint8Array } | null
}

const ttlArb = fc.oneof(fc.integer({ min: 0, max: 100000 }), fc.constantFrom(0, 0x7fffffff, 0x80000000, 0xffffffff))

const answerSpecArb: fc.Arbitrary<AnswerSpec> = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  qlabels: labelsArb,
  qtype: fc.constantFrom(1, 28, 5, 65, 64, 16),
  rcode: fc.constantFrom(0, 0, 0, 2, 3, 5),
  records: fc.array(fc.record({ rec: recArb, ttl: ttlArb, ownerPointer: fc.boolean() }), { maxLength: 8 }),
  soa: fc.option(fc.record({ ttl: ttlArb, minimum: ttlArb }), { nil: null }),
  extra: fc.array(fc.record({ ttl: ttlArb, data: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 2 }),
  opt: fc.option(fc.record({ options: fc.uint8Array({ maxLength: 30 }) }), { nil: null })
})

/** The wire answer, the question it answers (as sent upstream), and what the walker should find. */
function build (s: AnswerSpec): { answer: Buffer, question: Buffer, want: Expected, lifetime: number } {
  const qname = nameWire(s.qlabels)
  // The question egressd sent: lower-cased (upstreamQuestion); the answer echoes it in any case.
  const question = lowerName(Buffer.concat([qname, u16(s.qtype), u16(1)]))
  const want: Expected = { names: [], v4: [], v6: [] }
  const body: Buffer[] = []
  const ttls: number[] = []
  const owner = (pointer: boolean): Buffer => pointer ? Buffer.from([0xc0, 12]) : qname
  const rr = (own: Buffer, type: number, ttl: number, rdata: Buffer): Buffer => {
    ttls.push(ttl > 0x7fffffff ? 0 : ttl)
    return Buffer.concat([own, u16(type), u16(1), u32(ttl), u16(rdata.length), rdata])
  }
  for (const { rec, ttl, ownerPointer } of s.records) {
    const own = owner(ownerPointer)
    switch (rec.kind) {
      case 'a':
        want.v4.push(Buffer.from(rec.addr).readUInt32BE(0))
        body.push(rr(own, 1, ttl, Buffer.from(rec.addr)))
        break
      case 'aaaa':
        want.v6.push(v6Text(rec.addr))
        body.push(rr(own, 28, ttl, Buffer.from(rec.addr)))
        break
      case 'cname': case 'dname':
        // A pointer target: the question's name, followed by labels written out first.
        want.names.push(rec.pointer ? [nameText(rec.target), nameText(s.qlabels)].filter(x => x !== '').join('.') : nameText(rec.target))
        body.push(rr(own, rec.kind === 'cname' ? 5 : 39, ttl, rec.pointer ? Buffer.concat([nameWire(rec.target).subarray(0, -1), Buffer.from([0xc0, 12])]) : nameWire(rec.target)))
        break
      case 'svcb': {
        const params: Buffer[] = []
        const target = nameText(rec.target)
        if (target !== '') want.names.push(target)
        for (const p of rec.params) {
          const value = 'addrs' in p ? Buffer.concat(p.addrs.map(a => Buffer.from(a))) : Buffer.from(p.value)
          if (p.key === 4 && 'addrs' in p) for (const a of p.addrs) want.v4.push(Buffer.from(a).readUInt32BE(0))
          if (p.key === 6 && 'addrs' in p) for (const a of p.addrs) want.v6.push(v6Text(a))
          params.push(u16(p.key), u16(value.length), value)
        }
        const rdata = Buffer.concat([u16(rec.priority), nameWire(rec.target), ...params])
        // The walker reads records with more than 3 bytes of RDATA (priority + root is 3).
        if (rdata.length <= 3 && target !== '') want.names.pop()
        body.push(rr(own, rec.type, ttl, rdata))
        break
      }
      case 'other':
        body.push(rr(own, rec.type, ttl, Buffer.from(rec.data)))
    }
  }
  const authority: Buffer[] = []
  if (s.soa !== null) {
    const rdata = Buffer.concat([Buffer.from([0, 0]), u32(1), u32(3600), u32(600), u32(86400), u32(s.soa.minimum)])
    authority.push(rr(qname, 6, s.soa.ttl, rdata))
  }
  const additional: Buffer[] = s.extra.map(e => rr(Buffer.from([0]), 16, e.ttl, Buffer.from(e.data)))
  if (s.opt !== null) additional.push(Buffer.concat([Buffer.from([0]), u16(41), u16(1232), u32(0), u16(s.opt.options.length), Buffer.from(s.opt.options)]))
  const h = Buffer.alloc(12)
  h.writeUInt16BE(s.id, 0)
  h.writeUInt16BE(0x8180 | s.rcode, 2)
  h.writeUInt16BE(1, 4)
  h.writeUInt16BE(body.length, 6)
  h.writeUInt16BE(authority.length, 8)
  h.writeUInt16BE(additional.length, 10)
  const answer = Buffer.concat([h, question, ...body, ...authority, ...additional])
  // Lifetime (RFC 2308 for negative answers), as prepareAnswer documents it.
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v))
  const negative = s.rcode === 3 || (s.rcode === 0 && body.length === 0)
  let lifetime = 0
  if (negative) {
    if (s.soa !== null) {
      const t = s.soa.ttl > 0x7fffffff ? 0 : s.soa.ttl
      lifetime = clamp(Math.min(t, s.soa.minimum), TTL.minTtl, TTL.negativeMaxTtl)
    }
  } else if (s.rcode === 0 && ttls.length > 0) {
    lifetime = clamp(Math.min(...ttls), TTL.minTtl, TTL.maxTtl)
  }
  return { answer, question, want, lifetime }
}

const shared = new AnswerTargets()

function targetsOf (a: StoredAnswer): Expected {
  const r = answerTargets(a, shared) // one instance for every run: each walk must start empty
  return { names: r.names.slice(0, r.nameCount), v4: r.v4.slice(0, r.v4Count), v6: r.v6.slice(0, r.v6Count) }
}

/** What must hold for any result: a known rejection, or targets within bounds. */
function checkAny (answer: Buffer, question: Buffer, embedAt: number): void {
  const copy = Buffer.from(answer) // prepareAnswer may take the buffer over
  const r = prepareAnswer(copy, question, TTL, 1232)
  if (typeof r === 'string') {
    if (!BAD.includes(r)) throw new Error(`unknown rejection ${r}`)
    return
  }
  if (r.lifetime < 0 || r.lifetime > TTL.maxTtl || !Number.isInteger(r.lifetime)) throw new Error(`lifetime ${r.lifetime}`)
  const got = targetsOf(r)
  const ancount = r.body.readUInt16BE(6)
  if (got.names.length > ancount || got.v4.length > ancount * 16384 || got.v6.length > ancount * 4096) throw new Error('more targets than records allow')
  for (const n of got.names) if (typeof n !== 'string' || n.length > 254) throw new Error(`name ${JSON.stringify(n)}`)
  for (const v of got.v4) if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`v4 ${v}`)
  for (const v of got.v6) if (!/^[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7}$/.test(v)) throw new Error(`v6 ${v}`)
  // The cache walks the same body inside a larger buffer: same targets.
  const big = Buffer.alloc(embedAt + r.body.length + 64, 0xc0)
  r.body.copy(big, embedAt)
  const inCache = answerTargetsIn(big, embedAt, embedAt + r.body.length, new AnswerTargets())
  const cached = { names: inCache.names.slice(0, inCache.nameCount), v4: inCache.v4.slice(0, inCache.v4Count), v6: inCache.v6.slice(0, inCache.v6Count) }
  if (JSON.stringify(cached) !== JSON.stringify(got)) throw new Error(`answerTargetsIn at ${embedAt}: ${JSON.stringify(cached)} != ${JSON.stringify(got)}`)
}

fuzz(t, {
  target: TARGET,
  name: 'valid-answer-targets',
  runs: 1200,
  arb: fc.tuple(answerSpecArb, fc.integer({ min: 0, max: 300 })),
  check: ([s, embedAt]) => {
    const { answer, question, want, lifetime } = build(s)
    const r = prepareAnswer(Buffer.from(answer), question, TTL, 1232)
    if (typeof r === 'string') throw new Error(`valid answer rejected: ${r}`)
    const got = targetsOf(r)
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`targets ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
    if (r.lifetime !== lifetime) throw new Error(`lifetime ${r.lifetime}, want ${lifetime}`)
    if (r.rcode !== s.rcode || r.ancount !== s.records.length) throw new Error('rcode/ancount')
    checkAny(answer, question, embedAt)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'dns-packet-answer',
  runs: 1000,
  arb: fc.record({
    qname: plainNameArb,
    answers: fc.array(fc.oneof(
      fc.record({ type: fc.constant('A' as const), data: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map(a => a.join('.')) }),
      fc.record({ type: fc.constant('AAAA' as const), data: fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map(g => g.map(x => x.toString(16)).join(':')) }),
      fc.record({ type: fc.constantFrom('CNAME' as const, 'DNAME' as const), data: plainNameArb }),
      fc.record({ type: fc.constant('TXT' as const), data: fc.string({ maxLength: 50 }) }),
      fc.record({ type: fc.constant('MX' as const), data: fc.record({ preference: fc.nat(0xffff), exchange: plainNameArb }) })
    ), { maxLength: 8 }),
    ttl: fc.nat(100000)
  }),
  check: s => {
    const question = lowerName(packet.encode({ type: 'query', id: 0, questions: [{ name: s.qname, type: 'A', class: 'IN' }] }).subarray(12))
    const answer = packet.encode({
      type: 'response', id: 1, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
      questions: [{ name: s.qname, type: 'A', class: 'IN' }],
      answers: s.answers.map(a => ({ name: s.qname, type: a.type, class: 'IN', ttl: s.ttl, data: a.data } as packet.Answer))
    })
    const r = prepareAnswer(answer, question, TTL, 1232)
    if (typeof r === 'string') throw new Error(`dns-packet answer rejected: ${r}`)
    const want: Expected = { names: [], v4: [], v6: [] }
    for (const a of s.answers) {
      if (a.type === 'A') want.v4.push(a.data.split('.').reduce((v, x) => v * 256 + Number(x), 0))
      if (a.type === 'AAAA') want.v6.push(a.data)
      if (a.type === 'CNAME' || a.type === 'DNAME') want.names.push(a.data.toLowerCase())
    }
    const got = targetsOf(r)
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`targets ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
    if (r.lifetime !== (s.answers.length === 0 ? 0 : Math.min(s.ttl, TTL.maxTtl))) throw new Error(`lifetime ${r.lifetime}`)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'truncated-answer',
  runs: 1000,
  arb: fc.tuple(answerSpecArb, fc.double({ min: 0, max: 1, noNaN: true })),
  check: ([s, f]) => {
    const { answer, question } = build(s)
    const cut = Math.min(answer.length - 1, Math.floor(f * answer.length))
    const r = prepareAnswer(Buffer.from(answer.subarray(0, cut)), question, TTL, 1232)
    if (typeof r !== 'string') throw new Error(`a ${cut}-byte prefix of a ${answer.length}-byte answer was accepted`)
    if (!BAD.includes(r)) throw new Error(`unknown rejection ${r}`)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'mutated-answer',
  runs: 2000,
  arb: fc.tuple(answerSpecArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 100 })),
  check: ([s, changes, embedAt]) => {
    const { answer, question } = build(s)
    const qend = 12 + question.length
    // Half the changes spare the header and question, so the walk gets past questionMatches.
    for (const [at, v] of changes) {
      const i = at % 2 === 0 && answer.length > qend ? qend + (at >> 1) % (answer.length - qend) : at % answer.length
      answer[i] = v
    }
    checkAny(answer, question, embedAt)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'bytes-after-question',
  runs: 3000,
  arb: fc.tuple(labelsArb, fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 3, maxLength: 3 }), fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 0, max: 100 })),
  check: ([labels, counts, rest, embedAt]) => {
    const question = lowerName(Buffer.concat([nameWire(labels), u16(65), u16(1)]))
    const h = Buffer.alloc(12)
    h.writeUInt16BE(0x8180, 2)
    h.writeUInt16BE(1, 4)
    h.writeUInt16BE(counts[0], 6)
    h.writeUInt16BE(counts[1], 8)
    h.writeUInt16BE(counts[2], 10)
    checkAny(Buffer.concat([h, question, Buffer.from(rest)]), question, embedAt)
  }
})
