// Firewall events in the block log, on real SQLite files: a store of the previous schema keeps its
// rows and gains the port/proto/attempts columns; firewall events built from a FirewallHit go
// through the real writer thread (structured clone, column batches) and read back with port,
// proto, attempts and the nft set; CSV carries the columns; matched=firewall filters (SQL and live
// tail alike) and a bogus matched is a QueryError listing the valid values; roll-ups count events.

import t from 'tap'
import type { FirewallHit } from '../../src/learn/types.js'
import { BlockLog } from '../../src/store/block-log.js'
import { EventWriter } from '../../src/store/block-writer.js'
import { eventMatches, parseFilter } from '../../src/store/block-filter.js'
import { blockStats, searchBlocks } from '../../src/store/block-search.js'
import { CSV_HEADER, csvLine } from '../../src/store/csv.js'
import { openDatabase, schemaVersion } from '../../src/store/db.js'
import { firewallEvent, firewallLogFields } from '../../src/store/firewall-event.js'
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js'
import { event, freshDb, memoryLog, tempDbPath } from './helpers.js'

const T0 = Date.UTC(2030, 0, 1)
const NOW = T0 + 86_400_000

const hit = (p: Partial<FirewallHit> = {}): FirewallHit => ({
  ts: T0 + 1000, client: '10.0.0.7', destination: '157.240.1.1', family: 4, proto: 'tcp', port: 443, attempts: 5, ...p
})

t.test('firewallEvent: the event for a hit', async t => {
  const e = firewallEvent(hit(), { category: 'whatsapp', set: 'learned_whatsapp_v4', name: 'G.WhatsApp.NET.', group: 'staff' })
  t.same(e, {
    ts: T0 + 1000, client: '10.0.0.7', group: 'staff', qname: 'g.whatsapp.net', qtype: 0, matched: 'firewall', value: '157.240.1.1',
    category: 'whatsapp', action: 'block', list: 'learned_whatsapp_v4', port: 443, proto: 'tcp', attempts: 5
  })
  const bare = firewallEvent(hit({ destination: '2001:db8::1', family: 6, proto: 'icmpv6', port: 0, attempts: 0 }), { category: 'telegram', set: 'telegram_v6', group: 'default' })
  t.equal(bare.qname, '2001:db8::1', 'no learned name: the destination stands as qname')
  t.equal(bare.attempts, 1, 'at least one attempt')
  t.equal(bare.port, 0)
  t.match(firewallLogFields(e), { matched: 'firewall', category: 'whatsapp', client: '10.0.0.7', value: '157.240.1.1', port: 443, proto: 'tcp', attempts: 5 })
  t.same(structuredClone(e), e, 'plain data')
})

t.test('a store of the previous version keeps its rows and gains the columns', async t => {
  const path = tempDbPath()
  const old = openDatabase(path, { migrations: MIGRATIONS.filter(m => m.version < SCHEMA_VERSION) })
  t.equal(schemaVersion(old), 5)
  const s = (v: string): number | bigint => old.prepare('INSERT INTO strings (value) VALUES (?)').run(v).lastInsertRowid
  const c = old.prepare("INSERT INTO clients (addr) VALUES ('10.9.9.9')").run().lastInsertRowid
  const q = old.prepare("INSERT INTO names (name, rname) VALUES ('web.telegram.org', 'org.telegram.web.')").run().lastInsertRowid
  const [g, cat, act] = [s('default'), s('telegram'), s('nxdomain')]
  for (let i = 0; i < 3; i++) {
    old.prepare('INSERT INTO events (ts, client, grp, qname, qtype, matched, category, action) VALUES (?, ?, ?, ?, 1, 1, ?, ?)').run(T0 + i, c, g, q, cat, act)
  }
  t.throws(() => old.prepare('SELECT port FROM events').get(), /no such column/, 'no port column before')
  old.close()

  const db = openDatabase(path)
  t.teardown(() => db.close())
  t.equal(schemaVersion(db), 6)
  const cols = (db.prepare('PRAGMA table_info(events)').all() as Array<{ name: string }>).map(r => r.name)
  t.ok(['port', 'proto', 'attempts'].every(x => cols.includes(x)), cols.join(', '))
  const rows = searchBlocks(db, parseFilter({}, NOW), { limit: 10, order: 'asc' }).rows
  t.same(rows.map(r => [r.ts, r.client, r.qname, r.matched, r.port, r.proto, r.attempts]), [0, 1, 2].map(i => [T0 + i, '10.9.9.9', 'web.telegram.org', 'qname', null, null, null]))
  new EventWriter(db).write([firewallEvent(hit(), { category: 'telegram', set: 'telegram_v4', group: 'default' })])
  t.match(searchBlocks(db, parseFilter({ matched: 'firewall' }, NOW), { limit: 10 }).rows, [{ port: 443, proto: 'tcp', attempts: 5, list: 'telegram_v4' }])
})

t.test('firewall events through the writer thread read back whole; CSV, filters and roll-ups', async t => {
  const { path, db } = freshDb()
  t.teardown(() => db.close())
  const bl = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 20, retention: { days: 36500, maxRows: 0, maxBytes: 0 }, log: memoryLog().log })
  const fw = [
    firewallEvent(hit({ ts: T0 + 10 }), { category: 'whatsapp', set: 'learned_whatsapp_v4', name: 'g.whatsapp.net', group: 'default' }),
    firewallEvent(hit({ ts: T0 + 20, destination: '2001:db8::5', family: 6, proto: 'udp', port: 3478, attempts: 40 }), { category: 'whatsapp', set: 'learned_whatsapp_v6', group: 'default' }),
    firewallEvent(hit({ ts: T0 + 30, client: '10.0.0.8', destination: '149.154.167.51', proto: 'icmp', port: 0, attempts: 1 }), { category: 'telegram', set: 'telegram_v4', group: 'default' })
  ]
  bl.push(event({ ts: T0 }))
  for (const e of fw) bl.push(e)
  bl.push(event({ ts: T0 + 40, matched: 'cname', value: 'x.telegram.org' }))
  t.ok(await bl.flush(10_000), 'written')
  await bl.close()

  const rows = searchBlocks(db, parseFilter({}, NOW), { limit: 100, order: 'asc' }).rows
  t.equal(rows.length, 5)
  t.match(rows[0], { matched: 'qname', port: null, proto: null, attempts: null })
  t.match(rows[1], { matched: 'firewall', qname: 'g.whatsapp.net', qtype: 'TYPE0', value: '157.240.1.1', action: 'block', list: 'learned_whatsapp_v4', port: 443, proto: 'tcp', attempts: 5, rule: null })
  t.match(rows[2], { matched: 'firewall', qname: '2001:db8::5', value: '2001:db8::5', list: 'learned_whatsapp_v6', port: 3478, proto: 'udp', attempts: 40 })
  t.match(rows[3], { matched: 'firewall', client: '10.0.0.8', category: 'telegram', port: 0, proto: 'icmp', attempts: 1 })
  t.match(rows[4], { matched: 'cname', port: null })

  // CSV: the header names the columns, a firewall row carries them, a DNS row leaves them empty.
  t.match(CSV_HEADER, /,latencyMs,port,proto,attempts\r\n$/)
  t.match(csvLine(rows[2]), /,learned_whatsapp_v6,,,,,,3478,udp,40\r\n$/)
  t.match(csvLine(rows[0]), /,,,\r\n$/)

  // matched=firewall, in SQL and in the live tail's matcher, alone and with other filters.
  const f = parseFilter({ matched: 'firewall' }, NOW)
  t.same(searchBlocks(db, f, { limit: 100, order: 'asc' }).rows.map(r => r.id), [rows[1].id, rows[2].id, rows[3].id])
  t.same(rows.filter(r => fw.concat(event({ ts: 0 })).some(e => e.ts === r.ts && eventMatches(f, e))).map(r => r.id), [rows[1].id, rows[2].id, rows[3].id])
  t.same(searchBlocks(db, parseFilter({ matched: 'firewall', client: '10.0.0.8' }, NOW), { limit: 100 }).rows.map(r => r.id), [rows[3].id])
  t.same(searchBlocks(db, parseFilter({ matched: 'cname' }, NOW), { limit: 100 }).rows.map(r => r.id), [rows[4].id])
  t.same(searchBlocks(db, parseFilter({ action: 'block' }, NOW), { limit: 100 }).rows.length, 3, 'action=block is a valid filter')
  t.throws(() => parseFilter({ matched: 'bogus' }, NOW), { name: 'QueryError', parameter: 'matched', message: /unknown matched "bogus"; valid: none, qname, cname, address, firewall/ })

  // Roll-ups count events (a firewall event once, whatever its attempts): whole-day statistics
  // from the roll-ups equal a count of the rows.
  const day = blockStats(db, { from: T0, to: T0 + 86_400_000, bucket: '1h' })
  t.equal(day.total, 5)
  t.same(day.categories.find(c => c.category === 'whatsapp'), { category: 'whatsapp', action: 'block', count: 2 })
  const rolled = db.prepare("SELECT sum(n) FROM hour_category WHERE action = (SELECT id FROM strings WHERE value = 'block')").pluck().get()
  t.equal(rolled, 3)
  t.equal(db.prepare('SELECT count(*) FROM events WHERE matched = 4').pluck().get(), 3, 'stored with match code 4')
})
