// The block log's read side: searches with keyset pagination, statistics and the bypass report,
// as synchronous functions on one connection. The API runs them in a reader worker (search-worker
// via BlockSearch), the CLI runs them directly on a read-only connection.
//
// Statistics read the roll-ups for whole hours (counts, time series) or whole days (top domains
// and clients) of a range and the raw rows only for the partial hours or days at its edges, so a
// 30-day count reads thousands of rows, not millions, and is still exact to the millisecond. Roll-ups hold block and monitor events (not allowed queries).
// The roll-ups have no client or group: statistics filtered by client or group read the raw rows
// of the whole range (by the client index for a client; by time for a group).

import { QueryError } from '../errors.js'
import type { Db } from './db.js'
import { qtypeName } from '../qtypes.js'
import { MATCH_CODES, MATCH_NAMES, reverseName, type BlockRow } from './block-event.js'
import { clientMatches, type BlockFilter, type ClientMatch } from './block-filter.js'
import { DAY_MS, HOUR_MS } from './block-writer.js'

export const MAX_LIMIT = 10_000

export interface PageRequest {
  readonly limit: number
  /** Opaque, from the previous page's `next`. */
  readonly cursor?: string
  /** desc (default): newest first. */
  readonly order?: 'asc' | 'desc'
}

export interface Page {
  readonly rows: BlockRow[]
  /** Cursor for the next page; absent on the last page. */
  readonly next?: string
}

interface Cursor { readonly ts: number, readonly id: number, readonly order: 'asc' | 'desc' }

function encodeCursor (c: Cursor): string {
  return Buffer.from(JSON.stringify([c.ts, c.id, c.order === 'asc' ? 1 : 0])).toString('base64url')
}

function decodeCursor (text: string): Cursor {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(v) && v.length === 3 && v.every(x => Number.isSafeInteger(x))) {
      return { ts: v[0] as number, id: v[1] as number, order: v[2] === 1 ? 'asc' : 'desc' }
    }
  } catch { /* fall through */ }
  throw new QueryError('cursor', 'not a cursor from a previous page')
}

/** Ids of a string in `strings`, or -1 (matches nothing) when it was never stored. */
export function stringId (db: Db, value: string): number {
  const row = db.prepare('SELECT id FROM strings WHERE value = ?').get(value) as { id: number } | undefined
  return row?.id ?? -1
}

/**
 * Whether the store knows a category or group name that the policy in force does not (one since
 * removed), so its events stay searchable. Cheap either way: a category must be on some event
 * (the events_category_ts index, one probe); a group name must be in the strings table (its
 * unique index; events have no group index, so any stored string passes, and a search then
 * finds what it finds).
 */
export function storedFilterValue (db: Db, parameter: 'category' | 'group', value: string): boolean {
  const id = stringId(db, value)
  if (id < 0) return false
  if (parameter === 'group') return true
  return db.prepare('SELECT 1 FROM events WHERE category = ? LIMIT 1').get(id) !== undefined
}

/** Client ids the filter's address or range covers. */
export function clientIds (db: Db, f: Pick<BlockFilter, 'client'>): number[] {
  const m = f.client
  if (m === undefined) return []
  if (!m.cidr) {
    const row = db.prepare('SELECT id FROM clients WHERE addr = ?').get(m.text) as { id: number } | undefined
    if (row !== undefined) return [row.id]
  }
  const ids: number[] = []
  for (const r of db.prepare('SELECT id, addr FROM clients').iterate() as Iterable<{ id: number, addr: string }>) {
    if (clientMatches(m, r.addr)) ids.push(r.id)
  }
  return ids
}

interface Where {
  readonly sql: string[]
  readonly args: unknown[]
  /** Domain searches: the only time ranges that can hold a match, oldest first (ms, end exclusive). */
  readonly ranges?: ReadonlyArray<readonly [number, number]>
}

/** WHERE terms on `events e` for a filter (without the time range). */
function filterTerms (db: Db, f: BlockFilter): Where {
  const sql: string[] = []
  const args: unknown[] = []
  const eq = (col: string, v: unknown): void => { sql.push(`${col} = ?`); args.push(v) }
  if (f.client !== undefined) {
    const ids = clientIds(db, f)
    if (ids.length === 1) eq('e.client', ids[0])
    else { sql.push('e.client IN (SELECT value FROM json_each(?))'); args.push(JSON.stringify(ids)) }
  }
  if (f.group !== undefined) eq('e.grp', stringId(db, f.group))
  if (f.category !== undefined) eq('e.category', stringId(db, f.category))
  if (f.action !== undefined) eq('e.action', stringId(db, f.action))
  if (f.qtype !== undefined) eq('e.qtype', f.qtype)
  if (f.matched !== undefined) eq('e.matched', MATCH_CODES[f.matched])
  if (f.domain !== undefined) {
    let hours: number[]
    const fromHour = Math.floor((f.from ?? 0) / HOUR_MS)
    const toHour = f.to === undefined ? Number.MAX_SAFE_INTEGER : Math.floor((f.to - 1) / HOUR_MS)
    if (f.suffix === true) {
      const r = reverseName(f.domain)
      // 'org.example.' and everything that starts with it ('org.example.www.'): '/' sorts right after '.'.
      const names = 'SELECT id FROM names WHERE rname >= ? AND rname < ?'
      sql.push(`e.qname IN (${names})`)
      args.push(r, r.slice(0, -1) + '/')
      hours = db.prepare(`SELECT DISTINCT hour FROM name_hours WHERE qname IN (${names}) AND hour >= ? AND hour <= ? ORDER BY hour`)
        .pluck().all(r, r.slice(0, -1) + '/', fromHour, toHour) as number[]
    } else {
      const id = (db.prepare('SELECT id FROM names WHERE name = ?').pluck().get(f.domain) as number | undefined) ?? -1
      eq('e.qname', id)
      hours = db.prepare('SELECT hour FROM name_hours WHERE qname = ? AND hour >= ? AND hour <= ? ORDER BY hour').pluck().all(id, fromHour, toHour) as number[]
    }
    return { sql, args, ranges: hourRanges(hours) }
  }
  return { sql, args }
}

/**
 * The time ranges a domain search must read: the hours its names were seen in (name_hours), with
 * consecutive hours merged; past MAX_RANGES ranges, the smallest gaps are closed too (a little more
 * to scan, fewer queries).
 */
export function hourRanges (hours: readonly number[]): Array<[number, number]> {
  let ranges: Array<[number, number]> = []
  for (const h of hours) {
    const last = ranges[ranges.length - 1]
    if (last !== undefined && last[1] === h) last[1] = h + 1
    else ranges.push([h, h + 1])
  }
  for (let gap = 1; ranges.length > MAX_RANGES; gap *= 2) {
    const merged: Array<[number, number]> = [ranges[0]]
    for (const r of ranges.slice(1)) {
      const last = merged[merged.length - 1]
      if (r[0] - last[1] <= gap) last[1] = r[1]
      else merged.push(r)
    }
    ranges = merged
  }
  return ranges.map(([a, b]) => [a * HOUR_MS, b * HOUR_MS])
}

const MAX_RANGES = 200

const ROW_SELECT = `SELECT e.id, e.ts, c.addr AS client, g.value AS grp, n.name AS qname, e.qtype, e.matched,
    v.value AS value, cat.value AS category, a.value AS action, l.value AS list, e.line, r.value AS rule,
    h.value AS list_hash, e.rcode, e.latency_ms, e.port, pr.value AS proto, e.attempts
  FROM events e
  LEFT JOIN clients c ON c.id = e.client
  LEFT JOIN names n ON n.id = e.qname
  LEFT JOIN strings g ON g.id = e.grp
  LEFT JOIN strings v ON v.id = e.value
  LEFT JOIN strings cat ON cat.id = e.category
  LEFT JOIN strings a ON a.id = e.action
  LEFT JOIN strings l ON l.id = e.list
  LEFT JOIN strings r ON r.id = e.rule
  LEFT JOIN strings h ON h.id = e.list_hash
  LEFT JOIN strings pr ON pr.id = e.proto`

interface RawRow {
  id: number, ts: number, client: string, grp: string, qname: string, qtype: number, matched: number, value: string | null,
  category: string, action: string, list: string | null, line: number | null, rule: string | null, list_hash: string | null,
  rcode: number | null, latency_ms: number | null, port: number | null, proto: string | null, attempts: number | null
}

function toRow (r: RawRow): BlockRow {
  const matched = MATCH_NAMES[r.matched] ?? 'none'
  return {
    id: r.id,
    time: new Date(r.ts).toISOString(),
    ts: r.ts,
    client: r.client,
    group: r.grp,
    qname: r.qname,
    qtype: qtypeName(r.qtype),
    matched,
    value: r.value ?? (matched === 'qname' ? r.qname : ''),
    category: r.category,
    action: r.action,
    list: r.list,
    line: r.line,
    rule: r.rule,
    listHash: r.list_hash,
    rcode: r.rcode,
    latencyMs: r.latency_ms,
    port: r.port,
    proto: r.proto,
    attempts: r.attempts
  }
}

/** One page of events matching `f`, newest first (or oldest first), after `cursor`. */
export function searchBlocks (db: Db, f: BlockFilter, page: PageRequest): Page {
  const limit = Math.max(1, Math.min(MAX_LIMIT, Math.floor(page.limit)))
  let order = page.order ?? 'desc'
  const { sql, args, ranges: hours } = filterTerms(db, f)
  // Domain searches: the hour ranges clipped to from/to (one bound per query, so the time index
  // scans exactly that range); other searches: from/to as terms.
  const ranges = hours?.map(([a, b]): [number, number] => [Math.max(a, f.from ?? a), Math.min(b, f.to ?? b)]).filter(([a, b]) => a < b)
  if (ranges === undefined) {
    if (f.from !== undefined) { sql.push('e.ts >= ?'); args.push(f.from) }
    if (f.to !== undefined) { sql.push('e.ts < ?'); args.push(f.to) }
  }
  if (page.cursor !== undefined) {
    const c = decodeCursor(page.cursor)
    order = c.order
    const op = order === 'desc' ? '<' : '>'
    sql.push(`(e.ts ${op} ? OR (e.ts = ? AND e.id ${op} ?))`)
    args.push(c.ts, c.ts, c.id)
  }
  const dir = order === 'desc' ? 'DESC' : 'ASC'
  let raw: RawRow[]
  if (ranges === undefined) {
    const text = `${ROW_SELECT} ${sql.length > 0 ? 'WHERE ' + sql.join(' AND ') : ''} ORDER BY e.ts ${dir}, e.id ${dir} LIMIT ?`
    raw = db.prepare(text).all(...args, limit + 1) as RawRow[]
  } else {
    // A domain search reads only the hours its names were seen in: one time-index range per
    // query, in the page's order, until the page is full.
    const stmt = db.prepare(`${ROW_SELECT} WHERE ${[...sql, 'e.ts >= ?', 'e.ts < ?'].join(' AND ')} ORDER BY e.ts ${dir}, e.id ${dir} LIMIT ?`)
    raw = []
    for (const [a, b] of order === 'desc' ? [...ranges].reverse() : ranges) {
      if (raw.length > limit) break
      raw.push(...stmt.all(...args, a, b, limit + 1 - raw.length) as RawRow[])
    }
  }
  const more = raw.length > limit
  const rows = (more ? raw.slice(0, limit) : raw).map(toRow)
  const last = rows[rows.length - 1]
  return more && last !== undefined ? { rows, next: encodeCursor({ ts: last.ts, id: last.id, order }) } : { rows }
}

// ---------------------------------------------------------------------------------------------
// Statistics

export type Bucket = '1m' | '1h' | '1d'
const BUCKET_MS: Readonly<Record<Bucket, number>> = { '1m': 60_000, '1h': HOUR_MS, '1d': DAY_MS }
const MAX_BUCKETS = 10_000

export interface StatsRequest {
  readonly from: number
  readonly to: number
  readonly category?: string
  /** Only events of these clients (an address or a CIDR). */
  readonly client?: ClientMatch
  /** Only events of this client group. */
  readonly group?: string
  /** How many domains and clients (default 10). */
  readonly top?: number
  /** Default: 1m up to 6 h, 1h up to 14 days, else 1d. */
  readonly bucket?: Bucket
}

export interface Stats {
  readonly from: string
  readonly to: string
  readonly total: number
  readonly categories: Array<{ category: string, action: string, count: number }>
  readonly topDomains: Array<{ qname: string, count: number }>
  readonly topClients: Array<{ client: string, count: number }>
  readonly series: { bucket: Bucket, points: Array<{ time: string, count: number }> }
}

interface Span { readonly kind: 'day' | 'hour' | 'raw', readonly a: number, readonly b: number }

/** Splits [from, to) into whole days (when `days`), whole hours (when `hours`), and raw edges. a, b are ms. */
export function cover (from: number, to: number, days: boolean, withHours = true): Span[] {
  const out: Span[] = []
  const hours = (a: number, b: number): void => {
    if (!withHours) { if (a < b) out.push({ kind: 'raw', a, b }); return }
    const h1 = Math.ceil(a / HOUR_MS) * HOUR_MS
    const h2 = Math.floor(b / HOUR_MS) * HOUR_MS
    if (h1 < h2) {
      if (a < h1) out.push({ kind: 'raw', a, b: h1 })
      out.push({ kind: 'hour', a: h1, b: h2 })
      if (h2 < b) out.push({ kind: 'raw', a: h2, b })
    } else if (a < b) out.push({ kind: 'raw', a, b })
  }
  const d1 = Math.ceil(from / DAY_MS) * DAY_MS
  const d2 = Math.floor(to / DAY_MS) * DAY_MS
  if (days && d1 < d2) {
    hours(from, d1)
    out.push({ kind: 'day', a: d1, b: d2 })
    hours(d2, to)
  } else hours(from, to)
  return out
}

/** Sums `(key, n)` rows from every span of the range into one map. */
function sumOver (db: Db, spans: Span[], q: { day: string, raw: string }, extra: unknown[]): Map<number, number> {
  const out = new Map<number, number>()
  for (const s of spans) {
    let rows: Array<{ k: number, n: number }>
    if (s.kind === 'day') rows = db.prepare(q.day).all(Math.floor(s.a / DAY_MS), Math.floor(s.b / DAY_MS), ...extra) as typeof rows
    else rows = db.prepare(q.raw).all(s.a, s.b, ...extra) as typeof rows
    for (const r of rows) out.set(r.k, (out.get(r.k) ?? 0) + r.n)
  }
  return out
}

function topOf (m: Map<number, number>, n: number): Array<[number, number]> {
  return [...m].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, n)
}

function defaultBucket (from: number, to: number): Bucket {
  const span = to - from
  return span <= 6 * HOUR_MS ? '1m' : span <= 14 * DAY_MS ? '1h' : '1d'
}

/**
 * The WHERE terms of a statistics request (each with a leading AND): `raw` on events, `roll` on
 * the roll-ups (which have a category, but no client or group: with a client or group filter,
 * `rollups` is false and every span is read from the events).
 */
interface StatsTerms { readonly raw: string, readonly rawArgs: unknown[], readonly roll: string, readonly rollArgs: unknown[], readonly rollups: boolean }

function statsTerms (db: Db, req: Pick<StatsRequest, 'category' | 'client' | 'group'>): StatsTerms {
  let raw = ''
  const rawArgs: unknown[] = []
  let roll = ''
  const rollArgs: unknown[] = []
  if (req.category !== undefined) {
    const cat = stringId(db, req.category)
    raw += ' AND category = ?'
    rawArgs.push(cat)
    roll += ' AND category = ?'
    rollArgs.push(cat)
  }
  if (req.client !== undefined) {
    const ids = clientIds(db, req)
    if (ids.length === 1) { raw += ' AND client = ?'; rawArgs.push(ids[0]) } else { raw += ' AND client IN (SELECT value FROM json_each(?))'; rawArgs.push(JSON.stringify(ids)) }
  }
  if (req.group !== undefined) { raw += ' AND grp = ?'; rawArgs.push(stringId(db, req.group)) }
  return { raw, rawArgs, roll, rollArgs, rollups: req.client === undefined && req.group === undefined }
}

/** Counts per category and action in [from, to): the hour roll-up for whole hours, raw rows at the edges. */
export function categoryCounts (db: Db, from: number, to: number, category?: string, terms: StatsTerms = statsTerms(db, { category })): Array<{ category: string, action: string, count: number }> {
  const allow = stringId(db, 'allow')
  const byCat = new Map<string, number>()
  for (const s of cover(from, to, false, terms.rollups)) {
    const rows = (s.kind === 'raw'
      ? db.prepare(`SELECT category, action, count(*) AS n FROM events WHERE ts >= ? AND ts < ? AND action != ${allow}${terms.raw} GROUP BY category, action`).all(s.a, s.b, ...terms.rawArgs)
      : db.prepare(`SELECT category, action, sum(n) AS n FROM hour_category WHERE hour >= ? AND hour < ?${terms.roll} GROUP BY category, action`).all(s.a / HOUR_MS, s.b / HOUR_MS, ...terms.rollArgs)
    ) as Array<{ category: number, action: number, n: number }>
    for (const r of rows) byCat.set(`${r.category}|${r.action}`, (byCat.get(`${r.category}|${r.action}`) ?? 0) + r.n)
  }
  const name = db.prepare('SELECT value FROM strings WHERE id = ?').pluck()
  return [...byCat].map(([k, count]) => {
    const [c, a] = k.split('|').map(Number)
    return { category: name.get(c) as string, action: name.get(a) as string, count }
  }).sort((x, y) => y.count - x.count || x.category.localeCompare(y.category))
}

export function blockStats (db: Db, req: StatsRequest): Stats {
  const { from, to } = req
  const top = Math.max(1, Math.min(1000, req.top ?? 10))
  const bucket = req.bucket ?? defaultBucket(from, to)
  const width = BUCKET_MS[bucket]
  const first = Math.floor(from / width) * width
  const nBuckets = Math.ceil((to - first) / width)
  if (nBuckets > MAX_BUCKETS) throw new QueryError('bucket', `${nBuckets} buckets of ${bucket} in this range; at most ${MAX_BUCKETS}`)
  const allow = stringId(db, 'allow')
  const terms = statsTerms(db, req)
  const notAllowed = ` AND action != ${allow}`

  const categories = categoryCounts(db, from, to, req.category, terms)
  const total = categories.reduce((s, c) => s + c.count, 0)
  // Without roll-ups, one raw span: the day/raw queries take different arguments.
  const spans = terms.rollups ? cover(from, to, true, false) : [{ kind: 'raw', a: from, b: to } as Span]
  const domains = sumOver(db, spans, {
    day: `SELECT qname AS k, sum(n) AS n FROM day_qname WHERE day >= ? AND day < ?${terms.roll} GROUP BY qname`,
    raw: `SELECT qname AS k, count(*) AS n FROM events WHERE ts >= ? AND ts < ?${notAllowed}${terms.raw} GROUP BY qname`
  }, terms.rollups ? terms.rollArgs : terms.rawArgs)
  const clients = sumOver(db, spans, {
    day: `SELECT client AS k, sum(n) AS n FROM day_client WHERE day >= ? AND day < ?${terms.roll} GROUP BY client`,
    raw: `SELECT client AS k, count(*) AS n FROM events WHERE ts >= ? AND ts < ?${notAllowed}${terms.raw} GROUP BY client`
  }, terms.rollups ? terms.rollArgs : terms.rawArgs)
  const qname = db.prepare('SELECT name FROM names WHERE id = ?').pluck()
  const addr = db.prepare('SELECT addr FROM clients WHERE id = ?').pluck()

  // Time series: hour roll-up for 1h/1d buckets, raw rows for 1m and the edges.
  const counts = new Float64Array(nBuckets)
  const at = (ms: number): number => Math.floor((ms - first) / width)
  for (const s of (bucket === '1m' || !terms.rollups ? [{ kind: 'raw', a: from, b: to } as Span] : cover(from, to, false))) {
    if (s.kind === 'raw') {
      const rows = db.prepare(`SELECT CAST((ts - ?) / ? AS INTEGER) AS k, count(*) AS n FROM events WHERE ts >= ? AND ts < ?${notAllowed}${terms.raw} GROUP BY k`)
        .all(first, width, s.a, s.b, ...terms.rawArgs) as Array<{ k: number, n: number }>
      for (const r of rows) counts[r.k] += r.n
    } else {
      const rows = db.prepare(`SELECT hour, sum(n) AS n FROM hour_category WHERE hour >= ? AND hour < ?${terms.roll} GROUP BY hour`)
        .all(s.a / HOUR_MS, s.b / HOUR_MS, ...terms.rollArgs) as Array<{ hour: number, n: number }>
      for (const r of rows) counts[at(r.hour * HOUR_MS)] += r.n
    }
  }
  const points = Array.from(counts, (count, i) => ({ time: new Date(first + i * width).toISOString(), count }))
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    total,
    categories,
    topDomains: topOf(domains, top).map(([k, count]) => ({ qname: qname.get(k) as string, count })),
    topClients: topOf(clients, top).map(([k, count]) => ({ client: addr.get(k) as string, count })),
    series: { bucket, points }
  }
}

// ---------------------------------------------------------------------------------------------
// Bypass attempts

export interface BypassRequest {
  readonly from: number
  readonly to: number
  /** Default 'doh-bypass'. */
  readonly category?: string
  readonly limit?: number
}

export interface BypassClient {
  readonly client: string
  readonly hits: number
  /** Distinct names asked. */
  readonly names: number
  readonly firstSeen: string
  readonly lastSeen: string
  /** The most asked name. */
  readonly topName: string
}

/** Clients ranked by hits on the bypass category (public DoH/DoT resolvers, canary names) in the range. */
export function bypassClients (db: Db, req: BypassRequest): BypassClient[] {
  const cat = stringId(db, req.category ?? 'doh-bypass')
  const limit = Math.max(1, Math.min(MAX_LIMIT, req.limit ?? 100))
  // One pass over the category's rows in the range (category, ts index), grouped per (client, name).
  const groups = db.prepare(`SELECT client, qname, count(*) AS n, min(ts) AS first, max(ts) AS last FROM events
    WHERE category = ? AND ts >= ? AND ts < ? GROUP BY client, qname`).all(cat, req.from, req.to) as Array<{ client: number, qname: number, n: number, first: number, last: number }>
  const per = new Map<number, { hits: number, names: number, first: number, last: number, top: number, topN: number }>()
  for (const g of groups) {
    const c = per.get(g.client)
    if (c === undefined) { per.set(g.client, { hits: g.n, names: 1, first: g.first, last: g.last, top: g.qname, topN: g.n }); continue }
    c.hits += g.n
    c.names++
    if (g.first < c.first) c.first = g.first
    if (g.last > c.last) c.last = g.last
    if (g.n > c.topN || (g.n === c.topN && g.qname < c.top)) { c.top = g.qname; c.topN = g.n }
  }
  const addr = db.prepare('SELECT addr FROM clients WHERE id = ?').pluck()
  const qname = db.prepare('SELECT name FROM names WHERE id = ?').pluck()
  return [...per].sort((a, b) => b[1].hits - a[1].hits || a[1].first - b[1].first).slice(0, limit).map(([id, r]) => ({
    client: addr.get(id) as string,
    hits: r.hits,
    names: r.names,
    firstSeen: new Date(r.first).toISOString(),
    lastSeen: new Date(r.last).toISOString(),
    topName: qname.get(r.top) as string
  }))
}
