// The banned-app discovery report on a real SQLite file, events written by the real writer: a
// client with blocks on three days and firewall hits is an installed app with its per-day counts,
// two queries within a minute a single click, a firewall-only client shows up, a burst is unclear;
// allowed queries do not count; filters and their errors; the pattern rule case by case.

import t from 'tap'
import type { BlockEvent } from '../../src/store/block-event.js'
import { EventWriter } from '../../src/store/block-writer.js'
import { appPattern, discoveryReport, parseDiscovery, type DiscoveryClient } from '../../src/store/discovery.js'
import { firewallEvent } from '../../src/store/firewall-event.js'
import { event, freshDb } from './helpers.js'

const DAY = 86_400_000
const MIN = 60_000
const T0 = Date.UTC(2030, 0, 1)
const NOW = T0 + 7 * DAY

const fw = (ts: number, client: string, category: string, attempts: number, destination = '157.240.1.1'): BlockEvent =>
  firewallEvent({ ts, client, destination, family: 4, proto: 'tcp', port: 443, attempts }, { category, set: `learned_${category}_v4`, group: 'default', name: 'g.whatsapp.net' })

const events: BlockEvent[] = [
  // 10.0.0.1: WhatsApp asked on three days (5, 3, 2 queries over an hour each), and connections
  // to its learned addresses rejected on two of them.
  ...[0, 1, 2].flatMap(d => Array.from({ length: [5, 3, 2][d] }, (_, i) => event({ ts: T0 + d * DAY + 9 * 60 * MIN + i * 15 * MIN, client: '10.0.0.1', qname: 'g.whatsapp.net', category: 'whatsapp', group: 'staff' }))),
  fw(T0 + 10 * 60 * MIN, '10.0.0.1', 'whatsapp', 6),
  fw(T0 + DAY + 10 * 60 * MIN, '10.0.0.1', 'whatsapp', 4),
  // 10.0.0.2: two queries within a minute (a link opened once).
  event({ ts: T0 + 3 * DAY + 12 * 60 * MIN, client: '10.0.0.2', qname: 't.me', category: 'telegram' }),
  event({ ts: T0 + 3 * DAY + 12 * 60 * MIN + 20_000, client: '10.0.0.2', qname: 't.me', qtype: 28, category: 'telegram' }),
  // ... and an allowed query, which is no attempt.
  event({ ts: T0 + 3 * DAY + 13 * 60 * MIN, client: '10.0.0.2', qname: 'example.org', category: '', action: 'allow', matched: 'none', value: '', list: undefined, line: undefined, rule: undefined, listHash: undefined }),
  // 10.0.0.3: never asks DNS; its app connects to a hard-coded address every 15 minutes for an hour.
  ...Array.from({ length: 5 }, (_, i) => fw(T0 + 4 * DAY + i * 15 * MIN, '10.0.0.3', 'whatsapp', 3, '157.240.9.9')),
  // 10.0.0.4: 30 queries within five minutes, once: neither pattern.
  ...Array.from({ length: 30 }, (_, i) => event({ ts: T0 + 5 * DAY + i * 10_000, client: '10.0.0.4', qname: 'web.telegram.org', category: 'telegram' }))
]

const { db } = freshDb()
new EventWriter(db).write(events)
t.teardown(() => db.close())

const report = (p: Parameters<typeof parseDiscovery>[0] = {}): DiscoveryClient[] => discoveryReport(db, parseDiscovery({ since: '-7d', ...p }, NOW)).clients
const byClient = (cs: DiscoveryClient[]): Record<string, DiscoveryClient> => Object.fromEntries(cs.map(c => [c.client, c]))

t.test('patterns, attempts and days per client', async t => {
  const cs = report()
  t.same(cs.map(c => c.client), ['10.0.0.1', '10.0.0.3', '10.0.0.4', '10.0.0.2'], 'installed apps first (most attempts first), then unclear, then single clicks')
  const c = byClient(cs)
  t.match(c['10.0.0.1'], {
    group: 'staff', pattern: 'installed-app', dnsAttempts: 10, firewallAttempts: 10,
    firstSeen: new Date(T0 + 9 * 60 * MIN).toISOString(),
    categories: [{
      category: 'whatsapp', pattern: 'installed-app', dnsAttempts: 10, firewallAttempts: 10, firewallEvents: 2, days: 3,
      perDay: [{ day: '2030-01-01', dns: 5, firewall: 6 }, { day: '2030-01-02', dns: 3, firewall: 4 }, { day: '2030-01-03', dns: 2, firewall: 0 }]
    }]
  })
  t.equal(c['10.0.0.1'].group, 'staff')
  t.match(c['10.0.0.2'], { pattern: 'single-click', dnsAttempts: 2, firewallAttempts: 0, categories: [{ category: 'telegram', days: 1, windows: 1, perDay: [{ day: '2030-01-04', dns: 2, firewall: 0 }] }] })
  t.match(c['10.0.0.3'], {
    pattern: 'installed-app', dnsAttempts: 0, firewallAttempts: 15,
    categories: [{ category: 'whatsapp', firewallEvents: 5, days: 1, windows: 5, perDay: [{ day: '2030-01-05', dns: 0, firewall: 15 }] }]
  }, 'a firewall-only client shows up')
  t.match(c['10.0.0.4'], { pattern: 'unclear', dnsAttempts: 30 })
})

t.test('filters: client (address or CIDR), category, since/until, limit', async t => {
  t.same(report({ client: '10.0.0.3' }).map(c => c.client), ['10.0.0.3'])
  t.same(report({ client: '10.0.0.0/31' }).map(c => c.client), ['10.0.0.1'])
  t.same(report({ client: '10.0.0.9' }), [])
  t.same(report({ category: 'telegram' }).map(c => c.client), ['10.0.0.4', '10.0.0.2'])
  t.same(report({ category: 'nothing' }), [])
  // One day of 10.0.0.1 only: the pattern is judged on the range.
  const one = report({ since: '2030-01-02T00:00:00Z', until: '2030-01-03T00:00:00Z' })
  t.same(one.map(c => [c.client, c.pattern, c.dnsAttempts, c.firewallAttempts]), [['10.0.0.1', 'installed-app', 3, 4]], '3 windows over 30 minutes')
  t.equal(report({ limit: 2 }).length, 2)
  t.same(report({ since: '-1h' }), [])
})

t.test('bad parameters name themselves', async t => {
  const bad: Array<[Parameters<typeof parseDiscovery>[0], string]> = [
    [{ since: 'yesterday' }, 'since'], [{ until: '2030-13-45' }, 'until'], [{ since: '-1h', until: '-2h' }, 'since'],
    [{ client: '10.0.0.0/33' }, 'client'], [{ client: 'host' }, 'client'], [{ category: ' ' }, 'category'],
    [{ limit: '0' }, 'limit'], [{ limit: 'many' }, 'limit']
  ]
  for (const [p, name] of bad) t.throws(() => parseDiscovery(p, NOW), { name: 'QueryError', parameter: name }, name)
  const d = parseDiscovery({}, NOW)
  t.same([d.from, d.to], [NOW - 7 * DAY, NOW], 'default range: the last 7 days')
})

t.test('the pattern rule', async t => {
  const cases: Array<[string, Parameters<typeof appPattern>[0], string]> = [
    ['two days, an hour apart', { first: 0, last: 25 * 60 * MIN, days: 2, windows: 2, events: 2 }, 'installed-app'],
    ['three windows over 30 minutes', { first: 0, last: 30 * MIN, days: 1, windows: 3, events: 3 }, 'installed-app'],
    ['three windows over 29 minutes', { first: 0, last: 29 * MIN, days: 1, windows: 3, events: 3 }, 'unclear'],
    ['two days but two minutes across midnight', { first: 0, last: 2 * MIN, days: 2, windows: 2, events: 2 }, 'single-click'],
    ['two windows 40 minutes apart', { first: 0, last: 40 * MIN, days: 1, windows: 2, events: 4 }, 'unclear'],
    ['one query', { first: 0, last: 0, days: 1, windows: 1, events: 1 }, 'single-click'],
    ['20 events in 10 minutes', { first: 0, last: 10 * MIN, days: 1, windows: 2, events: 20 }, 'single-click'],
    ['21 events in 10 minutes', { first: 0, last: 10 * MIN, days: 1, windows: 2, events: 21 }, 'unclear'],
    ['3 events over 11 minutes', { first: 0, last: 11 * MIN, days: 1, windows: 2, events: 3 }, 'unclear']
  ]
  for (const [name, a, want] of cases) t.equal(appPattern(a), want, name)
})

t.test("a client's group is the group of its latest event, wherever it sits among the rows", async t => {
  const { db } = freshDb()
  t.teardown(() => db.close())
  const at = T0 + 6 * DAY
  const ev = (ts: number, client: string, group: string): BlockEvent => event({ ts, client, group, qname: 't.me', category: 'telegram' })
  new EventWriter(db).write([
    // In one 10-minute window: guest first, staff last (written in time order) ...
    ev(at, '10.1.0.1', 'guest'), ev(at + 60_000, '10.1.0.1', 'guest'), ev(at + 120_000, '10.1.0.1', 'staff'),
    // ... written out of time order: the latest (staff) first, then earlier guest rows.
    ev(at + 120_000, '10.1.0.2', 'staff'), ev(at, '10.1.0.2', 'guest'), ev(at + 60_000, '10.1.0.2', 'guest'),
    // ... and the other way round: moved from staff to guest, written out of order.
    ev(at + 60_000, '10.1.0.3', 'staff'), ev(at + 120_000, '10.1.0.3', 'guest'), ev(at, '10.1.0.3', 'staff'),
    // Firewall events (another group of rows) earlier, in their own group.
    fw(at - 60_000, '10.1.0.3', 'telegram', 2)
  ])
  const groups = (p: Parameters<typeof parseDiscovery>[0] = {}): Record<string, string> =>
    Object.fromEntries(discoveryReport(db, parseDiscovery({ since: '-7d', ...p }, NOW)).clients.map(c => [c.client, c.group]))
  const want = { '10.1.0.1': 'staff', '10.1.0.2': 'staff', '10.1.0.3': 'guest' }
  t.same(groups(), want)
  t.same(groups({ category: 'telegram' }), want, 'with a category filter')
  t.same(groups({ client: '10.1.0.3' }), { '10.1.0.3': 'guest' }, 'with a client filter')
  db.exec('ANALYZE')   // the planner now scans the table in rowid (write) order
  t.same(groups(), want, 'with another query plan')
})
