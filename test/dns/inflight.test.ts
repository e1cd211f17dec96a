import t from 'tap'
import { InflightQueries } from '../../src/dns/inflight.js'

const entry = (key: string): { q: { key: string } } => ({ q: { key } })

t.test('agrees with a Map through adds and removes, with colliding hashes that wrap around the table', async t => {
  // Three hash values at the end of the table: every key probes in one run that wraps to the
  // first positions, and every removal shifts entries back across the wrap.
  for (const hashOf of [(k: string): number => 61 + (k.charCodeAt(1) % 3), (k: string): number => (Math.imul(k.length + 1, 0x9e3779b1) ^ k.charCodeAt(k.length - 1)) | 1]) {
    const table = new InflightQueries<{ q: { key: string } }>()
    const model = new Map<string, { q: { key: string } }>()
    let seed = 11
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
    let fault: string | undefined
    for (let step = 0; step < 20000 && fault === undefined; step++) {
      const key = `k${rnd(150)}`
      const h = hashOf(key)
      const had = model.get(key)
      if (rnd(2) === 0) {
        if (had === undefined) { const e = entry(key); table.add(h, e); model.set(key, e) }
      } else if (had !== undefined) {
        table.remove(h, had)
        model.delete(key)
      }
      const probe = `k${rnd(150)}`
      if (table.get(probe, hashOf(probe)) !== model.get(probe)) fault = `step ${step}: ${probe}`
      if (table.size !== model.size) fault = `step ${step}: size ${table.size}, model ${model.size}`
    }
    t.equal(fault, undefined, 'every lookup found what the model holds')
    for (const [key, e] of model) t.equal(table.get(key, hashOf(key)), e)
  }
})

t.test('removing an entry that is not there changes nothing; equal hashes are told apart by key', async t => {
  const table = new InflightQueries<{ q: { key: string } }>()
  const a = entry('a.test')
  const b = entry('b.test')
  table.add(7, a)
  table.add(7, b)
  t.equal(table.get('a.test', 7), a)
  t.equal(table.get('b.test', 7), b)
  table.remove(7, entry('a.test')) // another object with the same key
  t.equal(table.size, 2)
  table.remove(7, a)
  t.equal(table.get('a.test', 7), undefined)
  t.equal(table.get('b.test', 7), b)
  t.equal(table.size, 1)
})
