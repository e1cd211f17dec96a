// Search filters for the block log, shared by the API, the CLI and the live tail: parsing (with a
// QueryError naming the bad parameter) into a plain BlockFilter, and matching one event against
// it in memory (the live tail). The SQL side is in block-search.ts.
//
//   from, to   ISO 8601 ('2024-05-01T10:00:00Z', '2024-05-01'), epoch milliseconds, or relative to
//              now: '-24h', '-7d', '-30m', '-90s', '-2w', 'now'. from inclusive, to exclusive.
//   client     an address (exact) or a CIDR ('10.1.0.0/16', 'fd00::/64')
//   group, category, action   exact ('nxdomain', 'monitor', 'allow', ...). An action must be one of
//              FILTER_ACTIONS. With the daemon's FilterValues, a category or group must name one
//              the policy in force knows (or, for searches and statistics, one the store holds, so
//              events of a category or group since removed stay searchable): checkFilterValues.
//   domain     a name, exact; with suffix=true the name and every name below it
//   qtype      a mnemonic ('AAAA') or a number ('28')
//   matched    what matched, one of MATCH_NAMES: qname, cname, address, none (allowed queries) or
//              firewall (connection attempts the firewall rejected)

import { QueryError } from '../errors.js'
import { normalizeName, parseCidr, parseIp } from '../policy/names.js'
import { qtypeNumber } from '../qtypes.js'
import { MATCH_NAMES, type BlockEvent, type EventMatch } from './block-event.js'

export interface FilterParams {
  readonly from?: string
  readonly to?: string
  readonly client?: string
  readonly group?: string
  readonly domain?: string
  readonly suffix?: boolean | string
  readonly category?: string
  readonly action?: string
  readonly qtype?: string | number
  readonly matched?: string
}

export interface ClientMatch {
  /** The text as given: tried as an exact stored address first. */
  readonly text: string
  readonly cidr: boolean
  readonly family: 4 | 6
  readonly start: bigint
  readonly end: bigint
}

export interface BlockFilter {
  readonly from?: number
  readonly to?: number
  readonly client?: ClientMatch
  readonly group?: string
  readonly domain?: string
  readonly suffix?: boolean
  readonly category?: string
  readonly action?: string
  readonly qtype?: number
  /** What matched: qname, cname, address, none (allowed queries) or firewall (rejected connections). */
  readonly matched?: EventMatch
}

/** Every action a stored event can have: the block actions, and allow (store.logAllQueries). */
export const FILTER_ACTIONS: readonly string[] = ['nxdomain', 'refused', 'nodata', 'null', 'sinkhole', 'monitor', 'allow', 'block']
const ACTION_SET: ReadonlySet<string> = new Set(FILTER_ACTIONS)

/** The categories and client groups of the policy in force, which category= and group= must name. */
export interface FilterValues {
  readonly categories: ReadonlySet<string>
  readonly groups: ReadonlySet<string>
}

/** The category and group filters, by parameter name and FilterValues key. */
const NAMED = [['category', 'categories'], ['group', 'groups']] as const

export const FILTER_KEYS = ['from', 'to', 'client', 'group', 'domain', 'suffix', 'category', 'action', 'qtype', 'matched'] as const

const UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
/** The largest time a Date holds, ms from the epoch either way (ECMA-262 21.4.1.1). */
const MAX_TIME = 8.64e15

/** ISO 8601, epoch ms, 'now' or '-<n><s|m|h|d|w>' → epoch ms; throws a QueryError naming `parameter`. */
export function parseTime (text: string, now: number, parameter: string): number {
  const t = text.trim()
  if (t === 'now') return now
  const rel = /^-(\d{1,9})([smhdw])$/.exec(t)
  if (rel !== null) {
    // Beyond what a Date holds (±8.64e15 ms, about 273,000 years): no exact arithmetic, and
    // new Date(ms).toISOString() throws where results and statistics print their range.
    const ms = now - Number(rel[1]) * UNITS[rel[2]]
    if (ms < -MAX_TIME) throw new QueryError(parameter, `too far back: ${JSON.stringify(text)} (at most about 273,000 years)`)
    return ms
  }
  if (/^\d{1,15}$/.test(t)) return Number(t)
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'))
    if (Number.isFinite(ms)) return ms
  }
  throw new QueryError(parameter, `not a time: ${JSON.stringify(text)} (ISO 8601 like 2024-05-01T10:00:00Z, epoch ms, or relative like -24h, -7d)`)
}

function parseBool (v: boolean | string, parameter: string): boolean {
  if (typeof v === 'boolean') return v
  if (v === 'true' || v === '1') return true
  if (v === 'false' || v === '0' || v === '') return false
  throw new QueryError(parameter, 'must be true or false')
}

/** Validates and normalizes filter parameters; `now` resolves relative times. */
export function parseFilter (p: FilterParams, now: number): BlockFilter {
  const f: { -readonly [K in keyof BlockFilter]: BlockFilter[K] } = {}
  if (p.from !== undefined) f.from = parseTime(p.from, now, 'from')
  if (p.to !== undefined) f.to = parseTime(p.to, now, 'to')
  if (f.from !== undefined && f.to !== undefined && f.from > f.to) throw new QueryError('from', 'must not be after to')
  if (p.client !== undefined) {
    const text = p.client.trim()
    const c = parseCidr(text)
    if ('error' in c) throw new QueryError('client', `not an address or CIDR: ${c.error}`)
    f.client = { text, cidr: text.includes('/'), family: c.family, start: c.start, end: c.end }
  }
  if (p.group !== undefined) f.group = p.group
  if (p.category !== undefined) f.category = p.category
  if (p.action !== undefined) {
    if (!ACTION_SET.has(p.action)) throw new QueryError('action', `unknown action ${JSON.stringify(p.action)}; valid: ${FILTER_ACTIONS.join(', ')}`)
    f.action = p.action
  }
  if (p.matched !== undefined) {
    const m = MATCH_NAMES.find(x => x === p.matched)
    if (m === undefined) throw new QueryError('matched', `unknown matched ${JSON.stringify(p.matched)}; valid: ${MATCH_NAMES.join(', ')}`)
    f.matched = m
  }
  if (p.domain !== undefined) {
    const n = normalizeName(p.domain)
    if ('error' in n) throw new QueryError('domain', `not a domain name: ${n.error}`)
    f.domain = n.name
  }
  if (p.suffix !== undefined) {
    f.suffix = parseBool(p.suffix, 'suffix')
    if (f.suffix && f.domain === undefined) throw new QueryError('suffix', 'needs a domain')
  }
  if (p.qtype !== undefined) {
    const n = qtypeNumber(String(p.qtype))
    if (n === undefined) throw new QueryError('qtype', `not a query type: ${JSON.stringify(p.qtype)}`)
    f.qtype = n
  }
  return f
}

/**
 * Throws a QueryError when the filter's category or group names none of `values` and `stored`
 * (when given: whether the store holds events of that category, or that group name) says no
 * either. The message lists the valid values, so a typo is not read as "no activity".
 */
export async function checkFilterValues (
  f: Pick<BlockFilter, 'category' | 'group'>,
  values: FilterValues | undefined,
  stored?: (parameter: 'category' | 'group', value: string) => Promise<boolean>
): Promise<void> {
  if (values === undefined) return
  for (const [parameter, key] of NAMED) {
    const v = f[parameter]
    if (v === undefined || values[key].has(v)) continue
    if (stored !== undefined && await stored(parameter, v)) continue
    const valid = [...values[key]].sort()
    throw new QueryError(parameter, `unknown ${parameter} ${JSON.stringify(v)}; valid: ${valid.join(', ')}${stored !== undefined ? ' (or one found in the stored events)' : ''}`)
  }
}

/** Whether an address (as stored) is in the filter's client range. */
export function clientMatches (m: ClientMatch, addr: string): boolean {
  if (addr === m.text) return true
  const ip = parseIp(addr)
  if (ip === undefined) return false
  let { family, value } = ip
  if (family === 6 && value >> 32n === 0xffffn) { family = 4; value &= 0xffffffffn }
  return family === m.family && value >= m.start && value <= m.end
}

/** The live tail's filter: the same semantics as the SQL search, on one event. */
export function eventMatches (f: BlockFilter, e: BlockEvent): boolean {
  if (f.from !== undefined && e.ts < f.from) return false
  if (f.to !== undefined && e.ts >= f.to) return false
  if (f.group !== undefined && e.group !== f.group) return false
  if (f.category !== undefined && e.category !== f.category) return false
  if (f.action !== undefined && e.action !== f.action) return false
  if (f.qtype !== undefined && e.qtype !== f.qtype) return false
  if (f.matched !== undefined && e.matched !== f.matched) return false
  if (f.domain !== undefined) {
    if (f.suffix === true) {
      if (e.qname !== f.domain && !e.qname.endsWith('.' + f.domain)) return false
    } else if (e.qname !== f.domain) return false
  }
  if (f.client !== undefined && !clientMatches(f.client, e.client)) return false
  return true
}
