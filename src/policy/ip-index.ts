// Address rules (CIDR ranges, IPv4 and IPv6) compiled for matching: the ranges are cut into
// disjoint segments, each with the rule ids that cover it, and an address is found by binary
// search over the segment starts. Addresses are BigInts (answers and clients, not the name path).

import { parseIp } from './names.js'

interface Range { start: bigint, end: bigint, id: number }

class Segments {
  readonly #ranges: Range[] = []
  #starts: bigint[] = []
  #ends: bigint[] = []
  #ids: number[][] = []
  /** IPv4 only: the same starts and ends as plain numbers (exact below 2^53), for lookupNumber. */
  #startsN = new Float64Array(0)
  #endsN = new Float64Array(0)

  add (start: bigint, end: bigint, id: number): void { this.#ranges.push({ start, end, id }) }

  get size (): number { return this.#ranges.length }

  /** Cuts the ranges into disjoint segments (a sweep over the sorted boundaries); ids ascending. */
  build (): void {
    const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0)
    const opens = [...this.#ranges].sort((a, b) => cmp(a.start, b.start))
    const closes = [...this.#ranges].sort((a, b) => cmp(a.end, b.end))
    const points = [...new Set(this.#ranges.flatMap(r => [r.start, r.end + 1n]))].sort(cmp)
    // Per id, how many of its ranges cover the current point (one id may own nested ranges).
    const active = new Map<number, number>()
    const starts: bigint[] = []
    const ends: bigint[] = []
    const ids: number[][] = []
    let o = 0
    let c = 0
    for (let i = 0; i + 1 < points.length; i++) {
      const p = points[i]
      while (c < closes.length && closes[c].end < p) {
        const id = closes[c++].id
        const n = (active.get(id) ?? 1) - 1
        if (n === 0) active.delete(id)
        else active.set(id, n)
      }
      while (o < opens.length && opens[o].start <= p) {
        const id = opens[o++].id
        active.set(id, (active.get(id) ?? 0) + 1)
      }
      if (active.size === 0) continue
      starts.push(p)
      ends.push(points[i + 1] - 1n)
      ids.push([...active.keys()].sort((a, b) => a - b))
    }
    this.#starts = starts
    this.#ends = ends
    this.#ids = ids
    if (ends.length === 0 || ends[ends.length - 1] < 2n ** 53n) {
      this.#startsN = Float64Array.from(starts, Number)
      this.#endsN = Float64Array.from(ends, Number)
    }
  }

  /** lookup for an IPv4 address as a number (the answer path: no BigInt per address). */
  lookupNumber (x: number): readonly number[] | undefined {
    const i = floorIndex(this.#startsN, x)
    return i < 0 || x > this.#endsN[i] ? undefined : this.#ids[i]
  }

  lookup (x: bigint): readonly number[] | undefined {
    const i = floorIndex(this.#starts, x)
    return i < 0 || x > this.#ends[i] ? undefined : this.#ids[i]
  }
}

/** The index of the last of the sorted `starts` that is <= x, or -1. */
function floorIndex<T extends number | bigint> (starts: ArrayLike<T>, x: T): number {
  let lo = 0
  let hi = starts.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (starts[mid] <= x) lo = mid + 1
    else hi = mid - 1
  }
  return hi
}

const MAPPED_PREFIX = 0xffffn << 32n

export class IpIndex {
  readonly #v4 = new Segments()
  readonly #v6 = new Segments()

  /** Adds a range [start, end] of the given family for rule `id`. */
  add (family: 4 | 6, start: bigint, end: bigint, id: number): void {
    (family === 4 ? this.#v4 : this.#v6).add(start, end, id)
  }

  get size (): number { return this.#v4.size + this.#v6.size }

  build (): void {
    this.#v4.build()
    this.#v6.build()
  }

  /**
   * The first rule covering `address` (text form) that `accept` takes, or -1. IPv4-mapped IPv6
   * addresses (::ffff:a.b.c.d) are matched against the IPv4 ranges.
   */
  match (address: string, accept: (id: number) => boolean): number {
    const v4 = ipv4Number(address)
    if (v4 >= 0) return this.matchV4(v4, accept)
    const ip = parseIp(address)
    if (ip === undefined) return -1
    const v = ip.value
    const ids = ip.family === 4 ? this.#v4.lookup(v) : (v >> 32n) === 0xffffn ? this.#v4.lookup(v - MAPPED_PREFIX) : this.#v6.lookup(v)
    if (ids === undefined) return -1
    for (const id of ids) if (accept(id)) return id
    return -1
  }

  /** `match` for an IPv4 address given as its 32-bit value (answers: no text to build or parse). */
  matchV4 (address: number, accept: (id: number) => boolean): number {
    const ids = this.#v4.lookupNumber(address)
    if (ids === undefined) return -1
    for (const id of ids) if (accept(id)) return id
    return -1
  }
}

/**
 * A dotted-quad IPv4 address ("192.0.2.1", no leading zeros beyond a lone 0) as a number, or -1
 * for anything else (IPv6, zones, malformed text), which then takes the general parser.
 */
export function ipv4Number (s: string): number {
  let value = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1
      value = value * 256 + part
      part = 0
      digits = 0
      dots++
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return -1 // a leading zero
      part = part * 10 + (c - 0x30)
      if (++digits > 3 || part > 255) return -1
    } else {
      return -1
    }
  }
  if (dots !== 3 || digits === 0) return -1
  return value * 256 + part
}
