// The learned sets in force (src/learn/book.ts) with the real guard and store on a real
// policy.sqlite: the guard's two orders (allowed first, banned first), never-block ranges named by
// origin, expiry, the restart, the maxLearned bound, and the export read from the file.

import t from 'tap'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard } from '../../src/learn/guard.js'
import { LearnedStore, readLearned, readLearnedElements } from '../../src/learn/store.js'
import type { LearningConfig } from '../../src/config/types.js'
import type { Db } from '../../src/store/db.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import { learningConfig, policyFile, quiet, RecordingSink } from './fixtures.js'

const T0 = Date.UTC(2030, 0, 2, 3, 4, 5)
const v4 = (s: string): number => ipv4Number(s)
/** An allowed answer as the DNS path hands it over (AnswerTargets' shape). */
const answer = (a4: string[], a6: string[] = []): { v4: number[], v4Count: number, v6: string[], v6Count: number } =>
  ({ v4: a4.map(v4), v4Count: a4.length, v6: a6, v6Count: a6.length })

interface World {
  book: LearnedBook
  guard: CollateralGuard
  store: LearnedStore
  sink: RecordingSink
  db: Db
  clock: { now: number }
  close: () => void
}

function world (file: { open: () => Db }, o: { learning?: Partial<LearningConfig>, clock?: { now: number }, lanCidrs?: string[], upstreamHosts?: string[] } = {}): World {
  const learning = learningConfig({ minExpirySeconds: 60, ...o.learning })
  const clock = o.clock ?? { now: T0 }
  const now = (): number => clock.now
  const db = file.open()
  const log = quiet()
  const store = new LearnedStore({ db, log, now, guardWindowMs: learning.guardWindowSeconds * 1000 })
  const guard = new CollateralGuard({
    learning, lanCidrs: o.lanCidrs ?? [], upstreamHosts: o.upstreamHosts ?? [], store, log, now,
    interfaces: () => ({ lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }] })
  })
  guard.load()
  const sink = new RecordingSink()
  const book = new LearnedBook({ learning, guard, store, sink, log, now })
  book.start()
  return { book, guard, store, sink, db, clock, close: () => { book.close(); db.close() } }
}

t.test('an address an allowed name resolved to first is held back, with both names; the others go into the set', async t => {
  const w = world(policyFile())
  t.teardown(w.close)
  w.book.allowedAnswer('facebook.com', answer(['157.240.1.35']))
  const o = w.book.learn('whatsapp', 'whatsapp.net', [v4('157.240.1.35'), v4('31.13.64.51')], [], 300, 'query')
  t.same(o, { active: 1, held: 1 })
  t.ok(w.sink.has('whatsapp', '31.13.64.51'), 'the unshared address is in the set')
  t.notOk(w.sink.has('whatsapp', '157.240.1.35'), 'the shared one never reached the sink')
  t.equal(w.sink.calls.filter(c => c.address === '157.240.1.35').length, 0)
  const held = w.book.held()
  t.equal(held.length, 1)
  t.match(held[0], { address: '157.240.1.35', family: 4, category: 'whatsapp', name: 'whatsapp.net', reason: 'allowed-name', sharedWith: ['facebook.com'], via: 'query' })
  t.equal(w.book.lookup('157.240.1.35'), undefined, 'a held address is not a learned one for the firewall')
  t.match(w.book.lookup('31.13.64.51'), { category: 'whatsapp', name: 'whatsapp.net' })
})

t.test('a later allowed answer sharing a learned address takes it out of the set (sink.remove) and holds it', async t => {
  const w = world(policyFile())
  t.teardown(w.close)
  w.book.learn('whatsapp', 'g.whatsapp.net', [v4('157.240.9.53')], ['2a03:2880:f20d:c4:face:b00c:0:167'], 300, 'query')
  t.ok(w.sink.has('whatsapp', '157.240.9.53'))
  t.ok(w.sink.has('whatsapp', '2a03:2880:f20d:c4:face:b00c:0:167'))
  w.clock.now += 5000
  // The DNS path's form: IPv6 as AnswerTargets writes it (uncompressed groups).
  w.book.allowedAnswer('www.facebook.com', answer(['157.240.9.53'], ['2a03:2880:f20d:c4:face:b00c:0:167']))
  t.notOk(w.sink.has('whatsapp', '157.240.9.53'), 'removed from the sink')
  t.notOk(w.sink.has('whatsapp', '2a03:2880:f20d:c4:face:b00c:0:167'))
  t.same(w.sink.calls.map(c => c.op), ['add', 'add', 'remove', 'remove'])
  t.same(w.book.list(), [])
  const held = w.book.held()
  t.same(held.map(h => [h.address, h.name, h.sharedWith, h.reason]), [
    ['157.240.9.53', 'g.whatsapp.net', ['www.facebook.com'], 'allowed-name'],
    ['2a03:2880:f20d:c4:face:b00c:0:167', 'g.whatsapp.net', ['www.facebook.com'], 'allowed-name']
  ])
  t.equal(w.book.stats.removedByGuard, 2)
  // A second allowed name sharing it shows too (most recent first).
  w.book.allowedAnswer('instagram.com', answer(['157.240.9.53']))
  t.same(w.book.held('whatsapp')[0].sharedWith, ['instagram.com', 'www.facebook.com'])
  // Learning it again while the allowed answers are within the window keeps it held.
  w.book.learn('whatsapp', 'g.whatsapp.net', [v4('157.240.9.53')], [], 300, 'query')
  t.notOk(w.sink.has('whatsapp', '157.240.9.53'))
})

t.test('never-block ranges hold an address back and name the range with its origin', async t => {
  const w = world(policyFile(), { learning: { neverBlock: ['45.1.2.0/24'] }, lanCidrs: ['44.0.0.0/8'], upstreamHosts: ['46.1.1.1', 'dns.example.net'] })
  t.teardown(w.close)
  const cases: Array<[string, string]> = [
    ['10.20.30.40', '10.0.0.0/8 (special-purpose)'],
    ['100.100.1.1', '100.64.0.0/10 (special-purpose)'],
    ['192.0.2.7', '192.0.2.0/24 (special-purpose)'],
    ['44.9.9.9', '44.0.0.0/8 (firewall.lanCidrs)'],
    ['45.1.2.200', '45.1.2.0/24 (learning.neverBlock)'],
    ['46.1.1.1', '46.1.1.1/32 (upstream resolver)'],
    ['127.0.0.1', '127.0.0.0/8 (special-purpose)']
  ]
  w.book.learn('telegram', 't.me', cases.map(([a]) => v4(a)), ['fe80::1', '2001:db8::5', 'fd00::1', '::1', '::ffff:149.154.167.99'], 300, 'probe')
  const held = new Map(w.book.held().map(h => [h.address, h]))
  for (const [a, range] of cases) t.match(held.get(a), { reason: 'never-block', range, sharedWith: [], via: 'probe' }, a)
  t.equal(held.get('fe80::1')?.range, 'fe80::/10 (special-purpose)')
  t.equal(held.get('2001:db8::5')?.range, '2001:db8::/32 (special-purpose)')
  t.equal(held.get('fd00::1')?.range, 'fc00::/7 (special-purpose)')
  t.equal(held.get('::1')?.range, '::1/128 (special-purpose)')
  t.equal(held.get('::ffff:959a:a763')?.range, '::ffff:0:0/96 (special-purpose)', 'an IPv4-mapped AAAA stays out of the IPv6 set')
  t.equal(w.sink.calls.length, 0, 'nothing went to the sink')
  t.ok(w.guard.ranges.includes('127.0.0.1/32 (gateway address on lo)'), 'the gateway\'s own addresses are never-block ranges')
  t.notOk(w.guard.ranges.some(r => r.includes('dns.example.net')), 'an upstream given by name is skipped')
  // A public address next to them is learned.
  t.same(w.book.learn('telegram', 't.me', [v4('149.154.167.99')], [], 300, 'probe'), { active: 1, held: 0 })
})

t.test('expiry: clamp(ttl * ttlMultiple, min, max) from now; the sweep removes it from the sink and the store', async t => {
  const file = policyFile()
  const w = world(file, { learning: { ttlMultiple: 4, minExpirySeconds: 60, maxExpirySeconds: 3600 } })
  t.teardown(w.close)
  w.book.learn('discord', 'gateway.discord.gg', [v4('162.159.135.232')], [], 30, 'query') // 120 s
  w.book.learn('discord', 'cdn.discordapp.com', [v4('162.159.129.233')], [], 5, 'query') // 20 s -> the 60 s floor
  w.book.learn('discord', 'discord.com', [v4('162.159.138.232')], [], 86_400, 'query') // -> the 3600 s cap
  const byAddr = new Map(w.book.list('discord').map(r => [r.address, r]))
  t.equal(byAddr.get('162.159.135.232')?.expiresAt, T0 + 120_000)
  t.equal(byAddr.get('162.159.129.233')?.expiresAt, T0 + 60_000)
  t.equal(byAddr.get('162.159.138.232')?.expiresAt, T0 + 3_600_000)
  t.match(byAddr.get('162.159.135.232'), { category: 'discord', name: 'gateway.discord.gg', via: 'query', firstSeen: T0, lastSeen: T0 })
  t.equal(w.sink.timeout('discord', '162.159.135.232'), 120)
  w.store.flush()
  t.same([...readLearnedElements(file.path, T0 + 1000).get('discord')?.v4 ?? []].map(e => [e.address, e.timeoutSeconds]), [
    ['162.159.129.233', 59], ['162.159.135.232', 119], ['162.159.138.232', 3599]
  ], 'the export reads the elements with their remaining timeouts')

  w.clock.now = T0 + 61_000
  t.equal(w.book.sweep(), 1)
  t.notOk(w.sink.has('discord', '162.159.129.233'), 'expired: removed from the sink')
  t.ok(w.sink.calls.some(c => c.op === 'remove' && c.address === '162.159.129.233'))
  w.clock.now = T0 + 121_000
  t.equal(w.book.sweep(), 1)
  t.same(w.book.list().map(r => r.address), ['162.159.138.232'])
  w.store.flush()
  t.same(readLearned(file.path, 0).active.map(r => r.address), ['162.159.138.232'], 'expired rows are deleted from the file')
  t.equal(w.book.stats.expired, 2)
})

t.test('a restart keeps learned addresses (re-added to the sink with their remaining timeout) and the guard\'s memory', async t => {
  const file = policyFile()
  const clock = { now: T0 }
  const a = world(file, { clock, learning: { minExpirySeconds: 600 } })
  a.book.learn('viber', 'dl.viber.com', [v4('52.0.252.1')], ['2600:9000:2000::1'], 60, 'query')
  a.book.allowedAnswer('aws.amazon.com', answer(['52.94.236.248']))
  clock.now += 200_000
  a.close() // flushes the queued writes

  const b = world(file, { clock, learning: { minExpirySeconds: 600 } })
  t.teardown(b.close)
  t.same(b.book.list().map(r => [r.address, r.family, r.name, r.firstSeen, r.expiresAt]), [
    ['52.0.252.1', 4, 'dl.viber.com', T0, T0 + 600_000],
    ['2600:9000:2000::1', 6, 'dl.viber.com', T0, T0 + 600_000]
  ])
  t.same(b.sink.calls, [
    { op: 'add', category: 'viber', address: '52.0.252.1', family: 4, timeoutSeconds: 400 },
    { op: 'add', category: 'viber', address: '2600:9000:2000::1', family: 6, timeoutSeconds: 400 }
  ], 're-added with the remaining 400 s')
  // The guard remembers the allowed answer from before the restart.
  t.same(b.book.learn('viber', 'media.viber.com', [v4('52.94.236.248')], [], 60, 'query'), { active: 0, held: 1 })
  t.same(b.book.held()[0].sharedWith, ['aws.amazon.com'])
  t.equal(b.book.lookup('52.0.252.1')?.category, 'viber', 'the firewall classifies a hit by it')
})

t.test('a learned address reaches the file within about a second, in one transaction for a burst', async t => {
  const file = policyFile()
  const clock = { now: Date.now() }
  const w = world(file, { clock })
  t.teardown(w.close)
  const before = w.store.stats.flushes
  for (let i = 0; i < 50; i++) w.book.learn('snapchat', `n${i}.sc-cdn.net`, [v4(`35.190.1.${i + 1}`)], [], 300, 'query')
  for (let i = 0; i < 20; i++) w.book.allowedAnswer(`ok${i}.example.com`, answer([`8.8.4.${i + 1}`]))
  t.equal(readLearned(file.path, 0).active.length, 0, 'nothing is written on the learning call itself')
  const start = Date.now()
  while (readLearned(file.path, 0).active.length < 50 && Date.now() - start < 3000) await new Promise(resolve => setTimeout(resolve, 50))
  const took = Date.now() - start
  t.equal(readLearned(file.path, 0).active.length, 50)
  t.ok(took < 1600, `written after ${took} ms`)
  t.equal(w.store.stats.flushes - before, 1, 'one transaction for the 50 addresses and 20 observations')
  t.equal(w.store.stats.pending, 0)
})

t.test('learning.maxLearned bounds the rows: the least recently seen go (out of the sink too)', async t => {
  const w = world(policyFile(), { learning: { maxLearned: 100 } })
  t.teardown(w.close)
  for (let i = 0; i < 105; i++) {
    w.clock.now += 1000
    w.book.learn('wechat', `h${i}.wechat.com`, [v4(`109.244.${Math.floor(i / 200)}.${(i % 200) + 1}`)], [], 300, 'query')
  }
  t.equal(w.book.list().length, 100)
  t.equal(w.book.stats.evicted, 5)
  t.notOk(w.sink.has('wechat', '109.244.0.1'), 'the oldest was removed from the sink')
  t.ok(w.sink.has('wechat', '109.244.0.105'))
  t.equal(w.book.lookup('109.244.0.5'), undefined)
})

t.test('readLearnedElements: a missing file or one without the table is an empty map', async t => {
  t.same(readLearnedElements('/nonexistent/dir/policy.sqlite', Date.now()), new Map())
  const file = policyFile()
  const db = file.open()
  db.close()
  t.same(readLearnedElements(file.path, Date.now()), new Map())
  t.same(readLearned('/nonexistent/dir/policy.sqlite', 0), { active: [], held: [] })
})
