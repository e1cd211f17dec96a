// LearnedStore (src/learn/store.ts) on a real policy.sqlite: a write that fails because another
// connection holds the file's write lock is counted and retried, nothing lost; the read-only
// readers for the CLI filter by category and leave out expired rows.

import t from 'tap'
import Database from 'better-sqlite3'
import { LearnedStore, readLearned, readLearnedElements, type StoredLearned } from '../../src/learn/store.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import { policyFile, quiet } from './fixtures.js'

const T0 = Date.UTC(2030, 2, 3)
const row = (o: Partial<StoredLearned>): StoredLearned => ({
  category: 'telegram', address: '149.154.167.50', family: 4, name: 'web.telegram.org', via: 'query',
  firstSeen: T0, lastSeen: T0, expiresAt: T0 + 3_600_000, held: null, sharedWith: [], range: null, ...o
})

t.test('a flush that finds the file locked is counted and retried; nothing is lost', async t => {
  const file = policyFile()
  const db = file.open()
  db.pragma('busy_timeout = 0')
  const store = new LearnedStore({ db, log: quiet(), now: () => T0, guardWindowMs: 3_600_000, flushMs: 50 })
  t.teardown(() => { store.close(); db.close() })
  const other = new Database(file.path)
  other.exec('BEGIN IMMEDIATE') // holds the write lock, as another writer would
  store.putLearned(row({}))
  store.putAllowed(4, ipv4Number('192.168.1.1') | 0 /* as the guard keys it */, ['router.lan'], T0)
  t.equal(store.flush(), false)
  t.match(store.stats, { failures: 1, pending: 2 })
  t.match(store.stats.lastError, /locked|busy/i)
  other.exec('COMMIT')
  other.close()
  // The retry is armed by the failure itself.
  const start = Date.now()
  while (store.stats.pending > 0 && Date.now() - start < 2000) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(store.stats.pending, 0)
  t.same(readLearned(file.path, T0).active.map(r => r.address), ['149.154.167.50'])
  t.same(store.loadAllowed(T0), [{ address: '192.168.1.1', family: 4, names: ['router.lan'], lastSeen: T0 }])
})

t.test('readers: by category, held apart, expired rows left out; held rows are not elements', async t => {
  const file = policyFile()
  const db = file.open()
  const store = new LearnedStore({ db, log: quiet(), now: () => T0, guardWindowMs: 3_600_000 })
  t.teardown(() => { store.close(); db.close() })
  store.putLearned(row({}))
  store.putLearned(row({ address: '2001:67c:4e8:f004::9', family: 6 }))
  store.putLearned(row({ category: 'discord', address: '162.159.130.234', name: 'discord.com' }))
  store.putLearned(row({ category: 'discord', address: '157.240.1.1', name: 'discord.com', held: 'allowed-name', sharedWith: ['facebook.com'] }))
  store.putLearned(row({ category: 'discord', address: '162.159.130.235', expiresAt: T0 - 1 }))
  store.deleteLearned('telegram', 'nothing-there')
  t.ok(store.flush())
  const tg = readLearned(file.path, T0, 'telegram')
  t.same(tg.active.map(r => [r.address, r.family]), [['149.154.167.50', 4], ['2001:67c:4e8:f004::9', 6]])
  t.same(tg.held, [])
  const dc = readLearned(file.path, T0, 'discord')
  t.same(dc.active.map(r => r.address), ['162.159.130.234'], 'the expired row is left out')
  t.match(dc.held, [{ address: '157.240.1.1', reason: 'allowed-name', sharedWith: ['facebook.com'] }])
  const el = readLearnedElements(file.path, T0)
  t.same([...el.keys()].sort(), ['discord', 'telegram'])
  t.same(el.get('discord'), { v4: [{ address: '162.159.130.234', timeoutSeconds: 3600 }], v6: [] })
  t.same(el.get('telegram')?.v6, [{ address: '2001:67c:4e8:f004::9', timeoutSeconds: 3600 }])
  t.equal(store.loadLearned(T0).length, 4, 'loading deletes the expired row')
})
