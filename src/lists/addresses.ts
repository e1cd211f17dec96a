// Which addresses a list download may connect to. Lists come from the public internet; an address
// in a loopback, link-local, private, shared (CGNAT), unique-local, multicast or unspecified range
// is refused (SSRF: a list URL must not reach the gateway itself or the LAN), unless the admin
// allow-listed that exact host. Checked on the address actually connected to, after resolution.

import { isIP } from 'node:net'

interface Range { readonly start: bigint, readonly end: bigint, readonly what: string }

function v4 (cidr: string, what: string): Range {
  const [addr, len] = cidr.split('/')
  const n = BigInt(addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0))
  const size = 1n << BigInt(32 - Number(len))
  return { start: n, end: n + size - 1n, what }
}

function v6 (cidr: string, what: string): Range {
  const [addr, len] = cidr.split('/')
  const n = v6Number(addr)
  const size = 1n << BigInt(128 - Number(len))
  return { start: n, end: n + size - 1n, what }
}

/** An IPv6 literal (no zone) as a 128-bit number; an embedded dotted IPv4 tail is accepted. */
function v6Number (addr: string): bigint {
  let text = addr
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted !== null) {
    const o = dotted[1].split('.').map(Number)
    text = text.slice(0, -dotted[1].length) + `${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n)
}

const V4: readonly Range[] = [
  v4('0.0.0.0/8', 'unspecified ("this network")'),
  v4('10.0.0.0/8', 'private (RFC 1918)'),
  v4('100.64.0.0/10', 'shared address space (CGNAT)'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link-local'),
  v4('172.16.0.0/12', 'private (RFC 1918)'),
  v4('192.0.0.0/24', 'IETF protocol assignments'),
  v4('192.168.0.0/16', 'private (RFC 1918)'),
  v4('198.18.0.0/15', 'benchmarking'),
  v4('224.0.0.0/4', 'multicast'),
  v4('255.255.255.255/32', 'broadcast'),
  v4('240.0.0.0/4', 'reserved')
]

const V6: readonly Range[] = [
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  v6('64:ff9b:1::/48', 'local-use NAT64'),
  v6('100::/64', 'discard-only'),
  v6('fc00::/7', 'unique local (ULA)'),
  v6('fe80::/10', 'link-local'),
  v6('fec0::/10', 'site-local (deprecated)'),
  v6('ff00::/8', 'multicast')
]

const MAPPED_V4 = v6('::ffff:0:0/96', 'IPv4-mapped')

/**
 * Why `ip` must not be connected to for a list download, or undefined when it is a public address.
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
 */
export function refusedRange (ip: string): string | undefined {
  const bare = ip.replace(/%.*$/, '')
  const family = isIP(bare)
  if (family === 0) return 'not an IP address'
  if (family === 4) {
    const n = BigInt(bare.split('.').reduce((acc, o) => acc * 256 + Number(o), 0))
    return V4.find(r => n >= r.start && n <= r.end)?.what
  }
  const n = v6Number(bare.toLowerCase())
  if (n >= MAPPED_V4.start && n <= MAPPED_V4.end) {
    const x = Number(n & 0xffffffffn)
    return refusedRange(`${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`)
  }
  return V6.find(r => n >= r.start && n <= r.end)?.what
}
