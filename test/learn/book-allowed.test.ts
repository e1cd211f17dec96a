// LearnedBook.allowedAnswer details (src/learn/book.ts, src/learn/guard.ts): an allowed answer's
// IPv4-mapped AAAA (::ffff:a.b.c.d, in the DNS path's wire form) protects a learned a.b.c.d, and
// each removal from a set is logged with the client whose lookup caused it.

import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard, v4MappedValue } from '../../src/learn/guard.js'
import { LearnedStore } from '../../src/learn/store.js'
import { createLogger } from '../../src/log.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import { learningConfig, policyFile, quiet, RecordingSink } from './fixtures.js'

const T0 = Date.UTC(2030, 11, 12)

function world (t: Test, lines: string[] = []): { book: LearnedBook, guard: CollateralGuard, sink: RecordingSink } {
  const db = policyFile().open()
  const now = (): number => T0
  const learning = learningConfig({ minExpirySeconds: 600 })
  const log = createLogger('info', new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } }))
  const store = new LearnedStore({ db, log: quiet(), now, guardWindowMs: 3_600_000 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [], store, log: quiet(), now, interfaces: () => ({}) })
  const sink = new RecordingSink()
  const book = new LearnedBook({ learning, guard, store, sink, log, now })
  book.start()
  t.teardown(() => { book.close(); db.close() })
  return { book, guard, sink }
}

t.test('v4MappedValue reads the wire form only, without allocating', async t => {
  const cases: Array<[string, number]> = [
    ['0:0:0:0:0:ffff:959a:a763', ipv4Number('149.154.167.99')],
    ['0:0:0:0:0:ffff:0:1', 1],
    ['0:0:0:0:0:ffff:ffff:ffff', 0xffffffff],
    ['0:0:0:0:0:fffe:959a:a763', -1],
    ['2a03:2880:f20d:c4:face:b00c:0:167', -1],
    ['0:0:0:0:0:ffff:959a', -1],
    ['0:0:0:0:0:ffff:959a:a763:1', -1],
    ['0:0:0:0:0:ffff:12345:1', -1],
    ['0:0:0:0:0:ffff::1', -1]
  ]
  for (const [w, v] of cases) t.equal(v4MappedValue(w), v, w)
})

t.test('an allowed answer\'s ::ffff:a.b.c.d protects a learned a.b.c.d (guard and book)', async t => {
  const w = world(t)
  t.same(w.book.learn('telegram', 't.me', [ipv4Number('149.154.167.99')], [], 300, 'probe'), { active: 1, held: 0 })
  w.book.allowedAnswer('mapped.example.com', { v4: [], v4Count: 0, v6: ['0:0:0:0:0:ffff:959a:a763'], v6Count: 1 })
  t.notOk(w.sink.has('telegram', '149.154.167.99'), 'taken out of the set')
  t.match(w.book.held(), [{ address: '149.154.167.99', reason: 'allowed-name', sharedWith: ['mapped.example.com'] }])
  t.same(w.guard.check('149.154.167.99'), { reason: 'allowed-name', sharedWith: ['mapped.example.com'] })
  // Observed first, learned after: held.
  w.book.allowedAnswer('other.example.com', { v4: [], v4Count: 0, v6: ['0:0:0:0:0:ffff:959a:a764'], v6Count: 1 })
  t.same(w.book.learn('telegram', 't.me', [ipv4Number('149.154.167.100')], [], 300, 'probe'), { active: 0, held: 1 })
})

t.test('a removal by an allowed answer is logged with the client whose lookup it was', async t => {
  const lines: string[] = []
  const w = world(t, lines)
  w.book.learn('whatsapp', 'g.whatsapp.net', [ipv4Number('157.240.9.53')], [], 300, 'query')
  w.book.allowedAnswer('www.facebook.com', { v4: [ipv4Number('157.240.9.53')], v4Count: 1, v6: [], v6Count: 0 }, '10.1.2.3')
  const line = lines.map(l => JSON.parse(l) as Record<string, unknown>).find(l => String(l.msg).startsWith('learned address taken out'))
  t.match(line, { category: 'whatsapp', address: '157.240.9.53', name: 'g.whatsapp.net', allowedName: 'www.facebook.com', client: '10.1.2.3' })
})
