// Answer time to clients (AnswerTimes, egressd_dns_answer_seconds): every answered query is timed
// once, under its outcome, whatever the protocol; a UDP turn reads the clock twice (its arrival
// time, and once its answers are out), never once per query.

import t, { type Test } from 'tap'
import dgram from 'node:dgram'
import net from 'node:net'
import { Writable } from 'node:stream'
import * as packet from 'dns-packet'
import { AnswerTimes, ANSWER_TIME_BUCKETS_S } from '../../src/dns/answer-time.js'
import { AnswerCache } from '../../src/dns/cache.js'
import { ClientAcl } from '../../src/dns/client-acl.js'
import { DnsListener, type BoundAddress } from '../../src/dns/listener.js'
import { DnsMetrics, type OutcomeKind } from '../../src/dns/metrics.js'
import { createPipeline } from '../../src/dns/pipeline.js'
import { UdpTurn } from '../../src/dns/udp-turn.js'
import type { ResolveCallback, UpstreamPool } from '../../src/dns/upstream/pool.js'
import { prepareAnswer, type StoredAnswer } from '../../src/dns/wire.js'
import { createLogger } from '../../src/log.js'
import { buildEngine } from '../../src/policy/build.js'
import { startTestDaemon, testConfig } from '../helpers/daemon.js'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { dig } from '../helpers/dig.js'

const total = (times: AnswerTimes, kind: OutcomeKind): number => times.series[kind].counts.reduce((a, b) => a + b, 0)

/** A real listener on loopback over the pipeline with the bundled lists, its own metrics and a UDP turn on `clock`. */
async function startListener (t: Test, o: { clock: () => number, sampleEvery?: number, pool?: UpstreamPool }): Promise<{ metrics: DnsMetrics, bound: BoundAddress[], turns: () => number }> {
  const cfg = testConfig({ dns: { listen: ['127.0.0.1:0'] } })
  const metrics = new DnsMetrics()
  const turn = new UdpTurn(o.clock, o.sampleEvery)
  let turns = 0
  turn.onTurnEnd(() => { turns++ })
  const serve = createPipeline({
    dns: cfg.dns, cache: cfg.cache, blocking: cfg.blocklists, policy: { engine: buildEngine(cfg.blocklists, 1).engine }, report: () => {},
    answers: new AnswerCache({ maxEntries: 100, now: Date.now }), pool: o.pool ?? ({} as unknown as UpstreamPool), metrics, now: Date.now, clock: o.clock,
    acl: new ClientAcl(cfg.dns.allowClients)
  })
  const log = createLogger('silent', new Writable({ write (_c, _e, cb) { cb() } }))
  const listener = new DnsListener({ dns: cfg.dns, log, metrics, turn }, serve)
  const bound = await listener.start()
  t.teardown(() => listener.close(0))
  return { metrics, bound, turns: () => turns }
}

t.test('AnswerTimes: observe times one answer; release times the answers given but not yet timed, each once', async t => {
  const times = new AnswerTimes()
  const given = { cached: 0, resolved: 0, blocked: 0, servfail: 0, refused: 0 }
  // Rows: an answer timed when given (observe), or given in a UDP turn and timed when the turn is over.
  const rows: Array<{ kind: OutcomeKind, ms: number, bucket: number, inTurn?: boolean }> = [
    { kind: 'blocked', ms: 0.05, bucket: 0 },
    { kind: 'blocked', ms: 0.1, bucket: 0 },
    { kind: 'cached', ms: 0.3, bucket: 2 },
    { kind: 'resolved', ms: 7, bucket: 6 },
    { kind: 'servfail', ms: 6000, bucket: ANSWER_TIME_BUCKETS_S.length },
    { kind: 'blocked', ms: 0.2, bucket: 1, inTurn: true },
    { kind: 'cached', ms: 0.2, bucket: 1, inTurn: true },
    { kind: 'cached', ms: 0.2, bucket: 1, inTurn: true }
  ]
  for (const r of rows) {
    given[r.kind]++
    if (r.inTurn !== true) times.observe(r.kind, r.ms)
  }
  t.equal(times.untimed(given), 3, 'three given in the turn, not timed yet')
  t.equal(total(times, 'cached'), 1, 'not timed before the turn is over')
  times.release(given, 0.2)
  t.equal(times.untimed(given), 0)
  times.release(given, 0.2) // nothing untimed: nothing timed again
  const want: Record<string, number[]> = {}
  for (const r of rows) (want[r.kind] ??= new Array<number>(ANSWER_TIME_BUCKETS_S.length + 1).fill(0))[r.bucket]++
  for (const [kind, counts] of Object.entries(want)) {
    t.same([...times.series[kind as OutcomeKind].counts], counts, `${kind}: per bucket`)
    t.equal(times.series[kind as OutcomeKind].count, given[kind as OutcomeKind], `${kind}: count`)
  }
  t.equal(times.series.cached.sumMs, 0.3 + 0.4, 'the sum includes each answer of the turn')
  t.equal(total(times, 'refused'), 0)
})

t.test('through a listener: each answer timed once by outcome; a UDP turn reads the clock twice, not per query', async t => {
  let now = 1000
  let reads = 0
  const clock = (): number => { reads++; now += 0.3; return now }
  const cfg = testConfig({ dns: { listen: ['127.0.0.1:0'] } })
  // An upstream stand-in that answers every question with 192.0.2.1, in a later turn.
  const pool = {
    resolve: (question: Buffer, _do: boolean, cb: ResolveCallback): void => {
      const name = packet.decode(Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), question])).questions![0].name
      const raw = Buffer.from(packet.encode({ type: 'response', id: 0, flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }], answers: [{ name, type: 'A', ttl: 60, data: '192.0.2.1' }] }))
      setImmediate(() => { cb.resolved({ kind: 'resolved', answer: prepareAnswer(raw, question, cfg.cache, 1232) as StoredAnswer, upstream: 'stand-in' }) })
    }
  } as unknown as UpstreamPool
  const { metrics, bound, turns } = await startListener(t, { clock, pool })
  const port = bound.find(b => b.protocol === 'udp')!.port

  // A burst of blocked queries over UDP, answered at once.
  const sock = dgram.createSocket('udp4')
  t.teardown(() => { sock.close() })
  const answers = new Map<number, packet.Packet>()
  sock.on('message', m => { const p = packet.decode(m); answers.set(p.id!, p) })
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  const ask = (id: number, name: string): void => {
    sock.send(packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }), port, '127.0.0.1')
  }
  const waitFor = async (n: number): Promise<void> => {
    for (let i = 0; i < 400 && answers.size < n; i++) await new Promise(resolve => setTimeout(resolve, 5))
  }
  for (let id = 1; id <= 40; id++) ask(id, 'telegram.org')
  await waitFor(40)
  t.equal(answers.size, 40, 'every query answered')
  t.ok([...answers.values()].every(a => (a.flags! & 0x0f) === 3), 'blocked: NXDOMAIN')
  t.equal(total(metrics.answerTimes, 'blocked'), 40, '40 blocked answers timed')
  t.ok(turns() >= 1 && turns() <= 40, `${turns()} turn(s)`)
  t.equal(reads, 2 * turns(), 'two clock reads per turn (arrival, answers out), none per query')
  // Each turn: arrival at its first read, answers out at its second, 0.3 ms apart: the 0.5 ms bucket.
  t.equal(metrics.answerTimes.series.blocked.counts[2], 40, 'timed from the turn\'s arrival to its sends: 0.3 ms')

  // Forwarded (resolved), then a cache hit, over UDP.
  ask(41, 'innocent.example')
  await waitFor(41)
  ask(42, 'innocent.example')
  await waitFor(42)
  t.equal(answers.get(41)!.flags! & 0x0f, 0, 'forwarded: NOERROR')
  t.equal(total(metrics.answerTimes, 'resolved'), 1, 'the forwarded answer timed once')
  t.equal(total(metrics.answerTimes, 'cached'), 1, 'the cache hit timed once')
  t.ok(metrics.answerTimes.series.resolved.sumMs > 0, 'the forwarded answer took time')

  // Over TCP: a block and a cache hit, timed as they are answered.
  const tcp = net.connect(bound.find(b => b.protocol === 'tcp')!.port, '127.0.0.1')
  t.teardown(() => { tcp.destroy() })
  let got = 0
  tcp.on('data', d => { for (let i = 0; i + 2 <= d.length; i += 2 + d.readUInt16BE(i)) got++ })
  for (const [id, name] of [[50, 'telegram.org'], [51, 'innocent.example']] as const) {
    const q = packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] })
    const f = Buffer.alloc(2 + q.length)
    f.writeUInt16BE(q.length, 0)
    q.copy(f, 2)
    tcp.write(f)
  }
  for (let i = 0; i < 400 && got < 2; i++) await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(got, 2, 'both TCP queries answered')
  t.equal(total(metrics.answerTimes, 'blocked'), 41)
  t.equal(total(metrics.answerTimes, 'cached'), 2)
  for (const kind of ['cached', 'resolved', 'blocked', 'servfail', 'refused'] as const) {
    t.equal(total(metrics.answerTimes, kind), metrics.outcomes[kind], `${kind}: as many timed as counted`)
  }
})

t.test('a daemon times every answer it gives, by outcome (dig over UDP and TCP)', async t => {
  const upstream = await startDnsmasq()
  t.teardown(() => upstream.stop())
  const d = await startTestDaemon({ upstreams: [upstream.url], dns: { udp: { answerTimeSample: 1 } } })
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]
  const m = d.daemon.metrics
  const rows: Array<{ args: string[], status: string, kind: OutcomeKind }> = [
    { args: ['h.test', 'A'], status: 'NOERROR', kind: 'resolved' },
    { args: ['h.test', 'A'], status: 'NOERROR', kind: 'cached' },
    { args: ['+tcp', 'h.test', 'A'], status: 'NOERROR', kind: 'cached' },
    { args: ['telegram.org', 'A'], status: 'NXDOMAIN', kind: 'blocked' },
    { args: ['+tcp', 'web.telegram.org', 'AAAA'], status: 'NXDOMAIN', kind: 'blocked' },
    { args: ['nothing.test', 'A'], status: 'NXDOMAIN', kind: 'resolved' }
  ]
  for (const row of rows) {
    const before = total(m.answerTimes, row.kind)
    const a = await dig([...at, ...row.args])
    t.equal(a.status, row.status, `${row.args.join(' ')}: ${row.status}`)
    t.equal(total(m.answerTimes, row.kind), before + 1, `${row.args.join(' ')}: one ${row.kind} answer timed`)
  }
  for (const kind of ['cached', 'resolved', 'blocked', 'servfail', 'refused'] as const) {
    t.equal(total(m.answerTimes, kind), m.outcomes[kind], `${kind}: as many timed as counted`)
  }
})

t.test('dns.udp.answerTimeSample: one UDP turn in N is timed (two clock reads), the others only accounted for', async t => {
  let reads = 0
  const clock = (): number => { reads++; return reads * 0.3 }
  const { metrics, bound, turns } = await startListener(t, { clock, sampleEvery: 4 })
  const port = bound.find(b => b.protocol === 'udp')!.port
  const sock = dgram.createSocket('udp4')
  t.teardown(() => { sock.close() })
  let answered = 0
  sock.on('message', () => { answered++ })
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  // One blocked query at a time, so each has a turn of its own.
  for (let id = 1; id <= 12; id++) {
    sock.send(packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name: 'telegram.org', type: 'A', class: 'IN' }] }), port, '127.0.0.1')
    for (let i = 0; i < 200 && answered < id; i++) await new Promise(resolve => setTimeout(resolve, 2))
  }
  t.equal(answered, 12)
  t.equal(turns(), 12, 'one turn per query')
  const s = metrics.answerTimes.series.blocked
  t.equal(s.count, 3, 'turns 4, 8 and 12 timed')
  t.equal(s.skipped, 9, 'the other nine accounted for, not timed')
  t.equal(reads, 6, 'two clock reads per timed turn, none in the others')
  t.equal(metrics.answerTimes.untimed(metrics.outcomes), 0, 'every answer accounted for once')
})
