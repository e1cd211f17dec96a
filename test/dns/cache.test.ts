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
  t.ok(['k997', 'k998', 'k999'].every(k => c.get(k, 2) !== undefined), 'the last three stored are the ones kept')
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

t.test('the filter in front of the map never hides a cached key', async t => {
  // Two counters for 50 keys: every counter is shared by many keys, so a counter decremented once
  // too often, or not incremented, would hide live keys. Checked against a model after every step.
  let seed = 7
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
  const c = new AnswerCache({ maxEntries: 100, now: () => 0, filterSize: 2 })
  const model = new Map<string, number>() // key -> expiresAt
  let now = 0
  let checked = 0
  for (let step = 0; step < 5000; step++) {
    const key = `k${rnd(50)}`
    const op = rnd(100)
    if (op < 45) {
      const lifetime = 1 + rnd(5)
      c.put(key, answer(lifetime), now)
      model.set(key, now + lifetime * 1000)
    } else if (op < 98) {
      const exp = model.get(key)
      const live = exp !== undefined && exp > now
      if (exp !== undefined && !live) model.delete(key)
      if ((c.get(key, now) !== undefined) !== live) { t.fail(`step ${step}: ${key} ${live ? 'hidden' : 'served'}`); return }
      checked++
    } else {
      c.clear()
      model.clear()
    }
    now += rnd(300)
  }
  t.ok(checked > 2000, `${checked} lookups agreed with the model`)
  t.equal(c.stats.evictions, 0, 'no evictions: the model does not predict them')
})

t.test('a filter counter that saturates stays saturated and hides nothing', async t => {
  const c = new AnswerCache({ maxEntries: 400, now: () => 0, filterSize: 1 }) // one counter for every key
  for (let i = 0; i < 300; i++) c.put(`k${i}`, answer(i < 280 ? 1 : 600), 0) // 300 keys: past 255
  for (let i = 0; i < 280; i++) t.equal(c.get(`k${i}`, 2000), undefined) // 280 expire and are removed
  t.equal(c.size, 20)
  t.ok(Array.from({ length: 20 }, (_, i) => `k${280 + i}`).every(k => c.get(k, 2000) !== undefined), 'the 20 left are found')
})
