// The learned book and the categories the firewall carries (src/learn/book.ts retainCategories):
// learn() for any other category does nothing (counted), also for a resolution that finishes after
// its category was dropped; dropped rows leave memory and the file without removals to the sink
// (their nft sets are gone: a removal would fail the element batch); called before start, the
// load skips them.

import t from 'tap'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard } from '../../src/learn/guard.js'
import { LearnedStore, readLearned } from '../../src/learn/store.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import type { Db } from '../../src/store/db.js'
import { learningConfig, policyFile, quiet, RecordingSink } from './fixtures.js'

const T0 = Date.UTC(2030, 8, 9)
const v4 = ipv4Number

function bookOn (db: Db, sink: RecordingSink): { book: LearnedBook, store: LearnedStore } {
  const learning = learningConfig({ minExpirySeconds: 600 })
  const now = (): number => T0
  const store = new LearnedStore({ db, log: quiet(), now, guardWindowMs: 3_600_000 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [], store, log: quiet(), now, interfaces: () => ({}) })
  return { book: new LearnedBook({ learning, guard, store, sink, log: quiet(), now }), store }
}

t.test('after retainCategories, learn() of another category is ignored and dropped rows send no removals', async t => {
  const file = policyFile()
  const db = file.open()
  const sink = new RecordingSink()
  const { book, store } = bookOn(db, sink)
  t.teardown(() => { book.close(); db.close() })
  book.start()
  book.retainCategories(new Set(['telegram', 'whatsapp']))
  t.same(book.learn('telegram', 't.me', [v4('149.154.167.99')], [], 300, 'probe'), { active: 1, held: 0 })
  t.same(book.learn('whatsapp', 'g.whatsapp.net', [v4('31.13.64.51')], [], 300, 'query'), { active: 1, held: 0 })
  t.same(book.learn('gmail', 'mail.google.com', [v4('142.250.1.17')], [], 300, 'query'), { active: 0, held: 0 }, 'never carried: ignored')
  t.equal(book.stats.ignored, 1)
  t.notOk(sink.calls.some(c => c.category === 'gmail'), 'the sink never hears of it')

  // A reload drops whatsapp; a resolution of it that was in flight finishes afterwards.
  const callsBefore = sink.calls.length
  book.retainCategories(new Set(['telegram']))
  t.equal(sink.calls.length, callsBefore, 'no removal for a set the table no longer has')
  t.same(book.list().map(r => r.category), ['telegram'])
  t.same(book.learn('whatsapp', 'mmg.whatsapp.net', [v4('31.13.64.52')], [], 300, 'query'), { active: 0, held: 0 }, 'the late resolution does not bring it back')
  t.equal(book.stats.ignored, 2)
  t.equal(sink.calls.length, callsBefore)
  t.same(book.elements().get('whatsapp'), undefined, 'a full sync writes no whatsapp elements')
  store.flush()
  t.same(readLearned(file.path, T0).active.map(r => r.category), ['telegram'], 'gone from the file too')
})

t.test('retainCategories before start: stored rows of other categories are neither loaded nor sent to the sink', async t => {
  const file = policyFile()
  const db = file.open()
  const first = bookOn(db, new RecordingSink())
  first.book.start()
  first.book.learn('discord', 'discord.com', [v4('162.159.138.232')], [], 300, 'query')
  first.book.learn('telegram', 't.me', [v4('149.154.167.99')], [], 300, 'probe')
  first.book.close()

  const sink = new RecordingSink()
  const { book, store } = bookOn(db, sink)
  t.teardown(() => { book.close(); db.close() })
  book.retainCategories(new Set(['telegram']))
  book.start()
  t.same(sink.calls.map(c => [c.op, c.category]), [['add', 'telegram']])
  t.same(book.list().map(r => r.category), ['telegram'])
  store.flush()
  t.same(readLearned(file.path, T0).active.map(r => r.category), ['telegram'], 'the stale row is deleted')
})
