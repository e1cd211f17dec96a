import t from 'tap'
import { AnswerCache, FORGOTTEN, MISS, SLOT_BYTES } from '../../src/dns/cache.js'
import type { StoredAnswer } from '../../src/dns/wire.js'

// Every answer's body carries a serial number of its own, so a test can tell which one it got back
// (the cache keeps copies of the bytes, not the objects).
let serial = 0
const answer = (lifetime: number, bodyBytes = 12): StoredAnswer => {
  const body = Buffer.alloc(bodyBytes)
  body.writeUInt32BE(++serial, 0)
  return { body, opt: Buffer.alloc(11), rcode: 0, lifetime, ancount: 0, raw: undefined }
}
const same = (got: StoredAnswer | undefined, a: StoredAnswer): boolean => got !== undefined && got.body.equals(a.body) && got.opt.equals(a.opt)

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
  t.equal(c.expiresAt(c.find('a', 0)), 120_000)
  t.equal(c.get('a', 0)?.lifetime, 120, 'the second answer is the one kept')
})

t.test('lookups agree with a model through collisions, wrap-around, expiry and replacement', async t => {
  // A hash with 3 values, at the end of the table: every key probes in one long run that wraps
  // from the last positions to the first, and every removal shifts keys back across the wrap.
  const weak = (key: string): number => 61 + (key.charCodeAt(1) % 3)
  let seed = 7
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
  for (const hash of [weak, undefined]) {
    const c = new AnswerCache({ maxEntries: 100, now: () => 0, hash })
    const model = new Map<string, { expiresAt: number, answer: StoredAnswer }>()
    let now = 0
    let checked = 0
    let fault: string | undefined
    for (let step = 0; step < 5000 && fault === undefined; step++) {
      const key = `k${rnd(24)}`
      const op = rnd(100)
      if (op < 45) {
        const lifetime = 1 + rnd(5)
        const a = answer(lifetime)
        c.put(key, a, now)
        model.set(key, { expiresAt: now + lifetime * 1000, answer: a })
      } else if (op < 98) {
        const m = model.get(key)
        const live = m !== undefined && m.expiresAt > now
        if (m !== undefined && !live) model.delete(key)
        const got = c.get(key, now)
        if ((got !== undefined) !== live) fault = `step ${step}: ${key} ${live ? 'not found' : 'served after expiry'}`
        else if (got !== undefined && !same(got, m!.answer)) fault = `step ${step}: ${key} served another key's answer`
        checked++
      } else {
        c.clear()
        model.clear()
      }
      fault ??= c.selfCheck()
      now += rnd(300)
    }
    t.equal(fault, undefined, `${hash === undefined ? 'real' : 'weak'} hash: ${checked} lookups agreed with the model, and the table with the ring`)
    t.equal(c.stats.evictions, 0, 'no evictions: the model does not predict them')
  }
})

t.test('evictions keep the table consistent; it grows as entries come', async t => {
  const c = new AnswerCache({ maxEntries: 500, now: () => 0 })
  for (let i = 0; i < 500; i++) c.put(`n${i}`, answer(60), 0)
  t.equal(c.selfCheck(), undefined, 'grown from 64 positions to hold 500 keys')
  t.ok(Array.from({ length: 500 }, (_, i) => `n${i}`).every(k => c.get(k, 0) !== undefined), 'all 500 found')
  for (let i = 0; i < 3000; i++) {
    c.put(`e${i}`, answer(i % 7 === 0 ? 1 : 60), i)
    if (i % 5 === 0) c.get(`e${i - 3}`, i)
  }
  t.equal(c.size, 500)
  t.equal(c.selfCheck(), undefined)
  t.ok(c.stats.evictions > 2000, `${c.stats.evictions} evictions`)
  const weak = new AnswerCache({ maxEntries: 40, now: () => 0, hash: () => 5 })
  for (let i = 0; i < 400; i++) weak.put(`w${i}`, answer(60), i)
  t.equal(weak.selfCheck(), undefined, 'one hash for every key: evictions shift the whole run back')
  t.ok(Array.from({ length: 40 }, (_, i) => `w${360 + i}`).every(k => weak.get(k, 400) !== undefined), 'the last 40 stored are found')
})

t.test('after clear, the cache fills and evicts again from an empty ring', async t => {
  const c = new AnswerCache({ maxEntries: 100, now: () => 0 })
  for (let i = 0; i < 150; i++) c.put(`a${i}`, answer(60), 0)
  c.clear()
  t.equal(c.size, 0)
  t.equal(c.get('a149', 0), undefined)
  const kept = Array.from({ length: 120 }, () => answer(60))
  kept.forEach((a, i) => c.put(`b${i}`, a, 1))
  t.equal(c.size, 100)
  t.equal(c.selfCheck(), undefined)
  t.ok(kept.slice(20).every((a, i) => same(c.get(`b${i + 20}`, 1), a)), 'the last 100 stored are served, each its own answer')
  t.equal(c.storedAt(c.find('b119', 1)), 1)
})

t.test('answers too large for their slot get a buffer of their own, and both kinds come back whole', async t => {
  const c = new AnswerCache({ maxEntries: 8, now: () => 0 })
  const small = answer(60, 200)
  const large = answer(60, 4000) // body, OPT and key over SLOT_BYTES
  const edge = answer(60, SLOT_BYTES - 11 - 'edge'.length) // exactly fills the slot
  c.put('small', small, 0)
  c.put('large', large, 0)
  c.put('edge', edge, 0)
  t.ok(same(c.get('small', 0), small))
  t.ok(same(c.get('large', 0), large))
  t.ok(same(c.get('edge', 0), edge))
  const smaller = answer(60, 40)
  c.put('large', smaller, 0) // the key moves back into its slot
  t.ok(same(c.get('large', 0), smaller))
  t.ok(same(c.get('small', 0), small), 'its neighbour untouched')
  t.equal(c.selfCheck(), undefined)
})

t.test('a remembered decision holds for its keys and is forgotten when the slot gets a new answer', async t => {
  const c = new AnswerCache({ maxEntries: 2, now: () => 0 })
  c.put('a', answer(60), 0)
  const slot = c.find('a', 0)
  const group = {}
  const engine = {}
  t.equal(c.recall(slot, group, engine), FORGOTTEN)
  c.remember(slot, group, engine, undefined)
  t.equal(c.recall(slot, group, engine), undefined, 'an allowed answer is remembered as undefined')
  t.equal(c.recall(slot, group, {}), FORGOTTEN, 'another snapshot')
  c.put('a', answer(60), 0)
  t.equal(c.recall(c.find('a', 0), group, engine), FORGOTTEN, 'a new answer for the key')
})

t.test('find reads the clock only when it finds the key, and keeps the reading', async t => {
  let reads = 0
  let clock = 1000
  const c = new AnswerCache({ maxEntries: 4, now: () => { reads++; return clock } })
  c.put('a', answer(60), 0)
  t.equal(c.find('missing'), MISS)
  t.equal(reads, 0, 'a miss needs no time')
  clock = 5000
  t.not(c.find('a'), MISS)
  t.equal(reads, 1)
  t.equal(c.checkedAt, 5000)
  clock = 61_000
  t.equal(c.find('a'), MISS, 'expired by the clock read on the hit')
})
