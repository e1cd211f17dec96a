// Fuzzing the block-log search filters (src/store/block-filter.ts parseFilter, parseTime,
// eventMatches): any parameters give a BlockFilter or a QueryError naming one of the parameters;
// a filter is in normal form (from <= to, normalized domain, qtype in range, client range ordered);
// an event built to fit a filter matches it, and one changed in a filtered field does not.

import t from 'tap'
import { QueryError } from '../../src/errors.js'
import { toName, ipv4Text } from '../../src/policy/names.js'
import { FILTER_KEYS, eventMatches, parseFilter, parseTime, type BlockFilter, type FilterParams } from '../../src/store/block-filter.js'
import type { BlockEvent } from '../../src/store/block-event.js'
import { fc, fuzz } from './harness.js'

const TARGET = 'block-filter'
const NOW = Date.UTC(2030, 0, 1)

const TEXT = [
  '', ' ', 'now', ' now ', '-24h', '-7d', '-30m', '-90s', '-2w', '-0s', '-999999999w', '-1y', '+1h', '24h', '-1.5h', '0', '1700000000000', '999999999999999', '9999999999999999',
  '2024-05-01', '2024-05-01T10:00:00Z', '2024-05-01 10:00', '2024-05-01T10:00:00.123456789+02:00', '2024-13-45', '2024-02-30T25:61:61Z', '0000-00-00', '2024-05-01T10:00:00+0200',
  '10.0.0.1', '10.0.0.0/8', '10.1.2.3/8', 'fd00::/64', '::ffff:10.0.0.1', '::ffff:10.0.0.0/104', '1.2.3.4/33', '1.2.3.4/', 'fe80::1%eth0', '0.0.0.0/0', '::/0', '010.0.0.1',
  'telegram.org', 'Telegram.ORG.', '.telegram.org', 'a..b', 'пример.рф', 'xn--e1afmkfd.xn--p1ai', '*.x', 'a b', 'x'.repeat(300), 'a.'.repeat(130),
  'A', 'AAAA', 'aaaa', '28', '65535', '65536', 'TYPE65', 'type99999', 'HTTPS', 'ANY', '-1', '1e3', '0x1c', 'true', 'false', '1', 'yes',
  'telegram', 'doh-bypass', 'nxdomain', 'monitor', 'allow', 'default', '__proto__', 'constructor', 'toString', '\u0000', '\ud800', '%00'
]

const textArb: fc.Arbitrary<string> = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...TEXT) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }) })

const paramsArb: fc.Arbitrary<FilterParams> = fc.record({
  from: textArb,
  to: textArb,
  client: textArb,
  group: textArb,
  domain: textArb,
  suffix: fc.oneof(fc.boolean(), textArb),
  category: textArb,
  action: textArb,
  qtype: fc.oneof(textArb, fc.integer({ min: -10, max: 70000 }))
}, { requiredKeys: [] })

function v6Text (v: bigint): string {
  const g: string[] = []
  for (let i = 7; i >= 0; i--) g.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16))
  return g.join(':')
}

/** An event that fits `f` in every field it filters on. */
function fitting (f: BlockFilter): BlockEvent {
  const ts = f.from ?? (f.to !== undefined ? f.to - 1 : NOW)
  const client = f.client === undefined ? '192.0.2.1' : f.client.family === 4 ? ipv4Text(Number(f.client.end)) : v6Text(f.client.end)
  return {
    ts,
    client,
    group: f.group ?? 'default',
    qname: f.domain === undefined ? 'x.example' : f.suffix === true ? `sub.${f.domain}` : f.domain,
    qtype: f.qtype ?? 1,
    matched: 'qname',
    value: 'x',
    category: f.category ?? 'telegram',
    action: (f.action ?? 'nxdomain') as BlockEvent['action']
  }
}

fuzz(t, {
  target: TARGET,
  name: 'any-params',
  runs: 3000,
  arb: paramsArb,
  check: p => {
    let f: BlockFilter
    try {
      f = parseFilter(p, NOW)
    } catch (err) {
      if (!(err instanceof QueryError) || err.code !== 'EGRESSD_ERR_QUERY_INVALID') throw new Error(`threw ${(err as Error)?.stack ?? String(err)}`)
      if (!(FILTER_KEYS as readonly string[]).includes(err.parameter)) throw new Error(`QueryError names ${err.parameter}`)
      if (!err.message.startsWith(`${err.parameter}: `)) throw new Error(`message ${err.message}`)
      return
    }
    for (const k of Object.keys(f)) if (!(FILTER_KEYS as readonly string[]).includes(k)) throw new Error(`filter key ${k}`)
    if (f.from !== undefined && !Number.isFinite(f.from)) throw new Error(`from ${f.from}`)
    if (f.to !== undefined && !Number.isFinite(f.to)) throw new Error(`to ${f.to}`)
    if (f.from !== undefined && f.to !== undefined && f.from > f.to) throw new Error('from after to')
    if (f.domain !== undefined && toName(f.domain) !== f.domain) throw new Error(`domain ${f.domain} is not normal`)
    if (f.suffix === true && f.domain === undefined) throw new Error('suffix without domain')
    if (f.qtype !== undefined && !(Number.isInteger(f.qtype) && f.qtype >= 0 && f.qtype <= 65535)) throw new Error(`qtype ${f.qtype}`)
    if (f.client !== undefined && (f.client.start > f.client.end || (f.client.family !== 4 && f.client.family !== 6))) throw new Error('client range')
    // An event fitting the filter matches (an empty range from == to matches nothing).
    const e = fitting(f)
    const empty = f.from !== undefined && f.to !== undefined && f.from === f.to
    if (eventMatches(f, e) === empty) throw new Error(`fitting event ${JSON.stringify(e)} ${empty ? 'matches an empty range' : 'does not match'} ${JSON.stringify(f, (_k, v) => typeof v === 'bigint' ? String(v) : v)}`)
    // Changing one filtered field makes it not match.
    if (!empty) {
      const off: Array<Partial<BlockEvent>> = []
      if (f.group !== undefined) off.push({ group: f.group + 'x' })
      if (f.qtype !== undefined) off.push({ qtype: (f.qtype + 1) % 65536 })
      if (f.domain !== undefined) off.push({ qname: `x${f.domain}` })
      if (f.to !== undefined) off.push({ ts: f.to })
      for (const o of off) if (eventMatches(f, { ...e, ...o })) throw new Error(`event changed by ${JSON.stringify(o)} still matches`)
    }
  }
})

fuzz(t, {
  target: TARGET,
  name: 'times',
  runs: 2000,
  arb: fc.oneof(
    // Further back than a Date holds (-8.64e15 ms) is refused.
    fc.tuple(fc.integer({ min: 0, max: 999999999 }), fc.constantFrom('s', 'm', 'h', 'd', 'w')).map(([n, u]) => {
      const ms = NOW - n * { s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 }[u]
      return { text: `-${n}${u}`, want: ms < -8.64e15 ? 'refused' as const : ms }
    }),
    fc.date({ min: new Date(Date.UTC(1970, 0, 1)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }).map(d => ({ text: d.toISOString(), want: d.getTime() })),
    fc.integer({ min: 0, max: 999999999999999 }).map(n => ({ text: String(n), want: n })),
    textArb.map(text => ({ text, want: undefined as number | 'refused' | undefined }))
  ),
  check: ({ text, want }) => {
    let got: number
    try {
      got = parseTime(text, NOW, 'from')
    } catch (err) {
      if (!(err instanceof QueryError) || err.parameter !== 'from') throw new Error(`threw ${(err as Error)?.stack ?? String(err)}`)
      if (typeof want === 'number') throw new Error(`${JSON.stringify(text)} refused: ${err.message}`)
      return
    }
    if (want === 'refused') throw new Error(`${JSON.stringify(text)} gave ${got}, want a refusal`)
    if (!Number.isFinite(got) || Math.abs(got) > 8.64e15) throw new Error(`${JSON.stringify(text)} gave ${got}`)
    if (want !== undefined && got !== want) throw new Error(`${JSON.stringify(text)} gave ${got}, want ${want}`)
  }
})
