// The query path without sockets: createPipeline with a real policy engine (the bundled lists), a
// real cache, and an upstream pool stand-in that answers from a function. Covers what the
// daemon-level tests cannot reach: a fault inside a step on the way back.

import t from 'tap'
import * as packet from 'dns-packet'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildEngine } from '../../src/policy/build.js'
import type { Engine } from '../../src/policy/engine.js'
import { AnswerCache } from '../../src/dns/cache.js'
import { DnsMetrics } from '../../src/dns/metrics.js'
import { PENDING } from '../../src/dns/contract.js'
import { createPipeline } from '../../src/dns/pipeline.js'
import { ClientAcl } from '../../src/dns/client-acl.js'
import type { Resolution, ResolveCallback, UpstreamPool } from '../../src/dns/upstream/pool.js'
import { prepareAnswer, type StoredAnswer } from '../../src/dns/wire.js'
import { testConfig } from '../helpers/daemon.js'

const cfg = testConfig({})

/** A decoded answer (dns-packet decodes the rcode; its types leave it out) and whether it came at once. */
type Answered = packet.Packet & { atOnce: boolean, rcode: string }

/** A pipeline whose upstream answers every question with an A record of `address`. */
function pipeline (address: string, report: () => void, cacheEnabled = true): { serve: ReturnType<typeof createPipeline>, asked: () => number, metrics: DnsMetrics, policy: { engine: Engine } } {
  let asked = 0
  const pool = {
    resolve: (question: Buffer, _do: boolean, cb: ResolveCallback): void => {
      asked++
      const name = packet.decode(Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), question])).questions![0].name
      const raw = Buffer.from(packet.encode({
        type: 'response', id: 0, flags: packet.RECURSION_DESIRED,
        questions: [{ name, type: 'A', class: 'IN' }],
        answers: [{ name, type: 'A', ttl: 60, data: address }]
      }))
      const r: Resolution = { kind: 'resolved', answer: prepareAnswer(raw, question, cfg.cache, 1232) as StoredAnswer, upstream: 'stand-in' }
      setImmediate(() => { cb.resolved(r) }) // as an upstream answers: later, never from inside resolve
    }
  } as unknown as UpstreamPool
  const metrics = new DnsMetrics()
  const policy = { engine: buildEngine(cfg.blocklists, 1).engine }
  const serve = createPipeline({
    dns: cfg.dns,
    cache: { ...cfg.cache, enabled: cacheEnabled },
    blocking: cfg.blocklists,
    policy,
    report: () => { report() },
    answers: new AnswerCache({ maxEntries: 100, now: Date.now }),
    pool,
    metrics,
    now: Date.now,
    acl: new ClientAcl(cfg.dns.allowClients)
  })
  return { serve, asked: () => asked, metrics, policy }
}

/** Asks one A question; resolves with the decoded answer and whether it came at once (a cache hit). */
function ask (serve: ReturnType<typeof createPipeline>, name: string, client = '192.168.0.10'): Promise<Answered> {
  const q = Buffer.from(packet.encode({ type: 'query', id: 7, flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }))
  return new Promise((resolve, reject) => {
    const r = serve(q, 'udp', client, { reply: (_to, b) => { resolve({ ...packet.decode(b), atOnce: false }) } }, null, performance.now())
    if (r === null) reject(new Error('no answer'))
    else if (r !== PENDING) resolve({ ...packet.decode(r), atOnce: true })
  })
}

t.test('a step that throws on the way back is answered SERVFAIL, and the remaining steps still run', async t => {
  // 149.154.167.51 is in Telegram's published ranges: answer policy blocks it and reports the
  // match, and this report fails.
  const p = pipeline('149.154.167.51', () => { throw new Error('report failed') }, false)
  const a = await ask(p.serve, 'innocent.example')
  t.equal(a.rcode, 'SERVFAIL')
  t.equal(a.id, 7)
  t.equal(p.metrics.outcomes.servfail, 1)
  // Coalescing let go of the name (its step ran after the fault): the next query asks again.
  const b = await ask(p.serve, 'innocent.example')
  t.equal(b.rcode, 'SERVFAIL')
  t.equal(p.asked(), 2, 'asked upstream again, not left waiting on the first query')
})

t.test('a stage that throws on a cache hit is answered SERVFAIL at once, not thrown at the listener', async t => {
  const p = pipeline('149.154.167.51', () => { throw new Error('report failed') })
  const a = await ask(p.serve, 'innocent.example') // forwarded and stored (the store step runs first), then the fault
  t.equal(a.rcode, 'SERVFAIL')
  const b = await ask(p.serve, 'innocent.example')
  t.ok(b.atOnce, 'served from the cache')
  t.equal(b.rcode, 'SERVFAIL')
  t.equal(p.asked(), 1)
})

t.test('without a fault, the same answer is blocked and reported once', async t => {
  let reports = 0
  const p = pipeline('149.154.167.51', () => { reports++ })
  const a = await ask(p.serve, 'innocent.example')
  t.equal(a.rcode, 'NXDOMAIN')
  t.equal(reports, 1)
  const ok = pipeline('192.0.2.1', () => { reports++ })
  const b = await ask(ok.serve, 'innocent.example')
  t.equal(b.rcode, 'NOERROR')
  t.same(b.answers!.map(r => (r as { data: string }).data), ['192.0.2.1'])
})

t.test('by default only loopback, private, CGNAT and link-local clients are answered; others get REFUSED before any work', async t => {
  const p = pipeline('192.0.2.1', () => {})
  const inside = ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.1', '100.64.0.1', '169.254.1.1', '::1', 'fd00::5', 'fe80::1', '::ffff:10.0.0.1']
  for (const client of inside) t.equal((await ask(p.serve, 'innocent.example', client)).rcode, 'NOERROR', client)
  const asked = p.asked()
  const outside = ['8.8.8.8', '172.32.0.1', '192.0.2.10', '100.128.0.1', '2001:db8::1', '::ffff:8.8.8.8', '::']
  for (const client of outside) {
    const a = await ask(p.serve, 'innocent.example', client)
    t.equal(a.rcode, 'REFUSED', client)
    t.ok(a.atOnce, `${client}: answered at once`)
    t.equal(a.id, 7)
  }
  t.equal(p.asked(), asked, 'no refused query reached the upstream')
  t.equal(p.metrics.refusedClients, outside.length)
  t.equal(p.metrics.results.udp.refused, outside.length)
  // Runs of one client and clients taking turns (the last client's decision is kept aside).
  const turns = ['8.8.8.8', '8.8.8.8', '10.0.0.1', '10.0.0.1', '8.8.8.8', '10.0.0.1', '2001:db8::1', '::1']
  const rcodes = []
  for (const client of turns) rcodes.push((await ask(p.serve, 'innocent.example', client)).rcode)
  t.same(rcodes, ['REFUSED', 'REFUSED', 'NOERROR', 'NOERROR', 'REFUSED', 'NOERROR', 'REFUSED', 'NOERROR'])
})

t.test('a decision remembered in the cache does not keep the policy snapshot it was made under alive', async t => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const p = pipeline('192.0.2.1', () => {})
  await ask(p.serve, 'innocent.example') // forwarded and stored
  const hit = await ask(p.serve, 'innocent.example') // a cache hit: decided, and the decision remembered in the slot
  t.ok(hit.atOnce)
  const old = new WeakRef(p.policy.engine)
  p.policy.engine = buildEngine(cfg.blocklists, 2).engine // a reload swaps the snapshot
  await new Promise(resolve => setImmediate(resolve)) // a WeakRef's target is kept until the job ends
  gc()
  t.equal(old.deref(), undefined, 'the old snapshot was collected (a reload must not leave the old lists in memory)')
  const again = await ask(p.serve, 'innocent.example')
  t.ok(again.atOnce)
  t.equal(again.rcode, 'NOERROR')
  p.policy.engine = buildEngine({ ...cfg.blocklists, rules: { ...cfg.blocklists.rules, block: ['innocent.example'] } }, 3).engine
  const blocked = await ask(p.serve, 'innocent.example')
  t.ok(blocked.atOnce, 'still the cached answer, decided under the new snapshot')
  t.equal(blocked.rcode, 'NXDOMAIN')
})

/** Sends `q` (bytes); resolves with the decoded answer and whether it came at once. */
function send (serve: ReturnType<typeof createPipeline>, q: Buffer, client = '192.168.0.10'): Promise<Answered> {
  return new Promise((resolve, reject) => {
    const r = serve(q, 'udp', client, { reply: (_to, b) => { resolve({ ...packet.decode(b), atOnce: false }) } }, null, performance.now())
    if (r === null) reject(new Error('no answer'))
    else if (r !== PENDING) resolve({ ...packet.decode(r), atOnce: true })
  })
}

t.test('EDNS version above 0, CHAOS class and zone transfers are answered at once, before cache, policy and upstream', async t => {
  const p = pipeline('192.0.2.1', () => {})
  const edns = (version: number): packet.Answer => ({ type: 'OPT', name: '.', udpPayloadSize: 1232, ednsVersion: version, flags: 0 }) as unknown as packet.Answer
  const q = (type: string, cls: string, name: string, version?: number): Buffer => Buffer.from(packet.encode({
    type: 'query', id: 7, flags: packet.RECURSION_DESIRED, questions: [{ name, type: type as packet.RecordType, class: cls as packet.RecordClass }],
    additionals: version === undefined ? [] : [edns(version)]
  }))
  const cases: Array<{ label: string, msg: Buffer, rcode: number, kind: 'badvers' | 'chaos' | 'zone-transfer', result: string }> = [
    { label: 'EDNS version 1', msg: q('A', 'IN', 'innocent.example', 1), rcode: 16, kind: 'badvers', result: 'badvers' },
    { label: 'EDNS version 1, CHAOS', msg: q('TXT', 'CH', 'version.bind', 1), rcode: 16, kind: 'badvers', result: 'badvers' },
    { label: 'CH TXT version.bind', msg: q('TXT', 'CH', 'version.bind', 0), rcode: 5, kind: 'chaos', result: 'refused' },
    { label: 'CH A, no EDNS', msg: q('A', 'CH', 'x.example'), rcode: 5, kind: 'chaos', result: 'refused' },
    { label: 'AXFR', msg: q('AXFR', 'IN', 'example', 0), rcode: 5, kind: 'zone-transfer', result: 'refused' },
    { label: 'IXFR, no EDNS', msg: q('IXFR', 'IN', 'example'), rcode: 5, kind: 'zone-transfer', result: 'refused' }
  ]
  for (const c of cases) {
    const before = { ...p.metrics.localAnswers }
    const a = await send(p.serve, c.msg)
    t.ok(a.atOnce, `${c.label}: at once`)
    const opt = (a.additionals ?? []).find(r => r.type === 'OPT') as { extendedRcode?: number, ednsVersion?: number } | undefined
    t.equal((a.flags! & 0x0f) + ((opt?.extendedRcode ?? 0) << 4), c.rcode, `${c.label}: rcode ${c.rcode}`)
    if (opt !== undefined) t.equal(opt.ednsVersion, 0, `${c.label}: our OPT is version 0`)
    t.equal(p.metrics.localAnswers[c.kind], before[c.kind] + 1, `${c.label}: counted as ${c.kind}`)
  }
  t.equal(p.asked(), 0, 'the upstream was never asked')
  t.same(p.metrics.results.udp, { ...p.metrics.results.udp, badvers: 2, refused: 4 })
  t.same(p.metrics.outcomes, { cached: 0, resolved: 0, blocked: 0, servfail: 0, refused: 0 }, 'no pipeline outcome')
  // A client outside dns.allowClients gets REFUSED (EDE 18) whatever it asks.
  const outside = await send(p.serve, cases[0].msg, '8.8.8.8')
  t.equal(outside.rcode, 'REFUSED')
  t.equal(p.metrics.localAnswers.badvers, 2)
  // Other classes (HS, ANY) are forwarded as before.
  await send(p.serve, q('A', 'HS', 'x.example', 0))
  t.equal(p.asked(), 1)
})

t.test('every upstream failed: SERVFAIL with the upstream\'s EDE when it sent one, else EDE 22', async t => {
  for (const [label, ede, code, text] of [
    ['no EDE from upstream', undefined, 22, 'egressd: no upstream answered'],
    ['the upstream\'s EDE', Buffer.from([0, 15, 0, 6, 0, 6, 0x62, 0x61, 0x64, 0x21]), 6, 'bad!']
  ] as const) {
    const pool = { resolve: (_q: Buffer, _do: boolean, cb: ResolveCallback) => { setImmediate(() => { cb.failed(new Error('all upstreams failed'), ede) }) } } as unknown as UpstreamPool
    const metrics = new DnsMetrics()
    const serve = createPipeline({
      dns: cfg.dns, cache: cfg.cache, blocking: cfg.blocklists, policy: { engine: buildEngine(cfg.blocklists, 1).engine }, report: () => {},
      answers: new AnswerCache({ maxEntries: 100, now: Date.now }), pool, metrics, now: Date.now, acl: new ClientAcl(cfg.dns.allowClients)
    })
    const msg = Buffer.from(packet.encode({ type: 'query', id: 7, questions: [{ name: 'down.example', type: 'A', class: 'IN' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0 } as unknown as packet.Answer] }))
    const a = await send(serve, msg)
    t.equal(a.rcode, 'SERVFAIL', label)
    const opt = a.additionals!.find(r => r.type === 'OPT') as unknown as { options: Array<{ code: number, data: Buffer }> }
    t.same(opt.options.map((o: { code: number, data: Buffer }) => [o.code, o.data.readUInt16BE(0), o.data.subarray(2).toString()]), [[15, code, text]], `${label}: EDE ${code}`)
    t.equal(metrics.outcomes.servfail, 1)
    const again = await send(serve, msg)
    t.equal(again.atOnce, false, `${label}: SERVFAIL is not cached`)
  }
})

t.test('a fault while rendering an answer is answered SERVFAIL and counted once, as SERVFAIL only', async t => {
  // Fault injection: a policy that blocks with a verdict whose category cannot be read (the EDE
  // text of a block needs it), and an upstream answer that cannot be rendered.
  const unreadable = {
    action: 'nxdomain', ruleId: 0, matched: 'qname', value: 'x', group: 'default', policyRef: 'x',
    get category (): string { throw new Error('render fault') }
  }
  const real = buildEngine(cfg.blocklists, 1).engine
  const rows = [
    { label: 'a block, answered at once', blocks: true, answer: {} },
    { label: 'an upstream answer, answered later', blocks: false, answer: { raw: undefined, body: undefined, opt: undefined } }
  ]
  for (const row of rows) {
    const engine = {
      inspectsAnswers: false,
      token: {},
      groupOf: () => real.groups[0],
      decideName: () => row.blocks ? unreadable : undefined
    } as unknown as Engine
    const pool = { resolve: (_q: Buffer, _do: boolean, cb: ResolveCallback) => { setImmediate(() => { cb.resolved({ kind: 'resolved', answer: row.answer as unknown as StoredAnswer, upstream: 'stand-in' }) }) } } as unknown as UpstreamPool
    const metrics = new DnsMetrics()
    const serve = createPipeline({
      dns: cfg.dns, cache: { ...cfg.cache, enabled: false }, blocking: cfg.blocklists, policy: { engine }, report: () => {},
      answers: new AnswerCache({ maxEntries: 100, now: Date.now }), pool, metrics, now: Date.now, acl: new ClientAcl(cfg.dns.allowClients)
    })
    const msg = Buffer.from(packet.encode({ type: 'query', id: 7, questions: [{ name: 'fault.example', type: 'A', class: 'IN' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0 } as unknown as packet.Answer] }))
    const a = await send(serve, msg)
    t.equal(a.atOnce, row.blocks, `${row.label}: ${row.blocks ? 'at once' : 'later'}`)
    t.equal(a.rcode, 'SERVFAIL', `${row.label}: SERVFAIL`)
    t.same(metrics.outcomes, { cached: 0, resolved: 0, blocked: 0, servfail: 1, refused: 0 }, `${row.label}: one outcome, SERVFAIL`)
    t.same(metrics.results.udp, { ...metrics.results.udp, resolved: 0, blocked: 0, servfail: 1 }, `${row.label}: one result, SERVFAIL`)
  }
})
