// Banned-app discovery: per client, each category it tried to reach in a time range, by DNS (blocked
// or monitored queries) and at the firewall (rejected connection attempts, see firewall-event.ts),
// with first and last seen, attempts per day, and whether the pattern looks like an installed app
// or a single click on a link. Computed from the block log's events on one connection, like the
// block search (block-search.ts): the API runs it in the reader worker (BlockSearch.discovery),
// the CLI (`egressd discovery`) directly on a read-only connection.
//
// The pattern (PATTERN_RULE says it in words for docs and the API):
//   installed-app  repeated and periodic: the first and last attempt at least 30 minutes apart, and
//                  attempts on at least 2 distinct UTC days or in at least 3 distinct 10-minute
//                  windows (an app retries its connections in the background; a person does not
//                  click the same link again and again).
//   single-click   every attempt within 10 minutes of the first, and few: at most 20 events (DNS
//                  queries plus firewall events; a link opened in a browser asks A, AAAA and HTTPS
//                  and may try a connection or two).
//   unclear        anything else (a burst of many attempts within minutes, two tries a quarter of
//                  an hour apart): look again after a longer range.
// Windows are aligned 10-minute buckets (ts / 600,000), days UTC days. An event counts once in
// the windows and days whatever its `attempts`; DNS attempts count events, firewall attempts sum
// `attempts` (rejected packets).
//
// One grouped read of the range's events (client, category, DNS or firewall, 10-minute window), by
// the (client, ts) index with a client filter, (category, ts) with a category filter, else the time
// index; the rest is done on the groups, which are far fewer than the rows.

import { QueryError } from '../errors.js'
import { MATCH_CODES } from './block-event.js'
import { parseFilter, parseTime, type ClientMatch } from './block-filter.js'
import { clientIds, MAX_LIMIT, stringId } from './block-search.js'
import { DAY_MS } from './block-writer.js'
import type { Db } from './db.js'

export const WINDOW_MS = 600_000
/** installed-app: at least this long from the first attempt to the last ... */
export const INSTALLED_MIN_SPAN_MS = 30 * 60_000
/** ... and on this many distinct days, or in this many distinct windows. */
export const INSTALLED_MIN_DAYS = 2
export const INSTALLED_MIN_WINDOWS = 3
/** single-click: every attempt within this long of the first, and at most SINGLE_CLICK_MAX_EVENTS events. */
export const SINGLE_CLICK_SPAN_MS = WINDOW_MS
export const SINGLE_CLICK_MAX_EVENTS = 20

export const PATTERN_RULE = 'installed-app: first and last attempt at least 30 minutes apart, and attempts on at least 2 distinct UTC days ' +
  'or in at least 3 distinct 10-minute windows; single-click: every attempt within 10 minutes of the first and at most 20 events ' +
  '(DNS queries plus firewall events); unclear: anything else.'

export type AppPattern = 'installed-app' | 'single-click' | 'unclear'
export const PATTERNS: readonly AppPattern[] = ['installed-app', 'unclear', 'single-click']

export interface DiscoveryRequest {
  /** Range in ms, `to` exclusive. */
  readonly from: number
  readonly to: number
  readonly client?: ClientMatch
  readonly category?: string
  /** Clients at most (default 100). */
  readonly limit?: number
}

export interface DiscoveryDay {
  /** UTC day, YYYY-MM-DD. */
  readonly day: string
  readonly dns: number
  readonly firewall: number
}

export interface DiscoveryCategory {
  readonly category: string
  readonly pattern: AppPattern
  /** Blocked or monitored queries. */
  readonly dnsAttempts: number
  /** Rejected packets (the sum of the firewall events' attempts). */
  readonly firewallAttempts: number
  /** Firewall events (each one client, destination and rate-limit period). */
  readonly firewallEvents: number
  readonly firstSeen: string
  readonly lastSeen: string
  /** Distinct UTC days and 10-minute windows with attempts. */
  readonly days: number
  readonly windows: number
  /** The days with attempts, oldest first. */
  readonly perDay: DiscoveryDay[]
}

export interface DiscoveryClient {
  readonly client: string
  /** The group of its latest event. */
  readonly group: string
  /** The strongest of its categories' patterns (installed-app, then unclear, then single-click). */
  readonly pattern: AppPattern
  readonly dnsAttempts: number
  readonly firewallAttempts: number
  readonly firstSeen: string
  readonly lastSeen: string
  /** Strongest pattern first, then most attempts. */
  readonly categories: DiscoveryCategory[]
}

export interface DiscoveryReport {
  readonly from: string
  readonly to: string
  readonly rule: string
  /** Strongest pattern first, then most attempts; at most `limit`. */
  readonly clients: DiscoveryClient[]
}

/** The parameters as the API and the CLI take them (text). */
export interface DiscoveryParams {
  readonly since?: string
  readonly until?: string
  readonly client?: string
  readonly category?: string
  readonly limit?: string | number
}

/** Validates the parameters (a QueryError naming the bad one); since defaults to -7d, until to now. */
export function parseDiscovery (p: DiscoveryParams, now: number): DiscoveryRequest {
  const from = parseTime(p.since ?? '-7d', now, 'since')
  const to = parseTime(p.until ?? 'now', now, 'until')
  if (from >= to) throw new QueryError('since', 'must be before until')
  const client = p.client === undefined ? undefined : parseFilter({ client: p.client }, now).client
  if (p.category !== undefined && p.category.trim() === '') throw new QueryError('category', 'must not be empty')
  let limit: number | undefined
  if (p.limit !== undefined) {
    limit = Number(p.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new QueryError('limit', `must be a whole number from 1 to ${MAX_LIMIT}`)
  }
  return { from, to, client, category: p.category, limit }
}

/** The pattern of one client's attempts on one category (see the header). */
export function appPattern (a: { first: number, last: number, days: number, windows: number, events: number }): AppPattern {
  const span = a.last - a.first
  if (span >= INSTALLED_MIN_SPAN_MS && (a.days >= INSTALLED_MIN_DAYS || a.windows >= INSTALLED_MIN_WINDOWS)) return 'installed-app'
  if (span <= SINGLE_CLICK_SPAN_MS && a.events <= SINGLE_CLICK_MAX_EVENTS) return 'single-click'
  return 'unclear'
}

interface Group { client: number, category: number, fw: number, win: number, n: number, a: number, first: number, last: number }

interface Acc {
  dns: number, fw: number, fwEvents: number, first: number, last: number
  windows: Set<number>
  perDay: Map<number, { dns: number, firewall: number }>
}

const iso = (ms: number): string => new Date(ms).toISOString()
const rank = (p: AppPattern): number => PATTERNS.indexOf(p)

export function discoveryReport (db: Db, req: DiscoveryRequest): DiscoveryReport {
  const limit = Math.max(1, Math.min(MAX_LIMIT, req.limit ?? 100))
  const terms: string[] = []
  const args: unknown[] = [req.from, req.to, stringId(db, 'allow')]
  if (req.client !== undefined) {
    const ids = clientIds(db, req)
    terms.push('client IN (SELECT value FROM json_each(?))')
    args.push(JSON.stringify(ids))
  }
  if (req.category !== undefined) { terms.push('category = ?'); args.push(stringId(db, req.category)) }
  // No bare `grp` here: beside both min(ts) and max(ts), SQLite may take it from either row. The
  // group of each reported client's latest event is read afterwards, one indexed lookup per client.
  const groups = db.prepare(`SELECT client, category, matched = ${MATCH_CODES.firewall} AS fw, ts / ${WINDOW_MS} AS win, count(*) AS n,
      sum(coalesce(attempts, 1)) AS a, min(ts) AS first, max(ts) AS last
    FROM events WHERE ts >= ? AND ts < ? AND action != ?${terms.map(x => ` AND ${x}`).join('')}
    GROUP BY client, category, fw, win`).all(...args) as Group[]

  const per = new Map<number, { last: number, cats: Map<number, Acc> }>()
  for (const g of groups) {
    let c = per.get(g.client)
    if (c === undefined) { c = { last: g.last, cats: new Map() }; per.set(g.client, c) }
    if (g.last > c.last) c.last = g.last
    let acc = c.cats.get(g.category)
    if (acc === undefined) {
      acc = { dns: 0, fw: 0, fwEvents: 0, first: g.first, last: g.last, windows: new Set(), perDay: new Map() }
      c.cats.set(g.category, acc)
    }
    acc.first = Math.min(acc.first, g.first)
    acc.last = Math.max(acc.last, g.last)
    acc.windows.add(g.win)
    const dayNo = Math.floor(g.win * WINDOW_MS / DAY_MS)
    let day = acc.perDay.get(dayNo)
    if (day === undefined) { day = { dns: 0, firewall: 0 }; acc.perDay.set(dayNo, day) }
    if (g.fw === 1) { acc.fw += g.a; acc.fwEvents += g.n; day.firewall += g.a } else { acc.dns += g.n; day.dns += g.n }
  }

  const name = db.prepare('SELECT value FROM strings WHERE id = ?').pluck()
  const addr = db.prepare('SELECT addr FROM clients WHERE id = ?').pluck()
  const clients: Array<{ id: number, last: number, report: Omit<DiscoveryClient, 'group'> }> = []
  for (const [id, c] of per) {
    const categories: DiscoveryCategory[] = [...c.cats].map(([cat, a]) => {
      const days = [...a.perDay.keys()].sort((x, y) => x - y)
      return {
        category: name.get(cat) as string,
        pattern: appPattern({ first: a.first, last: a.last, days: days.length, windows: a.windows.size, events: a.dns + a.fwEvents }),
        dnsAttempts: a.dns,
        firewallAttempts: a.fw,
        firewallEvents: a.fwEvents,
        firstSeen: iso(a.first),
        lastSeen: iso(a.last),
        days: days.length,
        windows: a.windows.size,
        perDay: days.map(d => ({ day: iso(d * DAY_MS).slice(0, 10), ...a.perDay.get(d) as { dns: number, firewall: number } }))
      }
    }).sort((x, y) => rank(x.pattern) - rank(y.pattern) || (y.dnsAttempts + y.firewallAttempts) - (x.dnsAttempts + x.firewallAttempts) || x.category.localeCompare(y.category))
    const accs = [...c.cats.values()]
    clients.push({
      id,
      last: c.last,
      report: {
        client: addr.get(id) as string,
        pattern: categories[0].pattern,
        dnsAttempts: categories.reduce((s, x) => s + x.dnsAttempts, 0),
        firewallAttempts: categories.reduce((s, x) => s + x.firewallAttempts, 0),
        firstSeen: iso(Math.min(...accs.map(a => a.first))),
        lastSeen: iso(Math.max(...accs.map(a => a.last))),
        categories
      }
    })
  }
  clients.sort(({ report: x }, { report: y }) => rank(x.pattern) - rank(y.pattern) || (y.dnsAttempts + y.firewallAttempts) - (x.dnsAttempts + x.firewallAttempts) || x.client.localeCompare(y.client))
  // The group of the client's latest counted event (the last written of equal times), on events_client_ts.
  const latestGroup = db.prepare(`SELECT grp FROM events WHERE client = ? AND ts = ? AND action != ?${req.category !== undefined ? ' AND category = ?' : ''}
    ORDER BY rowid DESC LIMIT 1`).pluck()
  const groupArgs = req.category !== undefined ? [args[2], stringId(db, req.category)] : [args[2]]
  const reported = clients.slice(0, limit).map(({ id, last, report }) => {
    const grp = latestGroup.get(id, last, ...groupArgs) as number | undefined
    const { client, ...rest } = report
    return { client, group: grp === undefined ? '' : (name.get(grp) as string | undefined) ?? '', ...rest }
  })
  return { from: iso(req.from), to: iso(req.to), rule: PATTERN_RULE, clients: reported }
}
