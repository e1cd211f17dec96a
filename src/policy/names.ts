// Host names and address ranges as lists write them: normalization to the lower-case A-label form
// the policy engine matches on, and CIDR parsing to a normalized string and a bigint range. Char
// scans rather than regexes: the list parsers call these once per line on million-line lists.

import { isIP } from 'node:net'
import { domainToASCII } from 'node:url'

const MAX_NAME = 253
const MAX_LABEL = 63

/** Why an input is not a name or an address range. */
export interface NameError { readonly error: string }

/** A normalized address range: `value` is 'addr/len'; `start`..`end` are the first and last address. */
export interface Cidr {
  readonly value: string
  readonly family: 4 | 6
  readonly start: bigint
  readonly end: bigint
}

const EMPTY_NAME: NameError = Object.freeze({ error: 'empty name' })
const EMPTY_LABEL: NameError = Object.freeze({ error: 'empty label (leading or doubled dot)' })
const LONG_LABEL: NameError = Object.freeze({ error: `label longer than ${MAX_LABEL} characters` })
const LONG_NAME: NameError = Object.freeze({ error: `name longer than ${MAX_NAME} characters` })
const BAD_IDN: NameError = Object.freeze({ error: 'not a valid internationalized name' })

/**
 * Normalizes a name as lists write it: trims, lower-cases, drops one trailing dot, converts IDN
 * U-labels to A-labels (`пример.рф` → `xn--e1afmkfd.xn--p1ai`) and validates it: labels of 1-63
 * characters from [a-z0-9-_] (leading and trailing hyphens are accepted: real lists contain them),
 * at most 253 characters in all.
 */
export function normalizeName (input: string): { name: string } | NameError {
  const r = toName(input.trim())
  return typeof r === 'string' ? { name: r } : r
}

/**
 * The hot-path form of normalizeName for input that is already trimmed: the name, or why it is not
 * one. Returns `s` itself (no allocation) when it is already normalized; calls domainToASCII only
 * for names with non-ASCII characters.
 */
export function toName (s: string): string | NameError {
  let end = s.length
  if (end > 0 && s.charCodeAt(end - 1) === 0x2e) end--
  if (end === 0) return EMPTY_NAME
  let label = 0
  let upper = false
  let wide = false
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i)
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) {
      label++
    } else if (c === 0x2e) {
      if (label === 0) return EMPTY_LABEL
      if (label > MAX_LABEL && !wide) return LONG_LABEL
      label = 0
    } else if (c >= 0x41 && c <= 0x5a) {
      upper = true
      label++
    } else if (c >= 0x80) {
      wide = true
      label++
    } else {
      return { error: `not a hostname: contains ${quoteChar(c)}` }
    }
  }
  if (label === 0) return EMPTY_LABEL
  if (wide) {
    // U-labels: the WHATWG host parser maps, lower-cases and punycodes them ('' when invalid).
    // Its output is ASCII, so the recursive check takes the fast path.
    const ascii = domainToASCII(s.slice(0, end))
    if (ascii === '' || hasWide(ascii)) return BAD_IDN
    return toName(ascii)
  }
  if (label > MAX_LABEL) return LONG_LABEL
  if (end > MAX_NAME) return LONG_NAME
  const name = end === s.length ? s : s.slice(0, end)
  return upper ? name.toLowerCase() : name
}

function hasWide (s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return true
  return false
}

/** `'/'` for printable ASCII, `U+0009` for the rest, for messages. */
export function quoteChar (c: number): string {
  return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : 'U+' + c.toString(16).toUpperCase().padStart(4, '0')
}

/**
 * Parses an IPv4 or IPv6 address or CIDR. A bare address is a /32 or /128; host bits are cleared
 * (`10.1.2.3/8` → `10.0.0.0/8`); an IPv4-mapped IPv6 range with a prefix of at least 96 becomes the
 * IPv4 range (`::ffff:1.2.3.0/120` → `1.2.3.0/24`). IPv6 is written compressed, lower-case (RFC 5952).
 */
export function parseCidr (text: string): Cidr | NameError {
  const s = text.trim()
  const slash = s.indexOf('/')
  const addr = slash < 0 ? s : s.slice(0, slash)
  if (addr.includes('%')) return { error: `zone index not allowed in address '${addr}'` }
  let family: 4 | 6
  const ip = isIP(addr)
  if (ip === 4) family = 4
  else if (ip === 6) family = 6
  else return { error: `not an IP address: '${addr}'` }
  let bits = family === 4 ? 32 : 128
  let prefix = bits
  if (slash >= 0) {
    const p = s.slice(slash + 1)
    if (!isDecimal(p)) return { error: p === '' ? 'missing prefix length after \'/\'' : `bad prefix length '${p}'` }
    prefix = Number(p)
    if (prefix > bits) return { error: `prefix length ${prefix} is out of range for IPv${family}` }
  }
  let v = family === 4 ? v4ToBig(addr) : v6ToBig(addr)
  if (family === 6 && prefix >= 96 && v >> 32n === 0xffffn) {
    family = 4
    bits = 32
    prefix -= 96
    v &= 0xffffffffn
  }
  const host = (1n << BigInt(bits - prefix)) - 1n
  const start = v & (((1n << BigInt(bits)) - 1n) ^ host)
  const end = start | host
  const value = (family === 4 ? v4ToText(start) : v6ToText(start)) + '/' + prefix
  return { value, family, start, end }
}

/** Dotted-quad text of a 32-bit IPv4 value. */
export function ipv4Text (x: number): string {
  return `${x >>> 24}.${(x >>> 16) & 0xff}.${(x >>> 8) & 0xff}.${x & 0xff}`
}

/** An IP address (no prefix; a zone id is ignored) as its family and 32/128-bit value; undefined if not one. */
export function parseIp (text: string): { family: 4 | 6, value: bigint } | undefined {
  const zone = text.indexOf('%')
  const s = zone < 0 ? text : text.slice(0, zone)
  const ip = isIP(s)
  if (ip === 4) return { family: 4, value: v4ToBig(s) }
  if (ip === 6) return { family: 6, value: v6ToBig(s) }
  return undefined
}

function isDecimal (s: string): boolean {
  if (s.length === 0 || s.length > 3) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

// Both parsers assume node:net's isIP has accepted the text.
function v4ToBig (s: string): bigint {
  const p = s.split('.')
  return BigInt(((Number(p[0]) * 256 + Number(p[1])) * 256 + Number(p[2])) * 256 + Number(p[3]))
}

function v6ToBig (s: string): bigint {
  const groups = (part: string): number[] => {
    if (part === '') return []
    const out: number[] = []
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v = Number(v4ToBig(g))
        out.push(Math.floor(v / 65536), v % 65536)
      } else {
        out.push(parseInt(g, 16))
      }
    }
    return out
  }
  const gap = s.indexOf('::')
  let all: number[]
  if (gap < 0) {
    all = groups(s)
  } else {
    const head = groups(s.slice(0, gap))
    const tail = groups(s.slice(gap + 2))
    all = head.concat(new Array<number>(8 - head.length - tail.length).fill(0), tail)
  }
  let v = 0n
  for (const g of all) v = (v << 16n) | BigInt(g)
  return v
}

function v4ToText (v: bigint): string {
  const n = Number(v)
  return `${Math.floor(n / 16777216)}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`
}

function v6ToText (v: bigint): string {
  const g: number[] = []
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn))
  return ipv6GroupsText(g)
}

/** Eight 16-bit groups as RFC 5952 text: lower case, no leading zeros, the longest run (the first of equals) of two or more zero groups as `::`. */
export function ipv6GroupsText (g: readonly number[]): string {
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = (a: readonly number[]): string => a.map(x => x.toString(16)).join(':')
  if (best < 0) return hex(g)
  return hex(g.slice(0, best)) + '::' + hex(g.slice(best + bestLen))
}
