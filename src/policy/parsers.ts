// Parsers for the list formats egressd reads: plain (the bundled lists and admins' own), hosts,
// adblock (its DNS-level subset), dnsmasq and cidr. Each turns text into Rules line by line and never
// throws: a bad line becomes a ParseIssue and is skipped. Lists reach a million lines, so the common
// path is char scans with one slice and one Rule per line: no per-line regex, split or IDN call.

import { isIP } from 'node:net'
import { parseCidr, toName } from './names.js'
import { qtypeNumber } from '../qtypes.js'
import type { ListFormat, ParsedList, ParseIssue, Rule, RuleKind, TypeFilter } from './rule.js'
import { compileSafeRegex } from './safe-regex.js'

/** Where one parse collects its results (one per parseList call). */
interface Out { readonly rules: Rule[], readonly issues: ParseIssue[], readonly sink: ((rule: Rule) => void) | undefined }

/** Parses one trimmed, non-empty line that is not a full-line comment. */
type LineParser = (text: string, line: number, out: Out) => void

export const ADBLOCK_UNSUPPORTED = 'unsupported adblock rule (only ||name^, |name^ and their @@ forms, with $dnstype= and $important)'

/** Names hosts files map to themselves, not blocklist entries: skipped without an issue. */
const HOSTS_SKIP: ReadonlySet<string> = new Set([
  'localhost', 'localhost.localdomain', 'local', 'broadcasthost', '0.0.0.0',
  'localhost4', 'localhost4.localdomain4', 'localhost6', 'localhost6.localdomain6',
  'ip6-localhost', 'ip6-loopback', 'ip6-localnet', 'ip6-mcastprefix',
  'ip6-allnodes', 'ip6-allrouters', 'ip6-allhosts'
])

/**
 * Parses a list in the given format. With `sink`, each rule is handed over as it is read and the
 * returned `rules` stays empty (a million-line list then never holds a million Rule objects at once).
 * All formats: `#` starts a comment (at the start of a line or
 * after whitespace), blank lines are skipped, CRLF and a leading UTF-8 BOM are accepted. Never throws.
 */
export function parseList (text: string, format: ListFormat, sink?: (rule: Rule) => void): ParsedList {
  const parse = PARSERS[format]
  const out: Out = { rules: [], issues: [], sink }
  const hashIsRule = format === 'adblock' // '##' starts a cosmetic rule there, reported as unsupported
  const len = text.length
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0
  let line = 0
  while (pos < len) {
    line++
    let nl = text.indexOf('\n', pos)
    if (nl < 0) nl = len
    let a = pos
    let b = nl
    pos = nl + 1
    while (a < b && isSpace(text.charCodeAt(a))) a++
    while (b > a && isSpace(text.charCodeAt(b - 1))) b--
    if (a === b) continue
    if (text.charCodeAt(a) === 0x23 && !hashIsRule) continue // '#'
    parse(text.slice(a, b), line, out)
  }
  return { rules: out.rules, issues: out.issues, lines: line }
}

/** `FILE:LINE: message` for each issue, for logs. */
export function formatIssues (issues: readonly ParseIssue[], file: string): string[] {
  return issues.map(i => `${file}:${i.line}: ${i.message}`)
}

function isSpace (c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0b || c === 0x0c
}

/** The line without a trailing comment: a '#' after a space or tab starts one. */
function content (text: string): string {
  let i = text.indexOf('#')
  while (i > 0) {
    const c = text.charCodeAt(i - 1)
    if (c === 0x20 || c === 0x09) {
      let end = i - 1
      while (end > 0 && isSpace(text.charCodeAt(end - 1))) end--
      return text.slice(0, end)
    }
    i = text.indexOf('#', i + 1)
  }
  return text
}

function rule (out: Out, kind: RuleKind, value: string, allow: boolean, line: number, text: string, types?: TypeFilter): void {
  // One object shape for every rule (same keys, same order).
  const rule: Rule = { kind, value, allow, line, text, types }
  if (out.sink === undefined) out.rules.push(rule)
  else out.sink(rule)
}

function issue (out: Out, line: number, message: string, text: string): void {
  out.issues.push({ line, message, text })
}

/** A name rule, or an issue with the name's own error (prefixed with `label` when given). */
function nameRule (out: Out, kind: RuleKind, input: string, allow: boolean, line: number, text: string, label?: string, types?: TypeFilter): void {
  const name = toName(input)
  if (typeof name === 'string') rule(out, kind, name, allow, line, text, types)
  else issue(out, line, label === undefined ? name.error : `${label}: ${name.error}`, text)
}

function cidrRule (out: Out, input: string, allow: boolean, line: number, text: string): void {
  const c = parseCidr(input)
  if ('error' in c) issue(out, line, c.error, text)
  else rule(out, 'cidr', c.value, allow, line, text)
}

/** The modifiers a rule may carry (after `$`), by list format. */
const MODIFIERS = { plain: ['dnstype'], adblock: ['dnstype', 'important'] } as const

/** A rule's modifiers, parsed: its type filter, or an error message. */
type Modifiers = { readonly types: TypeFilter | undefined } | { readonly error: string }

/**
 * Parses `dnstype=A|AAAA,important` (the text after a rule's `$`). `$dnstype` takes types by
 * mnemonic or number, all plain (the rule applies to them only) or all negated with `~` (to every
 * type but them).
 */
export function parseModifiers (text: string, known: readonly string[]): Modifiers {
  let types: TypeFilter | undefined
  for (const part of text.split(',')) {
    const eq = part.indexOf('=')
    const key = (eq < 0 ? part : part.slice(0, eq)).trim()
    if (!known.includes(key)) return { error: `unknown modifier '$${key}' (known: ${known.join(', ')})` }
    if (key !== 'dnstype') continue
    if (types !== undefined) return { error: '$dnstype given twice' }
    const values = eq < 0 ? [] : part.slice(eq + 1).split('|').map(v => v.trim()).filter(v => v !== '')
    if (values.length === 0) return { error: '$dnstype needs query types, e.g. $dnstype=A|AAAA or $dnstype=~MX|~TXT' }
    const except = values[0].startsWith('~')
    const numbers = new Set<number>()
    for (const v of values) {
      if (v.startsWith('~') !== except) return { error: `$dnstype=${values.join('|')}: either every type negated with '~' or none` }
      const n = qtypeNumber(except ? v.slice(1) : v)
      if (n === undefined) return { error: `$dnstype: '${except ? v.slice(1) : v}' is not a DNS record type` }
      numbers.add(n)
    }
    types = { types: [...numbers].sort((a, b) => a - b), except }
  }
  return { types }
}

/** Where a rule's modifiers start (its last '$' outside a /regex/), or -1. */
function modifierStart (s: string): number {
  const body = s.startsWith('@@') ? 2 : 0
  const from = s.charCodeAt(body) === 0x2f ? s.lastIndexOf('/') + 1 : 0
  return s.indexOf('$', from)
}

/**
 * Whether a plain line is meant as an address: digits, dots and '/' only, or hex digits, ':', '.'
 * and '/' with at least one ':' (then maybe '%zone'). Anything else is reported as a name
 * ('example.com:443': "not a hostname: contains ':'").
 */
function looksLikeAddress (s: string): boolean {
  let colon = false
  let hex = false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x3a) colon = true
    else if (c === 0x25) return colon // '%': an IPv6 zone index follows (parseCidr refuses it)
    else if ((c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) hex = true
    else if (!((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2f)) return false
  }
  return colon || !hex
}

/**
 * plain: `name` (suffix), `=name` (exact), `*.name` (wildcard), `/regex/`, an address or CIDR; any
 * of them prefixed with `@@` is an allow rule; a name rule may end in `$dnstype=TYPES` (after a
 * blank or not): it then applies to those query types only (see parseModifiers).
 */
function plainLine (text: string, line: number, out: Out): void {
  // Fast path, nearly every line of a big list: a bare name starting with a letter. A name holds no
  // '#', ':' or blank, so such a line has no comment and is no address: one scan decides it.
  const c0 = text.charCodeAt(0) | 0x20
  if (c0 >= 0x61 && c0 <= 0x7a) {
    const name = toName(text)
    if (typeof name === 'string') { rule(out, 'suffix', name, false, line, text); return }
  }
  let s = content(text)
  let types: TypeFilter | undefined
  const dollar = modifierStart(s)
  if (dollar >= 0) {
    const m = parseModifiers(s.slice(dollar + 1), MODIFIERS.plain)
    if ('error' in m) { issue(out, line, m.error, text); return }
    types = m.types
    s = s.slice(0, dollar).trimEnd()
  }
  let allow = false
  if (s.charCodeAt(0) === 0x40 && s.charCodeAt(1) === 0x40) { // '@@'
    allow = true
    s = s.slice(2)
    if (s.length === 0) { issue(out, line, "nothing after '@@'", text); return }
  }
  const c = s.charCodeAt(0)
  if (c === 0x3d) { // '='
    nameRule(out, 'exact', s.slice(1), allow, line, text, undefined, types)
  } else if (c === 0x2a) { // '*'
    if (s.charCodeAt(1) !== 0x2e) { issue(out, line, "a wildcard must be written '*.name'", text); return }
    nameRule(out, 'wildcard', s.slice(2), allow, line, text, undefined, types)
  } else if (c === 0x2f) { // '/'
    if (s.length < 2 || s.charCodeAt(s.length - 1) !== 0x2f) { issue(out, line, 'a regex must be written /pattern/ (no flags)', text); return }
    const pattern = s.slice(1, -1)
    const re = compileSafeRegex(pattern)
    if ('error' in re) issue(out, line, re.error, text)
    else rule(out, 'regex', pattern, allow, line, text, types)
  } else if (looksLikeAddress(s)) {
    if (types !== undefined) { issue(out, line, '$dnstype applies to name rules, not to addresses', text); return }
    cidrRule(out, s, allow, line, text)
  } else {
    nameRule(out, 'suffix', s, allow, line, text, undefined, types)
  }
}

function isBlank (c: number): boolean {
  return c === 0x20 || c === 0x09
}

/** hosts: `ADDRESS name [name...]`; every name a suffix rule, localhost-style names skipped. */
function hostsLine (text: string, line: number, out: Out): void {
  const s = content(text)
  const n = s.length
  let j = 0
  while (j < n && !isBlank(s.charCodeAt(j))) j++
  const addr = s.slice(0, j)
  if (addr !== '0.0.0.0' && addr !== '127.0.0.1' && isIP(addr) === 0) {
    issue(out, line, `not a hosts line: '${addr}' is not an IP address`, text)
    return
  }
  let names = 0
  let i = j
  for (;;) {
    while (i < n && isBlank(s.charCodeAt(i))) i++
    if (i >= n) break
    j = i
    while (j < n && !isBlank(s.charCodeAt(j))) j++
    const token = s.slice(i, j)
    i = j
    names++
    const name = toName(token)
    if (typeof name !== 'string') issue(out, line, `name '${token}': ${name.error}`, text)
    else if (!HOSTS_SKIP.has(name)) rule(out, 'suffix', name, false, line, text)
  }
  if (names === 0) issue(out, line, 'hosts line has an address but no names', text)
}

/** adblock: `||name^` (suffix), `|name^` (exact), `@@` for allow, `$important` allowed. */
function adblockLine (text: string, line: number, out: Out): void {
  const c0 = text.charCodeAt(0)
  if (c0 === 0x21) return // '!' comment
  if (c0 === 0x5b && text.charCodeAt(text.length - 1) === 0x5d) return // '[Adblock Plus 2.0]'
  if (c0 === 0x23) { // '#': a comment, unless a cosmetic rule ('##', '#@#', '#?#', '#$#', '#%#')
    const c1 = text.charCodeAt(1)
    if (c1 !== 0x23 && c1 !== 0x40 && c1 !== 0x3f && c1 !== 0x24 && c1 !== 0x25) return
    issue(out, line, ADBLOCK_UNSUPPORTED, text)
    return
  }
  let s = content(text)
  let allow = false
  if (s.startsWith('@@')) {
    allow = true
    s = s.slice(2)
  }
  let kind: RuleKind
  if (s.startsWith('||')) {
    kind = 'suffix'
    s = s.slice(2)
  } else if (s.startsWith('|')) {
    kind = 'exact'
    s = s.slice(1)
  } else {
    issue(out, line, ADBLOCK_UNSUPPORTED, text)
    return
  }
  let types: TypeFilter | undefined
  const dollar = s.indexOf('$')
  if (dollar >= 0) {
    const m = parseModifiers(s.slice(dollar + 1), MODIFIERS.adblock)
    if ('error' in m) { issue(out, line, `${ADBLOCK_UNSUPPORTED}: ${m.error}`, text); return }
    types = m.types
    s = s.slice(0, dollar)
  }
  if (s.endsWith('^|')) s = s.slice(0, -1)
  if (!s.endsWith('^')) { issue(out, line, ADBLOCK_UNSUPPORTED, text); return }
  s = s.slice(0, -1)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    // Paths, wildcards, separators and anchors inside: not a plain name.
    if (c === 0x2f || c === 0x2a || c === 0x5e || c === 0x7c || c === 0x3a || c === 0x3f) {
      issue(out, line, ADBLOCK_UNSUPPORTED, text)
      return
    }
  }
  nameRule(out, kind, s, allow, line, text, undefined, types)
}

/**
 * dnsmasq: `address=/name[/name...]/[address]`, `server=/name[/name...]/[anything]` and
 * `local=/name[/name...]/`; every name a suffix rule.
 */
function dnsmasqLine (text: string, line: number, out: Out): void {
  const s = content(text)
  const eq = s.indexOf('=')
  const key = eq < 0 ? s : s.slice(0, eq)
  if (key !== 'address' && key !== 'server' && key !== 'local') {
    issue(out, line, `unsupported dnsmasq directive '${key}' (only address=/name/, server=/name/ and local=/name/)`, text)
    return
  }
  const last = s.lastIndexOf('/')
  if (s.charCodeAt(eq + 1) !== 0x2f || last === eq + 1) {
    issue(out, line, `expected ${key}=/name/...`, text)
    return
  }
  const value = s.slice(last + 1)
  if (key === 'address' && value !== '' && value !== '#' && isIP(value) === 0) {
    issue(out, line, `address=/.../${value}: '${value}' is not an IP address`, text)
    return
  }
  let from = eq + 2
  while (from <= last) {
    const to = s.indexOf('/', from)
    const token = s.slice(from, to)
    from = to + 1
    if (token === '') issue(out, line, "empty name between '/'", text)
    else if (token === '#') issue(out, line, "'#' (every name) is not supported", text)
    else nameRule(out, 'suffix', token, false, line, text, `name '${token}'`)
  }
}

/** cidr: one address or CIDR per line. */
function cidrLine (text: string, line: number, out: Out): void {
  cidrRule(out, content(text), false, line, text)
}

const PARSERS: Readonly<Record<ListFormat, LineParser>> = Object.freeze({
  plain: plainLine,
  hosts: hostsLine,
  adblock: adblockLine,
  dnsmasq: dnsmasqLine,
  cidr: cidrLine
})
