// Address forms the learner uses. The DNS path hands over answers as AnswerTargets (dns/wire.ts):
// IPv4 as 32-bit values, IPv6 as eight hex groups without leading zeros and without `::`
// ("2001:db8:0:0:0:0:0:11"), the "wire form". The in-memory maps of the guard and the book are keyed
// by that form (an IPv4 value as an int32, so the key is a small integer), so the hot path
// converts nothing; the canonical text (dotted quad, RFC 5952) is made off the hot path, for the
// store, the API and nft.

import { isIP } from 'node:net'
import { ipv4Number } from '../policy/ip-index.js'
import { ipv4Text, ipv6GroupsText } from '../policy/names.js'
import type { Family } from './types.js'

/** An address as the in-memory maps key it: an int32 for IPv4 (`value | 0`), the wire form for IPv6. */
export type AddressKey = number | string

/** The addresses of one answer (AnswerTargets has this shape). */
export interface AddressList {
  readonly v4: ArrayLike<number>
  readonly v4Count: number
  readonly v6: ArrayLike<string>
  readonly v6Count: number
}

/** An address in every form the learner needs. */
export interface ParsedAddress {
  readonly family: Family
  readonly key: AddressKey
  /** Canonical text: dotted quad, or RFC 5952. */
  readonly text: string
  /** The value as a BigInt (range checks). */
  readonly value: bigint
}

/** Parses an address written in any valid form; undefined when it is not one (a zone id is refused). */
export function parseAddress (text: string): ParsedAddress | undefined {
  const n = ipv4Number(text)
  if (n >= 0) return { family: 4, key: n | 0, text, value: BigInt(n) }
  const s = text.trim()
  const kind = isIP(s)
  if (kind === 4) return parseAddress(s.split('.').map(Number).join('.'))
  if (kind !== 6) return undefined
  const groups = v6Groups(s)
  return fromGroups(groups)
}

/** The IPv4 value (unsigned) of an int32 key. */
export const v4Value = (key: number): number => key >>> 0

/** An IPv4 address from its 32-bit value. */
export function fromV4 (value: number): ParsedAddress {
  const u = value >>> 0
  return { family: 4, key: u | 0, text: ipv4Text(u), value: BigInt(u) }
}

/** An IPv6 address from its wire form (or any valid text); undefined when it is not an IPv6 address. */
export function fromV6 (text: string): ParsedAddress | undefined {
  if (isIP(text) !== 6) return undefined
  return fromGroups(v6Groups(text))
}

/** Canonical text of an address kept under `key` in a map of `family`. */
export function keyText (family: Family, key: AddressKey): string {
  return family === 4 ? ipv4Text((key as number) >>> 0) : canonicalV6(v6Groups(key as string))
}

function fromGroups (groups: number[]): ParsedAddress {
  let value = 0n
  for (const g of groups) value = (value << 16n) | BigInt(g)
  return { family: 6, key: groups.map(g => g.toString(16)).join(':'), text: canonicalV6(groups), value }
}

/** The eight 16-bit groups of a valid IPv6 text (`::` and an embedded dotted quad expanded). */
function v6Groups (s: string): number[] {
  const part = (p: string): number[] => {
    if (p === '') return []
    const out: number[] = []
    for (const g of p.split(':')) {
      if (g.includes('.')) {
        const v = ipv4Number(g.split('.').map(Number).join('.'))
        out.push(v >>> 16, v & 0xffff)
      } else {
        out.push(parseInt(g, 16))
      }
    }
    return out
  }
  const gap = s.indexOf('::')
  if (gap < 0) return part(s)
  const head = part(s.slice(0, gap))
  const tail = part(s.slice(gap + 2))
  return head.concat(new Array<number>(8 - head.length - tail.length).fill(0), tail)
}

/** RFC 5952 text of eight groups (policy/names.ts). */
const canonicalV6 = ipv6GroupsText
