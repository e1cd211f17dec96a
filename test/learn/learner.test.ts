// The background resolver (src/learn/learner.ts) against a real dnsmasq on loopback through a real
// UpstreamPool: a CNAME chain's final addresses and HTTPS hints land in the book with category,
// name, times and expiry; identical blocked queries are one resolution; a flood of distinct names
// is bounded by resolvesPerSecond and queueMax (the acceptance point "background resolutions are
// bounded"); probe names are not starved by query learning; guard seeds feed the guard.

import t, { type Test } from 'tap'
import { DnsMetrics } from '../../src/dns/metrics.js'
import { UdpTurn } from '../../src/dns/udp-turn.js'
import { UpstreamPool } from '../../src/dns/upstream/pool.js'
import type { LearningConfig } from '../../src/config/types.js'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard } from '../../src/learn/guard.js'
import { Learner } from '../../src/learn/learner.js'
import { ProbeScheduler } from '../../src/learn/probes.js'
import { LearnedStore, readLearned } from '../../src/learn/store.js'
import { startDnsmasq, type Dnsmasq } from '../helpers/dnsmasq.js'
import { learningConfig, policyFile, quiet, RecordingSink } from './fixtures.js'

const ZONE = [
  // A chain of two CNAMEs to an address pair; the HTTPS record of app2 carries both hints
  // (ipv4hint 155.10.0.1, ipv6hint 2001:67c::99).
  'cname=app.test,mid.test',
  'cname=mid.test,edge.test',
  'host-record=edge.test,157.240.0.7,2a03:2880:f000:0:0:0:0:7',
  'host-record=app2.test,198.52.0.9',
  'dns-rr=app2.test,65,000100000400049B0A0001000600102001067C000000000000000000000099',
  'host-record=same.test,31.13.70.1',
  'host-record=probe.test,149.154.160.1',
  'host-record=fb.test,157.240.0.7',
  'address=/flood.test/157.240.5.5'
]

interface Rig {
  learner: Learner
  book: LearnedBook
  sink: RecordingSink
  store: LearnedStore
  path: string
  dm: Dnsmasq
}

async function rig (t: Test, o: Partial<LearningConfig> = {}): Promise<Rig> {
  const dm = await startDnsmasq({ lines: ZONE, auth: false, ttl: 120 })
  const log = quiet()
  const pool = new UpstreamPool({
    upstreams: [{ url: dm.url, protocol: 'udp', host: dm.host, port: dm.port, path: '', timeoutMs: 2000, servername: undefined, caFile: undefined }],
    udpSockets: 2, turn: new UdpTurn(), ednsUdpSize: 1232, ttl: { minTtl: 0, maxTtl: 86_400, negativeMaxTtl: 3600 },
    log, metrics: new DnsMetrics(), now: Date.now
  })
  const learning = learningConfig({ minExpirySeconds: 60, ...o })
  const file = policyFile()
  const db = file.open()
  const store = new LearnedStore({ db, log, now: Date.now, guardWindowMs: learning.guardWindowSeconds * 1000 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [dm.host], store, log, now: Date.now, interfaces: () => ({}) })
  const sink = new RecordingSink()
  const book = new LearnedBook({ learning, guard, store, sink, log, now: Date.now })
  book.start()
  const learner = new Learner({ learning, book, query: async (q, d) => await pool.query(q, d), log, now: Date.now })
  t.teardown(async () => {
    await learner.close()
    book.close()
    db.close()
    pool.close()
    await dm.stop()
  })
  return { learner, book, sink, store, path: file.path, dm }
}

async function until (what: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now()
  while (!what()) {
    if (Date.now() - start > ms) throw new Error('timed out')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** How many queries for `name` the upstream logged. */
const asked = (dm: Dnsmasq, name: string): number => dm.log().split('\n').filter(l => new RegExp(`query\\[\\w+\\] ${name.replace(/\./g, '\\.')} from`).test(l)).length

t.test('a blocked name\'s CNAME chain and HTTPS hints are learned with category, name, times and expiry', async t => {
  const r = await rig(t, { ttlMultiple: 4 })
  const before = Date.now()
  r.learner.blocked('app.test', 'whatsapp')
  r.learner.blocked('app2.test', 'whatsapp')
  await until(() => r.learner.stats.resolved === 2)
  const rows = new Map(r.book.list('whatsapp').map(x => [x.address, x]))
  t.same([...rows.keys()].sort(), ['155.10.0.1', '157.240.0.7', '198.52.0.9', '2001:67c::99', '2a03:2880:f000::7'],
    'the chain\'s final A and AAAA (RFC 5952 text), the HTTPS record\'s ipv4hint and ipv6hint, and app2\'s A')
  const a = rows.get('157.240.0.7')
  t.match(a, { category: 'whatsapp', name: 'app.test', via: 'query', family: 4 })
  t.ok(a !== undefined && a.firstSeen >= before && a.firstSeen === a.lastSeen)
  t.equal(a !== undefined ? a.expiresAt - a.lastSeen : 0, 480_000, 'expiry: TTL 120 s x 4')
  t.match(rows.get('2001:67c::99'), { name: 'app2.test', family: 6 })
  t.ok(r.sink.has('whatsapp', '2a03:2880:f000::7'), 'handed to the sink')
  t.equal(r.sink.timeout('whatsapp', '157.240.0.7'), 480)
  t.same(r.learner.stats.learned, 5)
  // Three questions per name: A, AAAA and HTTPS.
  t.equal(asked(r.dm, 'app2.test'), 3)
  // On disk within about a second.
  await until(() => readLearned(r.path, 0).active.length === 5, 2000)
  t.pass('persisted')
})

t.test('coalescing: 100 blocked queries for one name are one resolution, and none again within its TTL', async t => {
  const r = await rig(t)
  for (let i = 0; i < 100; i++) r.learner.blocked('same.test', 'discord')
  t.equal(r.learner.stats.queued, 1)
  await until(() => r.learner.stats.resolved === 1)
  for (let i = 0; i < 100; i++) r.learner.blocked('same.test', 'discord')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(r.learner.stats.started, 1)
  t.equal(asked(r.dm, 'same.test'), 3, 'the upstream was asked A, AAAA and HTTPS once')
  t.same(r.book.list('discord').map(x => x.address), ['31.13.70.1'])
})

t.test('background resolutions are bounded: a flood of 5000 distinct names starts at most resolvesPerSecond a second (+ one second\'s burst) and never queues more than queueMax', async t => {
  const rate = 50
  const queueMax = 300
  const r = await rig(t, { resolvesPerSecond: rate, queueMax })
  const started = Date.now()
  let maxDepth = 0
  let maxRateExcess = -Infinity
  for (let i = 0; i < 5000; i++) {
    r.learner.blocked(`n${i}.flood.test`, 'snapchat')
    const s = r.learner.stats
    if (s.queueDepth > maxDepth) maxDepth = s.queueDepth
    if (i % 250 === 249) {
      // Spread the flood over ~2 s so the bucket refills under load.
      await new Promise(resolve => setTimeout(resolve, 100))
      const elapsed = (Date.now() - started) / 1000
      maxRateExcess = Math.max(maxRateExcess, r.learner.stats.started - (rate * elapsed + rate))
    }
  }
  await new Promise(resolve => setTimeout(resolve, 500))
  const elapsed = (Date.now() - started) / 1000
  const s = r.learner.stats
  t.comment(`after ${elapsed.toFixed(2)} s: started ${s.started}, queued ${s.queued}, dropped ${s.dropped}, max queue depth ${maxDepth}`)
  t.ok(s.started <= rate * elapsed + rate, `started ${s.started} <= ${rate}/s x ${elapsed.toFixed(2)} s + ${rate} burst`)
  t.ok(maxRateExcess <= 0, 'the bound held at every checkpoint, not only at the end')
  t.ok(s.started >= rate, 'and it does work: at least the first second\'s burst started')
  t.ok(maxDepth <= queueMax, `queue depth never above ${queueMax} (max ${maxDepth})`)
  t.equal(maxDepth, queueMax, 'the queue filled')
  t.equal(s.queued + s.dropped, 5000, 'every name was either queued or dropped and counted')
  t.ok(s.dropped >= 5000 - queueMax - s.started, `dropped ${s.dropped}`)
  let upstream = 0
  for (const l of r.dm.log().split('\n')) if (/query\[\w+\] n\d+\.flood\.test from/.test(l)) upstream++
  t.ok(upstream <= 3 * s.started, `the upstream saw ${upstream} questions for ${s.started} resolutions`)
})

t.test('probe names share the rate with query learning and are not starved by a full query queue', async t => {
  const r = await rig(t, { resolvesPerSecond: 20, queueMax: 200 })
  for (let i = 0; i < 200; i++) r.learner.blocked(`q${i}.flood.test`, 'snapchat')
  r.learner.probe(new Map([['telegram', ['probe.test', 'PROBE.test.']]]))
  t.equal(r.learner.stats.probesQueued, 2)
  await until(() => r.book.list('telegram').length === 1, 4000)
  t.match(r.book.list('telegram')[0], { address: '149.154.160.1', name: 'probe.test', via: 'probe' })
  const s = r.learner.stats
  t.ok(s.started < 40, `reached within the first second's starts (${s.started} started) although 200 query names were ahead`)
})

t.test('guard seeds feed the guard: a banned name sharing their address is held with the allowed name', async t => {
  const r = await rig(t)
  r.learner.seedGuard(['fb.test'])
  await until(() => r.learner.stats.resolved === 1)
  t.same(r.book.list(), [], 'a seed is never learned')
  r.learner.blocked('app.test', 'whatsapp')
  await until(() => r.learner.stats.resolved === 2)
  const held = r.book.held('whatsapp')
  t.same(held.map(h => [h.address, h.name, h.sharedWith]), [['157.240.0.7', 'app.test', ['fb.test']]])
  t.notOk(r.sink.has('whatsapp', '157.240.0.7'))
  t.ok(r.sink.has('whatsapp', '2a03:2880:f000::7'), 'the address fb.test does not share is in the set')
  t.equal(r.learner.stats.held, 1)
})

t.test('the probe scheduler queues guard seeds and probe names soon after start, then every interval, and stops', async t => {
  const calls: string[] = []
  const learner = {
    probe: (m: ReadonlyMap<string, readonly string[]>) => { calls.push(`probe ${[...m.keys()].join(',')}`) },
    seedGuard: (n: readonly string[]) => { calls.push(`seed ${n.join(',')}`) }
  }
  const s = new ProbeScheduler({ learner, probeNames: () => new Map([['telegram', ['t.me']]]), guardNames: () => ['example.com'], intervalSeconds: 0.1, firstDelayMs: 20, log: quiet() })
  s.start()
  await until(() => s.runs >= 2, 2000)
  s.close()
  const runs = s.runs
  t.same(calls.slice(0, 2), ['seed example.com', 'probe telegram'], 'seeds first, so the guard knows them before the probes are judged')
  await new Promise(resolve => setTimeout(resolve, 250))
  t.equal(s.runs, runs, 'no run after close')
})

t.test('a probe run with more guard seeds than queueMax keeps every probe name (seeds and probes are bounded apart)', async t => {
  const r = await rig(t, { resolvesPerSecond: 5, queueMax: 300 })
  // As the scheduler queues a run: ~660 everyday names, then ~110 probe names.
  r.learner.seedGuard(Array.from({ length: 660 }, (_, i) => `s${i}.flood.test`))
  r.learner.probe(new Map([['telegram', Array.from({ length: 112 }, (_, i) => `p${i}.flood.test`)]]))
  const s = r.learner.stats
  t.match(s, { probesQueued: 112, probesDropped: 0 }, 'no probe name dropped')
  t.equal(s.seedsQueued + s.seedsDropped, 660)
  t.ok(s.seedsDropped >= 660 - 300, `seeds beyond queueMax dropped and counted (${s.seedsDropped})`)
  t.ok(s.seedQueueDepth <= 300 && s.probeQueueDepth <= 300)
})
