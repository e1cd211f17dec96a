// Filters, keyset pagination, statistics and the bypass report on a known set of events written
// through the real writer into a real SQLite file: every answer compared with the expected rows.

import t from 'tap'
import { EventWriter, HOUR_MS, DAY_MS } from '../../src/store/block-writer.js'
import { blockStats, bypassClients, searchBlocks, storedFilterValue } from '../../src/store/block-search.js'
import { clientMatches, parseFilter, type FilterParams } from '../../src/store/block-filter.js'
import type { BlockEvent } from '../../src/store/block-event.js'
import { event, freshDb } from './helpers.js'

const T0 = Date.UTC(2030, 0, 10, 0, 0, 0)
const clients = ['10.0.0.1', '10.0.0.2', '10.0.1.7', 'fd00::5', '192.168.1.9']
const names = ['web.telegram.org', 'telegram.org', 'a.b.telegram.org', 'notelegram.org', 'web.whatsapp.com', 'dns.google', 'mask.icloud.com']
const cats: Record<string, string> = {
  'web.telegram.org': 'telegram', 'telegram.org': 'telegram', 'a.b.telegram.org': 'telegram', 'notelegram.org': 'custom',
  'web.whatsapp.com': 'whatsapp', 'dns.google': 'doh-bypass', 'mask.icloud.com': 'doh-bypass'
}
const events: BlockEvent[] = []
for (let i = 0; i < 600; i++) {
  const qname = names[(i * 7) % names.length]
  events.push(event({
    ts: T0 + i * 7 * 60_000 + (i % 3),             // every 7 minutes over ~70 hours
    client: clients[i % clients.length],
    group: i % 4 === 0 ? 'staff' : 'default',
    qname,
    value: qname,
    qtype: [1, 28, 65][i % 3],
    category: cats[qname],
    action: i % 5 === 0 ? 'monitor' : 'nxdomain'
  }))
}
const { db } = freshDb()
const writer = new EventWriter(db)
// Several batches, as the worker writes them.
for (let i = 0; i < events.length; i += 97) writer.write(events.slice(i, i + 97))
t.teardown(() => db.close())

const withIds = events.map((e, i) => ({ ...e, id: i + 1 }))
const NOW = T0 + 3 * DAY_MS

function expected (pred: (e: BlockEvent) => boolean): number[] {
  return withIds.filter(pred).sort((a, b) => b.ts - a.ts || b.id - a.id).map(e => e.id)
}
function all (params: FilterParams, limit = 10_000): number[] {
  const f = parseFilter(params, NOW)
  const ids: number[] = []
  let cursor: string | undefined
  for (let i = 0; i < 1000; i++) {
    const p = searchBlocks(db, f, { limit, cursor })
    ids.push(...p.rows.map(r => r.id))
    if (p.next === undefined) break
    cursor = p.next
  }
  return ids
}

t.test('each filter returns exactly the expected rows', async t => {
  const cases: Array<[string, FilterParams, (e: BlockEvent) => boolean]> = [
    ['no filter', {}, () => true],
    ['from/to ISO', { from: new Date(T0 + 5 * HOUR_MS).toISOString(), to: new Date(T0 + 9 * HOUR_MS).toISOString() }, e => e.ts >= T0 + 5 * HOUR_MS && e.ts < T0 + 9 * HOUR_MS],
    ['from relative', { from: '-24h' }, e => e.ts >= NOW - DAY_MS],
    ['from epoch ms', { from: String(T0 + 60 * HOUR_MS) }, e => e.ts >= T0 + 60 * HOUR_MS],
    ['client exact', { client: '10.0.0.2' }, e => e.client === '10.0.0.2'],
    ['client v6', { client: 'fd00::5' }, e => e.client === 'fd00::5'],
    ['client CIDR', { client: '10.0.0.0/16' }, e => e.client.startsWith('10.0.')],
    ['client CIDR /24', { client: '10.0.0.0/24' }, e => e.client === '10.0.0.1' || e.client === '10.0.0.2'],
    ['client v6 CIDR', { client: 'fd00::/8' }, e => e.client === 'fd00::5'],
    ['client unknown', { client: '10.9.9.9' }, () => false],
    ['group', { group: 'staff' }, e => e.group === 'staff'],
    ['domain exact', { domain: 'telegram.org' }, e => e.qname === 'telegram.org'],
    ['domain exact, case and dot', { domain: 'Telegram.ORG.' }, e => e.qname === 'telegram.org'],
    ['domain suffix', { domain: 'telegram.org', suffix: 'true' }, e => e.qname === 'telegram.org' || e.qname.endsWith('.telegram.org')],
    ['domain suffix deeper', { domain: 'b.telegram.org', suffix: true }, e => e.qname === 'a.b.telegram.org'],
    ['category', { category: 'doh-bypass' }, e => e.category === 'doh-bypass'],
    ['action', { action: 'monitor' }, e => e.action === 'monitor'],
    ['qtype name', { qtype: 'aaaa' }, e => e.qtype === 28],
    ['qtype number', { qtype: '65' }, e => e.qtype === 65],
    ['combined', { client: '10.0.0.0/8', category: 'telegram', action: 'nxdomain', from: '-48h' },
      e => e.client.startsWith('10.') && e.category === 'telegram' && e.action === 'nxdomain' && e.ts >= NOW - 2 * DAY_MS]
  ]
  for (const [name, params, pred] of cases) {
    const want = expected(pred)
    t.same(all(params), want, `${name} (${want.length} rows)`)
    t.same(all(params, 7), want, `${name}, pages of 7`)
  }
})

t.test('cursor pagination: no row twice, none missed, both orders', async t => {
  const f = parseFilter({ category: 'telegram' }, NOW)
  const seen: number[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const p = searchBlocks(db, f, { limit: 13, cursor, order: 'asc' })
    t.ok(p.rows.length <= 13)
    seen.push(...p.rows.map(r => r.id))
    cursor = p.next
    pages++
  } while (cursor !== undefined && pages < 1000)
  const want = expected(e => e.category === 'telegram').reverse()
  t.same(seen, want)
  t.equal(pages, Math.ceil(want.length / 13))
  t.throws(() => searchBlocks(db, f, { limit: 5, cursor: 'garbage!' }), { name: 'QueryError', parameter: 'cursor' })
})

t.test('rows carry every field', async t => {
  const p = searchBlocks(db, parseFilter({}, NOW), { limit: 1, order: 'asc' })
  const e = events[0]
  t.same(p.rows[0], {
    id: 1, time: new Date(e.ts).toISOString(), ts: e.ts, client: e.client, group: e.group, qname: e.qname, qtype: 'A',
    matched: 'qname', value: e.qname, category: e.category, action: e.action, list: e.list, line: e.line, rule: e.rule,
    listHash: e.listHash, rcode: null, latencyMs: null, port: null, proto: null, attempts: null
  })
})

t.test('bad parameters name themselves', async t => {
  const bad: Array<[FilterParams, string]> = [
    [{ from: 'yesterday' }, 'from'], [{ to: '2030-13-45' }, 'to'], [{ client: '10.0.0.0/33' }, 'client'], [{ client: 'host' }, 'client'],
    [{ domain: 'a..b' }, 'domain'], [{ qtype: 'BOGUS' }, 'qtype'], [{ suffix: 'maybe', domain: 'a.b' }, 'suffix'],
    [{ from: '-1h', to: '-2h' }, 'from']
  ]
  for (const [p, name] of bad) t.throws(() => parseFilter(p, NOW), { name: 'QueryError', parameter: name }, name)
})

t.test('stats: counts, top lists and series equal a count of the rows, on aligned and unaligned ranges', async t => {
  const ranges: Array<[number, number]> = [
    [T0, T0 + 3 * DAY_MS],                                      // whole days
    [T0 + 17 * 60_000 + 5, T0 + 2 * DAY_MS + 5 * HOUR_MS + 3],  // days, hours and raw edges
    [T0 + 3 * HOUR_MS + 1, T0 + 3 * HOUR_MS + 40 * 60_000]      // inside one hour
  ]
  for (const [from, to] of ranges) {
    const filters: Array<{ category?: string, client?: string, group?: string }> = [
      {}, { category: 'telegram' }, { client: '10.0.0.0/24' }, { client: 'fd00::5' }, { group: 'staff' },
      { category: 'telegram', client: '10.0.0.2', group: 'default' }, { client: '10.9.0.0/16' }
    ]
    for (const fp of filters) {
      const { category, group } = fp
      const client = parseFilter({ client: fp.client }, NOW).client
      const inRange = events.filter(e => e.ts >= from && e.ts < to && (category === undefined || e.category === category) &&
        (group === undefined || e.group === group) && (client === undefined || clientMatches(client, e.client)))
      const s = blockStats(db, { from, to, category, client, group, top: 50 })
      t.equal(s.total, inRange.length, `total ${JSON.stringify(fp)}`)
      if (fp.client === '10.0.0.0/24' || group === 'staff') t.ok(inRange.length > 0 && inRange.length < events.length, 'the filter leaves some rows, not all')
      const byCat = new Map<string, number>()
      for (const e of inRange) byCat.set(`${e.category}/${e.action}`, (byCat.get(`${e.category}/${e.action}`) ?? 0) + 1)
      t.same(new Map(s.categories.map(c => [`${c.category}/${c.action}`, c.count])), byCat, 'categories')
      const byName = new Map<string, number>()
      for (const e of inRange) byName.set(e.qname, (byName.get(e.qname) ?? 0) + 1)
      t.same(new Map(s.topDomains.map(d => [d.qname, d.count])), byName, 'top domains')
      const byClient = new Map<string, number>()
      for (const e of inRange) byClient.set(e.client, (byClient.get(e.client) ?? 0) + 1)
      t.same(new Map(s.topClients.map(d => [d.client, d.count])), byClient, 'top clients')
      t.equal(s.series.points.reduce((a, p) => a + p.count, 0), inRange.length, `series (${s.series.bucket}) sums to the total`)
    }
  }
  const s = blockStats(db, { from: T0, to: T0 + DAY_MS, bucket: '1h' })
  t.equal(s.series.points.length, 24)
  t.equal(s.series.points[0].count, events.filter(e => e.ts >= T0 && e.ts < T0 + HOUR_MS).length)
  t.throws(() => blockStats(db, { from: T0, to: T0 + 30 * DAY_MS, bucket: '1m' }), { name: 'QueryError', parameter: 'bucket' })
})

t.test('storedFilterValue: a category some event has, a group name the store holds', async t => {
  t.equal(storedFilterValue(db, 'category', 'telegram'), true)
  t.equal(storedFilterValue(db, 'category', 'telegarm'), false)
  t.equal(storedFilterValue(db, 'category', 'staff'), false, 'a stored string that is no category')
  t.equal(storedFilterValue(db, 'group', 'staff'), true)
  t.equal(storedFilterValue(db, 'group', 'fiance'), false)
})

t.test('bypass: doh-bypass hits ranked by client with first and last seen', async t => {
  const hits = events.filter(e => e.category === 'doh-bypass')
  const r = bypassClients(db, { from: T0, to: NOW })
  const want = new Map<string, { n: number, first: number, last: number }>()
  for (const e of hits) {
    const w = want.get(e.client) ?? { n: 0, first: Infinity, last: -Infinity }
    want.set(e.client, { n: w.n + 1, first: Math.min(w.first, e.ts), last: Math.max(w.last, e.ts) })
  }
  t.equal(r.length, want.size)
  for (let i = 1; i < r.length; i++) t.ok(r[i - 1].hits >= r[i].hits, 'ranked')
  for (const c of r) {
    const w = want.get(c.client)!
    t.same([c.hits, c.firstSeen, c.lastSeen], [w.n, new Date(w.first).toISOString(), new Date(w.last).toISOString()], c.client)
    t.ok(['dns.google', 'mask.icloud.com'].includes(c.topName))
  }
})
