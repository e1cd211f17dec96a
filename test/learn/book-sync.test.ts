// What the learned book gives its sink over time (src/learn/book.ts): the kernel's element (its
// timeout from the last add) must not run out while the book has the address active, whatever
// the re-learning rhythm; timeouts beyond the firewall's longest (30 days) are capped and given
// again before they run out. The sink here plays the kernel: it keeps each element's absolute
// run-out time from the clock at each add.

import t, { type Test } from 'tap'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard } from '../../src/learn/guard.js'
import { LearnedStore } from '../../src/learn/store.js'
import type { LearningConfig } from '../../src/config/types.js'
import type { Family, LearnedSink } from '../../src/learn/types.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import { learningConfig, policyFile, quiet } from './fixtures.js'

const T0 = Date.UTC(2030, 3, 4, 5, 6, 7)
const DAY = 86_400_000

/** The kernel's view: element -> when it runs out (ms), from the timeout of its last add. */
class KernelSink implements LearnedSink {
  readonly runsOut = new Map<string, number>()
  adds = 0
  maxTimeout = 0
  constructor (readonly clock: { now: number }) {}
  add (category: string, address: string, _family: Family, timeoutSeconds: number): void {
    this.adds++
    this.maxTimeout = Math.max(this.maxTimeout, timeoutSeconds)
    this.runsOut.set(`${category} ${address}`, this.clock.now + timeoutSeconds * 1000)
  }

  remove (category: string, address: string): void { this.runsOut.delete(`${category} ${address}`) }
  live (category: string, address: string): boolean { return (this.runsOut.get(`${category} ${address}`) ?? 0) > this.clock.now }
}

function world (t: Test, learning: Partial<LearningConfig>): { book: LearnedBook, sink: KernelSink, clock: { now: number } } {
  const cfg = learningConfig(learning)
  const clock = { now: T0 }
  const now = (): number => clock.now
  const db = policyFile().open()
  const log = quiet()
  const store = new LearnedStore({ db, log, now, guardWindowMs: cfg.guardWindowSeconds * 1000 })
  const guard = new CollateralGuard({ learning: cfg, lanCidrs: [], upstreamHosts: [], store, log, now, interfaces: () => ({}) })
  const sink = new KernelSink(clock)
  const book = new LearnedBook({ learning: cfg, guard, store, sink, log, now })
  book.start()
  t.teardown(() => { book.close(); db.close() })
  return { book, sink, clock }
}

// The reviewer's case: two names on one address, TTL 60 (x 1 = 60 s), learned every 30 s for 8 h.
// Before the fix the book re-sent only when its own expiry moved 60 s past its previous book
// expiry, which a 30 s rhythm never does: one add, and the kernel element ran out after 60 s.
t.test('re-learned every 30 s with a 60 s lifetime: the kernel element never runs out while active', async t => {
  const w = world(t, { ttlMultiple: 1, minExpirySeconds: 10 })
  const a = ipv4Number('31.13.80.53')
  let gaps = 0
  for (let i = 0; i < (8 * 3600) / 30; i++) {
    w.book.learn('whatsapp', i % 2 === 0 ? 'g.whatsapp.net' : 'mmg.whatsapp.net', [a], [], 60, 'query')
    w.clock.now += 30_000
    w.book.sweep(w.clock.now)
    if (w.book.lookup('31.13.80.53') !== undefined && !w.sink.live('whatsapp', '31.13.80.53')) gaps++
  }
  t.equal(gaps, 0, 'no moment where the book says active and the kernel element has run out')
  t.ok(w.sink.adds > 1, `re-sent (${w.sink.adds} adds)`)
  t.ok(w.sink.adds <= (8 * 3600) / 30, 'at most one add per learning')
})

t.test('a short lifetime (10 s) re-learned every 4 s stays live; a fast rhythm on a long lifetime re-sends about once a minute', async t => {
  const short = world(t, { ttlMultiple: 1, minExpirySeconds: 10 })
  let gaps = 0
  for (let i = 0; i < 300; i++) {
    short.book.learn('discord', 'gateway.discord.gg', [ipv4Number('162.159.135.232')], [], 10, 'query')
    short.clock.now += 4000
    short.book.sweep(short.clock.now)
    if (!short.sink.live('discord', '162.159.135.232')) gaps++
  }
  t.equal(gaps, 0)

  const long = world(t, { ttlMultiple: 4, minExpirySeconds: 3600 })
  for (let i = 0; i < 600; i++) { // 10 minutes, every second
    long.book.learn('discord', 'discord.com', [ipv4Number('162.159.138.232')], [], 300, 'query')
    long.clock.now += 1000
    long.book.sweep(long.clock.now)
  }
  t.ok(long.sink.adds >= 9 && long.sink.adds <= 12, `about one add a minute (${long.sink.adds} in 10 min)`)
  t.ok(long.sink.live('discord', '162.159.138.232'))
})

t.test('an expiry beyond 30 days is given as 30 days and given again before that runs out', async t => {
  const w = world(t, { ttlMultiple: 1, minExpirySeconds: 10, maxExpirySeconds: 90 * 86_400 })
  w.book.learn('telegram', 't.me', [ipv4Number('149.154.167.99')], [], 90 * 86_400, 'probe')
  t.equal(w.sink.maxTimeout, 30 * 86_400, 'the sink is given the firewall\'s longest timeout, not 90 days')
  let gaps = 0
  for (let h = 0; h < 89 * 24; h++) {
    w.clock.now += 3_600_000
    // The timer's sweep runs at least once a minute; an hourly step with a sweep just before the
    // element would run out stands for that.
    w.book.sweep(w.clock.now - 60_000)
    w.book.sweep(w.clock.now)
    if (!w.sink.live('telegram', '149.154.167.99')) gaps++
  }
  t.equal(gaps, 0, 'live for the whole 89 days')
  t.ok(w.sink.adds >= 3 && w.sink.adds <= 4, `given again about every 30 days (${w.sink.adds} adds)`)
  w.clock.now = T0 + 90 * DAY + 1000
  w.book.sweep(w.clock.now)
  t.equal(w.book.lookup('149.154.167.99'), undefined, 'expired in the book at 90 days')
  t.notOk(w.sink.runsOut.has('telegram 149.154.167.99'), 'and removed from the sink')
})
