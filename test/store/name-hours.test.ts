// Domain searches read only the hours their names were seen in (name_hours, migration 3) instead
// of an index entry per event: a rare name among many others is found exactly, in order, across
// hours far apart, page by page; an unseen name answers nothing; a store written before migration
// 3 gets its name_hours backfilled.

import t from 'tap'
import Database from 'better-sqlite3'
import { DAY_MS, HOUR_MS, EventWriter, runRetention } from '../../src/store/block-writer.js'
import { searchBlocks, hourRanges } from '../../src/store/block-search.js'
import { parseFilter } from '../../src/store/block-filter.js'
import { migrate, openDatabase } from '../../src/store/db.js'
import { MIGRATIONS } from '../../src/store/migrations.js'
import { event, tempDbPath } from './helpers.js'

const T0 = Date.UTC(2030, 0, 10)
const NOW = T0 + 40 * HOUR_MS
// A busy name every minute for 30 hours, the rare one in hours 2, 7 (twice) and 25.
const busy = Array.from({ length: 30 * 60 }, (_, i) => event({ ts: T0 + i * 60_000, qname: 'busy.example', value: 'busy.example' }))
const rareAt = [T0 + 2 * HOUR_MS + 5, T0 + 7 * HOUR_MS + 10, T0 + 7 * HOUR_MS + 20, T0 + 25 * HOUR_MS + 30]
const rare = rareAt.map(ts => event({ ts, qname: 'www.rare.example', value: 'www.rare.example', client: '10.9.9.9' }))

t.test('a rare name is found exactly, newest first, one row per page across far-apart hours', async t => {
  const db = openDatabase(tempDbPath())
  t.teardown(() => db.close())
  new EventWriter(db).write([...busy, ...rare].sort((a, b) => a.ts - b.ts))
  const f = parseFilter({ domain: 'rare.example', suffix: 'true', from: new Date(T0).toISOString() }, NOW)
  const seen: number[] = []
  let cursor: string | undefined
  for (let i = 0; i < 10; i++) {
    const p = searchBlocks(db, f, { limit: 1, cursor })
    seen.push(...p.rows.map(r => r.ts))
    cursor = p.next
    if (cursor === undefined) break
  }
  t.same(seen, [...rareAt].reverse(), 'every row, newest first, nothing else')
  const exact = searchBlocks(db, parseFilter({ domain: 'www.rare.example', from: new Date(T0 + 3 * HOUR_MS).toISOString(), to: new Date(T0 + 8 * HOUR_MS).toISOString() }, NOW), { limit: 100 })
  t.same(exact.rows.map(r => r.ts), [rareAt[2], rareAt[1]], 'from/to clip the hours')
  t.same(searchBlocks(db, parseFilter({ domain: 'never.example' }, NOW), { limit: 100 }).rows, [], 'unseen name: nothing')
  t.equal(searchBlocks(db, parseFilter({ domain: 'busy.example', from: new Date(T0).toISOString() }, NOW), { limit: 10_000 }).rows.length, busy.length)
})

t.test('hour ranges merge consecutive hours and close the smallest gaps past the cap', async t => {
  t.same(hourRanges([10, 11, 12, 20]), [[10 * HOUR_MS, 13 * HOUR_MS], [20 * HOUR_MS, 21 * HOUR_MS]])
  const many = Array.from({ length: 1000 }, (_, i) => i * 3)
  const r = hourRanges(many)
  t.ok(r.length <= 200, `${r.length} ranges`)
  t.ok(many.every(h => r.some(([a, b]) => h * HOUR_MS >= a && h * HOUR_MS < b)), 'every hour still covered')
})

t.test('a store from before migration 3 gets name_hours backfilled and loses the qname index', async t => {
  const path = tempDbPath()
  const old = new Database(path)
  migrate(old, MIGRATIONS.filter(m => m.version < 3))
  const interned = old.prepare("INSERT INTO names (name, rname) VALUES ('www.rare.example', 'example.rare.www.')").run().lastInsertRowid
  const s = (v: string) => old.prepare('INSERT INTO strings (value) VALUES (?)').run(v).lastInsertRowid
  const c = old.prepare("INSERT INTO clients (addr) VALUES ('10.9.9.9')").run().lastInsertRowid
  const [g, cat, act] = [s('default'), s('telegram'), s('nxdomain')]
  for (const ts of rareAt) {
    old.prepare('INSERT INTO events (ts, client, grp, qname, qtype, matched, category, action) VALUES (?, ?, ?, ?, 1, 1, ?, ?)').run(ts, c, g, interned, cat, act)
  }
  old.close()
  const db = openDatabase(path)
  t.teardown(() => db.close())
  t.same(db.prepare('SELECT hour FROM name_hours ORDER BY hour').pluck().all(), [...new Set(rareAt.map(ts => Math.floor(ts / HOUR_MS)))])
  t.equal(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'events_qname_ts'").pluck().get(), 0)
  t.same(searchBlocks(db, parseFilter({ domain: 'www.rare.example', from: new Date(T0).toISOString() }, NOW), { limit: 10 }).rows.map(r => r.ts), [...rareAt].reverse())
})

t.test('a store from before migration 4 gets an hour for every name of its daily roll-up, so retention keeps the name', async t => {
  const path = tempDbPath()
  const old = new Database(path)
  migrate(old, MIGRATIONS.filter(m => m.version < 4))
  // A roll-up whose events are gone (deleted for rows before migration 3 wrote name hours).
  const day = Math.floor(NOW / DAY_MS) - 3
  const id = old.prepare("INSERT INTO names (name, rname) VALUES ('only.in.rollup', 'rollup.in.only.')").run().lastInsertRowid
  old.prepare('INSERT INTO day_qname (day, category, qname, n) VALUES (?, 1, ?, 7)').run(day, id)
  // And a name seen only on an earlier day: cutting its hour sets retention sweeping the names.
  const gone = old.prepare("INSERT INTO names (name, rname) VALUES ('seen.before', 'before.seen.')").run().lastInsertRowid
  old.prepare('INSERT INTO name_hours (qname, hour) VALUES (?, ?)').run(gone, (day - 2) * 24)
  old.close()
  const db = openDatabase(path)
  t.teardown(() => db.close())
  t.same(db.prepare('SELECT hour FROM name_hours WHERE qname = ?').pluck().all(id), [day * 24])
  const r = await runRetention(db, { days: 1, maxRows: 0, maxBytes: 0 }, (day + 1) * DAY_MS + HOUR_MS, async () => {})
  t.equal(r.names, 1, 'the sweep ran and deleted the name seen before, only')
  t.same(db.prepare('SELECT name FROM names').pluck().all(), ['only.in.rollup'], 'the roll-up\'s name stays with its roll-up')
})
