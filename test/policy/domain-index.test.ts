import t from 'tap'
import { DomainIndex } from '../../src/policy/domain-index.js'

const all = (): boolean => true

t.test('suffix, exact and wildcard rules on label boundaries', async t => {
  const d = new DomainIndex()
  d.add('suffix', 'telegram.org', 0)
  d.add('exact', 'exact.example', 1)
  d.add('wildcard', 'wild.example', 2)
  d.add('suffix', 't.me', 3)
  const cases: Array<[string, number]> = [
    ['telegram.org', 0],
    ['web.telegram.org', 0],
    ['a.b.c.telegram.org', 0],
    ['nottelegram.org', -1],
    ['telegram.org.example.com', -1],
    ['org', -1],
    ['exact.example', 1],
    ['www.exact.example', -1],
    ['wild.example', -1],
    ['a.wild.example', 2],
    ['a.b.wild.example', 2],
    ['t.me', 3],
    ['x.t.me', 3],
    ['at.me', -1],
    ['', -1]
  ]
  for (const [name, id] of cases) t.equal(d.match(name, all), id, name)
  t.equal(d.size, 4)
})

t.test('the longest name wins; rules the caller does not accept are skipped, same-name rules chained', async t => {
  const d = new DomainIndex()
  d.add('suffix', 'example.com', 0)
  d.add('suffix', 'mail.example.com', 1)
  d.add('suffix', 'mail.example.com', 2)
  t.equal(d.match('a.mail.example.com', all), 2, 'most recently added of the same name first')
  t.equal(d.match('a.mail.example.com', id => id !== 2), 1)
  t.equal(d.match('a.mail.example.com', id => id === 0), 0, 'falls through to the parent')
  t.equal(d.match('a.mail.example.com', () => false), -1)
})

t.test('regex rules run last and only on the whole name', async t => {
  const d = new DomainIndex()
  d.addRegex(/^tracker[0-9]+\./, 5)
  t.equal(d.match('tracker12.example.net', all), 5)
  t.equal(d.match('x.tracker12.example.net', all), -1)
  t.equal(d.match('tracker12.example.net', id => id !== 5), -1)
})

t.test('a big sealed list: every name found through the hash table, 32-bit hash collisions through the map', async t => {
  // 300,000 names make a few pairs with equal 32-bit hashes all but certain (about n^2 / 2^33 = 10).
  const d = new DomainIndex()
  const n = 300_000
  for (let i = 0; i < n; i++) d.add('suffix', `n${i}.list.example`, i)
  d.seal()
  t.ok(d.hashCollisions > 0, `${d.hashCollisions} slots hold two names`)
  let wrong = 0
  for (let i = 0; i < n; i++) {
    if (d.match(`n${i}.list.example`, all) !== i) wrong++
    if (d.match(`sub.n${i}.list.example`, all) !== i) wrong++
    if (d.match(`m${i}.list.example`, all) !== -1) wrong++ // unlisted, same shape
  }
  t.equal(wrong, 0, 'every listed name and its subdomains match their own rule, and nothing else matches')
  t.equal(d.size, n, 'the size counts every name, though the sealed map keeps only the shared-hash ones')
  t.throws(() => { d.add('suffix', 'late.example', n) }, /after seal/, 'a sealed table takes no more suffix rules')
  d.seal()
  t.equal(d.match('n12345.list.example', all), 12345, 'sealing twice changes nothing')
})
