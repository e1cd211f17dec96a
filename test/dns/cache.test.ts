import t from 'tap'
import { AnswerCache } from '../../src/dns/cache.js'
import type { StoredAnswer } from '../../src/dns/wire.js'

const answer = (lifetime: number): StoredAnswer => ({
  body: Buffer.alloc(12), opt: Buffer.alloc(11), rcode: 0, ttlOffsets: [], lifetime, ancount: 0
})

t.test('entries expire with their lifetime', async t => {
  const c = new AnswerCache({ maxEntries: 10, now: () => 0 })
  c.put('a', answer(60), 1000)
  t.ok(c.get('a', 60_999))
  t.equal(c.get('a', 61_000), undefined)
  t.equal(c.size, 0)
  t.equal(c.stats.expired, 1)
  c.put('z', answer(0), 0)
  t.equal(c.get('z', 0), undefined, 'lifetime 0 is not stored')
})

t.test('bounded by entry count; entries hit since the hand passed survive (second chance)', async t => {
  const c = new AnswerCache({ maxEntries: 3, now: () => 0 })
  c.put('a', answer(60), 0)
  c.put('b', answer(60), 0)
  c.put('c', answer(60), 0)
  t.ok(c.get('a', 1))                    // a is used
  c.put('d', answer(60), 1)              // evicts b: the oldest entry without a hit
  t.equal(c.size, 3)
  t.ok(c.get('a', 1), 'recently used a stays')
  t.equal(c.get('b', 1), undefined, 'unused b is evicted')
  t.ok(c.get('c', 1) !== undefined && c.get('d', 1) !== undefined)
  t.equal(c.stats.evictions, 1)
  for (let i = 0; i < 1000; i++) c.put(`k${i}`, answer(60), 2)
  t.equal(c.size, 3, 'never above maxEntries')
})

t.test('slots freed by expiry are reused before anything is evicted', async t => {
  const c = new AnswerCache({ maxEntries: 2, now: () => 0 })
  c.put('short', answer(1), 0)
  c.put('long', answer(600), 0)
  t.equal(c.get('short', 5000), undefined)
  c.put('new', answer(600), 5000)
  t.ok(c.get('long', 5000), 'long survived: the expired slot was reused')
  t.ok(c.get('new', 5000))
  t.equal(c.stats.evictions, 0)
})

t.test('replacing a key keeps one entry', async t => {
  const c = new AnswerCache({ maxEntries: 2, now: () => 0 })
  c.put('a', answer(60), 0)
  c.put('a', answer(120), 0)
  t.equal(c.size, 1)
  t.equal(c.get('a', 0)?.expiresAt, 120_000)
})
