// LearnedStore's bounds (src/learn/store.ts) on a real policy.sqlite: one allowed_addresses row per
// address whatever the flood of names, rows capped at maxAllowedAddresses; what is queued stays
// bounded while flushes fail (learned rows kept over observations, drops counted, no RangeError);
// a flush never waits for a write lock another connection holds and keeps the connection's
// busy_timeout for the file's other writers; one transaction writes a bounded number of rows; a
// row held back as shared-host is written; a file of migration 2 is folded by migration 3.

import t from 'tap'
import Database from 'better-sqlite3'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard, MAX_SHARED_NAMES } from '../../src/learn/guard.js'
import { LearnedStore, readLearned, type StoredLearned } from '../../src/learn/store.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import { openDatabase } from '../../src/store/db.js'
import { POLICY_MIGRATIONS } from '../../src/store/migrations.js'
import { learningConfig, policyFile, quiet, RecordingSink } from './fixtures.js'

const T0 = Date.UTC(2030, 6, 7)
const row = (i: number, o: Partial<StoredLearned> = {}): StoredLearned => ({
  category: 'snapchat', address: `35.190.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`, family: 4, name: `n${i}.sc-cdn.net`, via: 'query',
  firstSeen: T0, lastSeen: T0, expiresAt: T0 + 3_600_000, held: null, sharedWith: [], range: null, ...o
})
const answer = (a4: string[]): { v4: number[], v4Count: number, v6: string[], v6Count: number } =>
  ({ v4: a4.map(ipv4Number), v4Count: a4.length, v6: [], v6Count: 0 })
const count = (path: string, sql: string): number => {
  const db = new Database(path, { fileMustExist: true }) // a second connection: reads what the store flushed
  try { return (db.prepare(sql).get() as { n: number }).n } finally { db.close() }
}

t.test('a flood of 100 000 allowed names on one address is one row with the 8 most recent names', async t => {
  const file = policyFile()
  const db = file.open()
  const clock = { now: T0 }
  const learning = learningConfig({ guardWindowSeconds: 3600 })
  const store = new LearnedStore({ db, log: quiet(), now: () => clock.now, guardWindowMs: 3_600_000 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [], store, log: quiet(), now: () => clock.now, interfaces: () => ({}) })
  t.teardown(() => { store.close(); db.close() })
  const a = answer(['104.16.1.1'])
  for (let i = 0; i < 100_000; i++) {
    guard.observeAllowed(`r${i}.wild.example.com`, a, clock.now)
    if (i % 20_000 === 19_999) t.ok(store.flush(), 'flushed')
  }
  t.ok(store.flush())
  t.equal(count(file.path, 'SELECT count(*) AS n FROM allowed_addresses'), 1, 'one row for the address')
  const loaded = store.loadAllowed(T0)
  t.equal(loaded.length, 1)
  t.equal(loaded[0].names.length, MAX_SHARED_NAMES)
  t.same(loaded[0].names.slice(-2), ['r99998.wild.example.com', 'r99999.wild.example.com'], 'oldest first, the most recent last')
})

t.test('allowed_addresses is capped at maxAllowedAddresses on load (a lowered bound trims the file)', async t => {
  const file = policyFile()
  const clock = { now: T0 }
  const db = file.open()
  const a = new LearnedStore({ db, log: quiet(), now: () => clock.now, guardWindowMs: 3_600_000, maxAllowedAddresses: 3000 })
  for (let i = 0; i < 2000; i++) a.putAllowed(4, ipv4Number(`60.1.${Math.floor(i / 250)}.${(i % 250) + 1}`) | 0, ['x.example'], T0 + i)
  a.close()
  t.equal(count(file.path, 'SELECT count(*) AS n FROM allowed_addresses'), 2000)
  const b = new LearnedStore({ db, log: quiet(), now: () => clock.now, guardWindowMs: 3_600_000, maxAllowedAddresses: 1000 })
  const learning = learningConfig({ maxAllowedAddresses: 1000, guardWindowSeconds: 3600 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [], store: b, log: quiet(), now: () => clock.now, interfaces: () => ({}) })
  t.teardown(() => { b.close(); db.close() })
  t.equal(b.loadAllowed(T0, 1000).length, 1000, 'at most the bound is loaded')
  t.equal(count(file.path, 'SELECT count(*) AS n FROM allowed_addresses'), 1000, 'and the file is trimmed to it')
  t.equal(count(file.path, 'SELECT min(last_seen) - ' + T0 + ' AS n FROM allowed_addresses'), 1000, 'the most recent kept')
  guard.load()
  t.equal(guard.stats.allowedAddresses, 1000)
  t.equal(guard.stats.evicted, 0, 'nothing loaded only to be evicted')
})

t.test('while flushes fail, what is queued stays bounded; learned rows are kept over observations; no RangeError', async t => {
  const file = policyFile()
  const db = file.open()
  const store = new LearnedStore({ db, log: quiet(), now: () => T0, guardWindowMs: 3_600_000, flushMs: 60_000, maxPending: 1000 })
  t.teardown(() => { store.close(); db.close() })
  const other = new Database(file.path)
  other.exec('BEGIN IMMEDIATE')
  for (let i = 0; i < 900; i++) store.putAllowed(4, i, ['seen.example'], T0)
  for (let i = 0; i < 300; i++) store.putLearned(row(i))
  t.match(store.stats, { pending: 1000, droppedAllowed: 200, droppedLearned: 0 }, 'observations made room for the learned rows')
  for (let i = 0; i < 200_000; i++) store.deleteAllowed(4, 100_000 + i)
  t.match(store.stats, { pending: 1000 }, 'removals beyond the bound dropped')
  t.equal(store.stats.droppedAllowed, 200 + 200_000 - (1000 - 300 - 700), 'and counted')
  t.doesNotThrow(() => t.equal(store.flush(), false), 'a failing flush with a large queue neither throws nor spreads arrays')
  for (let i = 300; i < 1500; i++) store.putLearned(row(i))
  // 700 observations make room first, then the 500 oldest learned changes go.
  t.match(store.stats, { pending: 1000, droppedAllowed: 200_200 + 700, droppedLearned: 500 }, 'with only learned rows left, the oldest learned change goes')
  other.exec('COMMIT')
  other.close()
  let rounds = 0
  while (store.stats.pending > 0 && rounds++ < 10) t.ok(store.flush())
  const written = readLearned(file.path, T0).active.map(r => r.name)
  t.equal(written.length, 1000, 'the 1000 learned rows still queued were written')
  t.ok(written.includes('n1499.sc-cdn.net') && !written.includes('n499.sc-cdn.net'), 'the newest')
})

t.test('a flush does not wait for a lock another connection holds, and keeps the connection\'s busy_timeout', async t => {
  const file = policyFile()
  const db = file.open()
  const before = db.pragma('busy_timeout', { simple: true })
  t.equal(before, 2000, 'the policy file waits 2 s for its other writers')
  const store = new LearnedStore({ db, log: quiet(), now: () => T0, guardWindowMs: 3_600_000, flushMs: 60_000 })
  t.teardown(() => { store.close(); db.close() })
  const other = new Database(file.path)
  other.exec('BEGIN IMMEDIATE')
  store.putLearned(row(1))
  const start = process.hrtime.bigint()
  t.equal(store.flush(), false)
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  t.ok(ms < 200, `failed at once (${ms.toFixed(1)} ms), not after the busy timeout`)
  t.equal(store.stats.failures, 1)
  t.equal(db.pragma('busy_timeout', { simple: true }), 2000, 'restored for custom rules and the other writers')
  other.exec('COMMIT')
  other.close()
  t.ok(store.flush(), 'the retry writes it')
  t.equal(readLearned(file.path, T0).active.length, 1)
})

t.test('one transaction writes at most maxRowsPerFlush rows (learned first); the rest go at the next flushes', async t => {
  const file = policyFile()
  const db = file.open()
  const store = new LearnedStore({ db, log: quiet(), now: () => T0, guardWindowMs: 3_600_000, flushMs: 60_000 })
  t.teardown(() => { store.close(); db.close() })
  for (let i = 0; i < 12_000; i++) store.putLearned(row(i, { address: `35.${Math.floor(i / 250)}.${i % 250}.1` }))
  for (let i = 0; i < 100; i++) store.putAllowed(4, ipv4Number(`8.8.${i}.8`) | 0, ['dns.google'], T0)
  t.ok(store.flush())
  t.equal(readLearned(file.path, T0).active.length, 5000, 'default bound 5000')
  t.equal(store.stats.pending, 7100)
  t.ok(store.flush())
  t.ok(store.flush())
  t.equal(readLearned(file.path, T0).active.length, 12_000)
  t.equal(store.stats.pending, 0, 'the observations followed in the last one')
  t.equal(count(file.path, 'SELECT count(*) AS n FROM allowed_addresses'), 100)
})

t.test('an address held back as shared-host is written to the file (and read back)', async t => {
  const file = policyFile()
  const db = file.open()
  const learning = learningConfig({ minExpirySeconds: 60 })
  const store = new LearnedStore({ db, log: quiet(), now: () => T0, guardWindowMs: 3_600_000 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [], store, log: quiet(), now: () => T0, interfaces: () => ({}) })
  const book = new LearnedBook({ learning, guard, store, sink: new RecordingSink(), log: quiet(), now: () => T0 })
  book.start()
  t.teardown(() => { book.close(); db.close() })
  t.same(book.learn('viber', 'media.viber.com', [ipv4Number('23.45.1.2')], [], 300, 'query', ['media.viber.com.edgekey.net']), { active: 0, held: 1 })
  t.ok(store.flush(), 'the write succeeds')
  t.match(readLearned(file.path, T0).held, [{ address: '23.45.1.2', reason: 'shared-host', sharedWith: ['media.viber.com.edgekey.net'] }])
})

t.test('migration 3 folds a migration-2 file: one row per address with its 8 most recent names; learned rows kept', async t => {
  const file = policyFile()
  const old = openDatabase(file.path, { migrations: POLICY_MIGRATIONS.filter(m => m.version <= 2) })
  const ins = old.prepare('INSERT INTO allowed_addresses (address, name, last_seen) VALUES (?, ?, ?)')
  for (let i = 0; i < 20; i++) ins.run('157.240.1.35', `n${i}.example`, T0 + i)
  ins.run('52.1.1.1', 'aws.example', T0)
  old.prepare(`INSERT INTO learned (category, address, family, name, via, first_seen, last_seen, expires_at, held, shared_with, range)
    VALUES ('whatsapp', '31.13.64.51', 4, 'g.whatsapp.net', 'query', ?, ?, ?, NULL, '[]', NULL)`).run(T0, T0, T0 + 3_600_000)
  old.close()
  const db = file.open()
  const store = new LearnedStore({ db, log: quiet(), now: () => T0, guardWindowMs: 3_600_000 })
  t.teardown(() => { store.close(); db.close() })
  const rows = store.loadAllowed(T0)
  t.same(rows.map(r => [r.address, r.names.length, r.lastSeen]), [['52.1.1.1', 1, T0], ['157.240.1.35', 8, T0 + 19]])
  t.same(rows[1].names, ['n12.example', 'n13.example', 'n14.example', 'n15.example', 'n16.example', 'n17.example', 'n18.example', 'n19.example'])
  t.same(store.loadLearned(T0).map(r => [r.category, r.address]), [['whatsapp', '31.13.64.51']])
})
