// Fuzzing the list parsers (src/policy/parsers.ts: plain, hosts, adblock, dnsmasq, cidr) on text
// built from each format's own tokens, odd Unicode and random characters: parseList never throws,
// counts lines right, every rule's value is in normal form (names re-normalize to themselves, CIDRs
// re-parse to themselves, regexes compile), the sink and array modes agree, each line parses the
// same alone as in the list, and valid lines written per format give exactly the expected rules.

import t from 'tap'
import { parseList } from '../../src/policy/parsers.js'
import { parseCidr, toName } from '../../src/policy/names.js'
import { compileSafeRegex } from '../../src/policy/safe-regex.js'
import type { ListFormat, ParsedList, Rule } from '../../src/policy/rule.js'
import { fc, fuzz } from './harness.js'
import { hostChars } from './dns-gen.js'

const TARGET = 'list-parsers'
const FORMATS: readonly ListFormat[] = ['plain', 'hosts', 'adblock', 'dnsmasq', 'cidr']

const TOKENS = [
  '||', '|', '^', '^|', '@@', '$important', '$', '$third-party', '/', '//', '=', '*.', '*', '#', ' #', '##', '#@#', '#?#', '!', '[', ']',
  ' ', '\t', '\r', '\v', '.', '..', '0.0.0.0', '127.0.0.1', '::', '::1', '::ffff:1.2.3.4', '1.2.3.4/24', '/33', '/128', '/0', '%eth0', ':', ':443',
  'xn--', 'xn--p1ai', 'xn--e1afmkfd', 'пример', 'рф', 'ß', '\u00ad', '\u200d', 'ǅ', 'İ', 'ＡＢＣ', '。', '\u0000', '\u2028', '\ud800',
  'address=', 'server=', 'local=', 'address=/', 'localhost', 'broadcasthost', '\ufeff', 'a', 'A', 'Z', '-', '_', '(', ')', '+', '?', '{1,3}',
  '\\', 'ffff:', '.com', '[a-z]', '(a+)+', '.*', 'telegram.org', 'WWW.Example.COM', 'fe80::1', '10.0.0.0/8', '2001:db8::/32', '0x7f.1', '1e3',
  'a'.repeat(63), 'b'.repeat(64), '@', '@@||', '||a.b^$important', '|x^|', '-.', '.-'
]

/** One line from the formats' own tokens, host characters and anything else. */
const lineArb: fc.Arbitrary<string> = fc.array(fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...TOKENS) },
  { weight: 2, arbitrary: hostChars(1, 12).map(b => Buffer.from(b).toString('latin1')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) }
), { maxLength: 10 }).map(parts => parts.join('').replace(/\n/g, ''))

const textArb: fc.Arbitrary<string> = fc.tuple(
  fc.boolean(), fc.array(lineArb, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.boolean()
).map(([bom, lines, nl, final]) => (bom ? '\ufeff' : '') + lines.join(nl) + (final && lines.length > 0 ? nl : ''))

const KINDS = new Set(['suffix', 'exact', 'wildcard', 'regex', 'cidr'])

function linesIn (text: string): number {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  if (s === '') return 0
  const n = s.split('\n').length
  return s.endsWith('\n') ? n - 1 : n
}

function checkParsed (text: string, format: ListFormat, p: ParsedList): void {
  const lines = linesIn(text)
  if (p.lines !== lines) throw new Error(`lines ${p.lines}, want ${lines}`)
  const raw = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split('\n')
  for (const r of p.rules) {
    if (!KINDS.has(r.kind)) throw new Error(`kind ${r.kind}`)
    if (r.line < 1 || r.line > lines || !Number.isInteger(r.line)) throw new Error(`rule line ${r.line}`)
    if (r.text === '' || !raw[r.line - 1].includes(r.text)) throw new Error(`rule text ${JSON.stringify(r.text)} is not from line ${r.line}`)
    if (format !== 'plain' && (r.kind === 'regex' || r.kind === 'wildcard')) throw new Error(`${r.kind} rule from ${format}`)
    if (format === 'cidr' && r.kind !== 'cidr') throw new Error(`${r.kind} rule from cidr`)
    if (r.kind === 'cidr') {
      const c = parseCidr(r.value)
      if ('error' in c || c.value !== r.value) throw new Error(`cidr value ${r.value} is not normal (${JSON.stringify(c)})`)
    } else if (r.kind === 'regex') {
      if ('error' in compileSafeRegex(r.value)) throw new Error(`regex ${r.value} does not compile`)
    } else {
      if (toName(r.value) !== r.value || !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(r.value) || r.value.length > 253) throw new Error(`name ${JSON.stringify(r.value)} is not normal`)
    }
  }
  for (const i of p.issues) {
    if (i.line < 1 || i.line > lines) throw new Error(`issue line ${i.line}`)
    if (typeof i.message !== 'string' || i.message === '') throw new Error('issue without a message')
  }
}

const view = (r: Rule): string => `${r.kind}|${r.value}|${r.allow}|${r.line}|${r.text}`

for (const format of FORMATS) {
  fuzz(t, {
    target: TARGET,
    name: `${format}-any-text`,
    runs: 600,
    arb: textArb,
    check: text => {
      const p = parseList(text, format)
      checkParsed(text, format, p)
      // The sink mode hands over the same rules, in order.
      const sunk: Rule[] = []
      const q = parseList(text, format, r => { sunk.push(r) })
      if (q.rules.length !== 0 || sunk.map(view).join('\n') !== p.rules.map(view).join('\n')) throw new Error('sink mode differs')
      // Each line alone parses as it does in the list.
      const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
      const alone: string[] = []
      const aloneIssues: string[] = []
      body.split('\n').forEach((line, i) => {
        const one = parseList(i === 0 && text.charCodeAt(0) === 0xfeff ? '\ufeff' + line : ' ' + line, format)
        for (const r of one.rules) alone.push(view({ ...r, line: i + 1 }))
        for (const x of one.issues) aloneIssues.push(`${i + 1}|${x.message}`)
      })
      if (alone.join('\n') !== p.rules.map(view).join('\n')) throw new Error(`line by line: ${JSON.stringify(alone)} != ${JSON.stringify(p.rules.map(view))}`)
      if (aloneIssues.join('\n') !== p.issues.map(x => `${x.line}|${x.message}`).join('\n')) throw new Error('issues differ line by line')
    }
  })
}

/** A valid host name: 1-4 labels of host characters, under 253 characters. */
const nameArb = fc.array(hostChars(1, 20).map(b => Buffer.from(b).toString('latin1')), { minLength: 1, maxLength: 4 }).map(l => l.join('.'))

const v4Arb = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))

function v4Cidr (a: number[], len: number): string {
  const v = ((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) >>> 0
  const masked = len === 0 ? 0 : (v & (0xffffffff << (32 - len))) >>> 0
  return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${len}`
}

fuzz(t, {
  target: TARGET,
  name: 'valid-lines',
  runs: 800,
  arb: fc.record({
    names: fc.array(nameArb, { minLength: 1, maxLength: 4 }),
    allow: fc.boolean(),
    comment: fc.boolean(),
    addr: v4Arb,
    len: fc.integer({ min: 0, max: 32 })
  }),
  check: s => {
    // Lines of digits and dots are addresses in plain lists; hosts files skip localhost-style names.
    const names = s.names.filter(n => !/^[0-9.]+$/.test(n) && !['localhost', 'local', 'broadcasthost'].includes(n.toLowerCase()))
    const lower = names.map(n => n.toLowerCase())
    const tail = s.comment ? '  # a comment' : ''
    const cases: Array<[ListFormat, string, string[]]> = [
      ['plain', names.map(n => `${s.allow ? '@@' : ''}${n}${tail}`).join('\n'), lower.map(n => `suffix|${n}|${s.allow}`)],
      ['plain', names.map(n => `=${n}`).join('\r\n'), lower.map(n => `exact|${n}|false`)],
      ['plain', names.map(n => `*.${n}`).join('\n'), lower.map(n => `wildcard|${n}|false`)],
      ['hosts', `0.0.0.0 ${names.join(' ')}${tail}`, lower.map(n => `suffix|${n}|false`)],
      ['adblock', names.map(n => `${s.allow ? '@@' : ''}||${n}^`).join('\n'), lower.map(n => `suffix|${n}|${s.allow}`)],
      ['adblock', names.map(n => `|${n}^$important`).join('\n'), lower.map(n => `exact|${n}|false`)],
      ['dnsmasq', `address=/${names.join('/')}/0.0.0.0${tail}`, lower.map(n => `suffix|${n}|false`)],
      ['dnsmasq', names.map(n => `server=/${n}/`).join('\n'), lower.map(n => `suffix|${n}|false`)],
      ['cidr', `${s.addr.join('.')}/${s.len}${tail}`, [`cidr|${v4Cidr(s.addr, s.len)}|false`]],
      ['plain', `${s.addr.join('.')}/${s.len}`, [`cidr|${v4Cidr(s.addr, s.len)}|false`]]
    ]
    for (const [format, text, want] of cases) {
      if (text === '' || (names.length === 0 && format !== 'cidr' && format !== 'plain')) continue
      const p = parseList(text, format)
      checkParsed(text, format, p)
      const got = p.rules.map(r => `${r.kind}|${r.value}|${r.allow}`)
      if (p.issues.length > 0 || got.join(',') !== want.join(',')) throw new Error(`${format} ${JSON.stringify(text)}: ${JSON.stringify(got)} ${JSON.stringify(p.issues)}, want ${JSON.stringify(want)}`)
    }
  }
})

fuzz(t, {
  target: TARGET,
  name: 'long-lines',
  runs: 40,
  scale: 0.005,
  maxMsPerInput: 1000,
  arb: fc.tuple(fc.constantFrom(...FORMATS), fc.constantFrom(...TOKENS, 'a.', 'a', '@@||', '/a', '*.'), fc.integer({ min: 1000, max: 60000 }), fc.constantFrom('', '\n', ' ')),
  check: ([format, token, n, sep]) => {
    const text = (token + sep).repeat(Math.ceil(n / (token.length + sep.length)))
    checkParsed(text, format, parseList(text, format))
  }
})
