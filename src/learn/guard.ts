// The collateral guard: decides whether a learned address may go into a block set. It is held back
// when it falls in a never-block range (the special-purpose ranges, always; learning.neverBlock;
// firewall.lanCidrs; the upstream resolvers; the gateway's own addresses), or when an allowed name
// resolved to it within learning.guardWindowSeconds. The second needs a memory of allowed answers:
// every fresh upstream answer of an allowed name passes through observeAllowed, so that is built
// for the DNS path: one Map lookup per address, and no allocation when the address and name were
// seen recently. Memory is bounded by learning.maxAllowedAddresses (the least recently seen go
// first) and kept in the policy file through LearnedStore, one row per address with its names (a
// restart keeps it).

import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import type { Logger } from 'pino'
import type { LearningConfig } from '../config/types.js'
import { parseCidr } from '../policy/names.js'
import { parseAddress, type AddressKey, type AddressList, type ParsedAddress } from './address.js'
import type { LearnedStore } from './store.js'
import type { Family } from './types.js'

/** Ranges no learned set may hold whatever the config says (RFC 6890 and friends). */
export const SPECIAL_PURPOSE_RANGES: readonly string[] = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24',
  '224.0.0.0/4', '240.0.0.0/4',
  '::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '2001:db8::/32'
]

/** Allowed names kept per address (the most recent). */
export const MAX_SHARED_NAMES = 8

const MAPPED_PREFIX = '0:0:0:0:0:ffff:'

/**
 * The IPv4 value (unsigned) of an IPv4-mapped IPv6 address in wire form (`0:0:0:0:0:ffff:959a:a763`
 * for ::ffff:149.154.167.99), or -1 when it is not one. Reads characters only: allocates nothing.
 */
export function v4MappedValue (wire: string): number {
  if (!wire.startsWith(MAPPED_PREFIX)) return -1
  let hi = 0
  let lo = 0
  let group = 0
  let digits = 0
  for (let i = MAPPED_PREFIX.length; i < wire.length; i++) {
    const c = wire.charCodeAt(i)
    if (c === 58 /* : */) {
      if (group !== 0 || digits === 0) return -1
      group = 1
      digits = 0
      continue
    }
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
    if (d < 0 || ++digits > 4) return -1
    if (group === 0) hi = hi * 16 + d
    else lo = lo * 16 + d
  }
  if (group !== 1 || digits === 0) return -1
  return hi * 65536 + lo
}

/** Why the guard holds an address back. */
export type Hold =
  | { readonly reason: 'allowed-name', readonly sharedWith: readonly string[] }
  | { readonly reason: 'never-block', readonly range: string }
  /** Not the guard's own finding: the learner saw the address behind a shared front end (shared-hosts.ts). */
  | { readonly reason: 'shared-host', readonly sharedWith: readonly string[] }

/** The configured never-block ranges besides the special-purpose ones (a reload may change them: setRanges). */
export interface GuardRanges {
  /** firewall.lanCidrs (normalized). */
  readonly lanCidrs: readonly string[]
  /** The upstream resolvers' hosts (config.upstreams[].host); names among them are skipped. */
  readonly upstreamHosts: readonly string[]
  /** learning.neverBlock (default: as the guard was built with). */
  readonly neverBlock?: readonly string[]
}

export interface GuardDeps {
  readonly learning: LearningConfig
  /** firewall.lanCidrs (normalized), at construction (setRanges replaces them). */
  readonly lanCidrs: readonly string[]
  /** The upstream resolvers' hosts (config.upstreams[].host), at construction; names among them are skipped. */
  readonly upstreamHosts: readonly string[]
  /** Where observations are kept across restarts (optional: memory only without it). */
  readonly store?: LearnedStore
  readonly log: Logger
  readonly now: () => number
  /** The gateway's interfaces (default os.networkInterfaces). */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>
}

interface NeverRange { readonly family: Family, readonly start: bigint, readonly end: bigint, readonly label: string }

/** What the guard remembers of one address. */
interface Seen {
  /** Allowed names that resolved to it, oldest first, at most MAX_SHARED_NAMES. */
  readonly names: string[]
  lastSeen: number
  /** When it last moved to the back of the eviction order and was written to the store. */
  stamp: number
}

export interface GuardStats {
  /** Addresses of allowed answers remembered now. */
  readonly allowedAddresses: number
  /** Remembered addresses evicted by the maxAllowedAddresses bound. */
  readonly evicted: number
  readonly neverBlockRanges: number
}

export class CollateralGuard {
  readonly #v4 = new Map<number, Seen>()
  readonly #v6 = new Map<string, Seen>()
  readonly #max: number
  readonly #windowMs: number
  /** How stale the eviction order and the stored last_seen may get: the window / 16, at most 10 min. */
  readonly #refreshMs: number
  readonly #store: LearnedStore | undefined
  readonly #now: () => number
  readonly #log: Logger
  #ranges: NeverRange[]
  readonly #deps: GuardDeps
  #configured: Required<GuardRanges>
  #evicted = 0
  #loaded = false

  constructor (deps: GuardDeps) {
    this.#deps = deps
    this.#max = deps.learning.maxAllowedAddresses
    this.#windowMs = deps.learning.guardWindowSeconds * 1000
    this.#refreshMs = Math.min(this.#windowMs / 16, 600_000)
    this.#store = deps.store
    this.#now = deps.now
    this.#log = deps.log.child({ mod: 'learn-guard' })
    this.#configured = { lanCidrs: deps.lanCidrs, upstreamHosts: deps.upstreamHosts, neverBlock: deps.learning.neverBlock }
    this.#ranges = this.#buildRanges()
  }

  /** Loads the stored observations (within the window), once (LearnedBook.start calls it). */
  load (): void {
    if (this.#store === undefined || this.#loaded) return
    this.#loaded = true
    const now = this.#now()
    for (const r of this.#store.loadAllowed(now, this.#max)) {
      const a = parseAddress(r.address)
      if (a === undefined) continue
      for (const name of r.names) this.#remember(a.family, a.key, name, r.lastSeen, false)
    }
    this.#log.debug({ addresses: this.#v4.size + this.#v6.size }, 'allowed addresses loaded')
  }

  /**
   * The configured never-block ranges changed (a reload: firewall.lanCidrs, the upstreams,
   * learning.neverBlock): rebuilds every range from them, and re-reads the gateway's own addresses.
   */
  setRanges (r: GuardRanges): void {
    this.#configured = { lanCidrs: r.lanCidrs, upstreamHosts: r.upstreamHosts, neverBlock: r.neverBlock ?? this.#configured.neverBlock }
    this.#ranges = this.#buildRanges()
  }

  /** Re-reads the gateway's own addresses (an interface change), keeping the configured ranges. */
  refreshRanges (): void {
    this.#ranges = this.#buildRanges()
  }

  /** The never-block ranges with their origins, e.g. `10.0.0.0/8 (special-purpose)`. */
  get ranges (): readonly string[] { return this.#ranges.map(r => r.label) }

  get stats (): GuardStats {
    return { allowedAddresses: this.#v4.size + this.#v6.size, evicted: this.#evicted, neverBlockRanges: this.#ranges.length }
  }

  /**
   * An allowed name's fresh upstream answer: every address in it is remembered for the window.
   * The DNS path's call (through LearnedBook.allowedAnswer, which also takes the addresses out of
   * the learned sets): for an address seen recently with this name it only stores a time.
   */
  observeAllowed (name: string, list: AddressList, now: number): void {
    for (let i = 0; i < list.v4Count; i++) this.#remember(4, list.v4[i] | 0, name, now, true)
    for (let i = 0; i < list.v6Count; i++) {
      // An IPv4-mapped AAAA (::ffff:a.b.c.d) is the IPv4 address a.b.c.d: kept under it, so it
      // protects a learned a.b.c.d.
      const w = list.v6[i]
      const mapped = v4MappedValue(w)
      if (mapped >= 0) this.#remember(4, mapped | 0, name, now, true)
      else this.#remember(6, w, name, now, true)
    }
  }

  /** Whether an address may go into a block set: undefined when it may, else why not. */
  check (address: string): Hold | undefined {
    const a = parseAddress(address)
    if (a === undefined) return undefined
    return this.checkParsed(a, this.#now())
  }

  /** check for a parsed address at `now`. */
  checkParsed (a: ParsedAddress, now: number): Hold | undefined {
    const range = this.neverBlock(a)
    if (range !== undefined) return { reason: 'never-block', range }
    const names = this.sharedWith(a.family, a.key, now)
    if (names !== undefined) return { reason: 'allowed-name', sharedWith: names }
    return undefined
  }

  /** The never-block range (with its origin) an address falls in, if any. */
  neverBlock (a: ParsedAddress): string | undefined {
    for (const r of this.#ranges) if (r.family === a.family && a.value >= r.start && a.value <= r.end) return r.label
    return undefined
  }

  /** The allowed names that resolved to the address within the window, most recent first; undefined if none. */
  sharedWith (family: Family, key: AddressKey, now: number): string[] | undefined {
    const s = family === 4 ? this.#v4.get(key as number) : this.#v6.get(key as string)
    if (s === undefined || s.lastSeen < now - this.#windowMs) return undefined
    return s.names.slice().reverse()
  }

  /** Forgets observations older than the window (from the oldest; the store prunes its own rows). */
  prune (now: number): void {
    const before = now - this.#windowMs
    for (const map of [this.#v4, this.#v6] as Array<Map<AddressKey, Seen>>) {
      for (const [k, s] of map) {
        if (s.stamp >= before) break
        if (s.lastSeen < before) map.delete(k)
      }
    }
  }

  #remember (family: Family, key: AddressKey, name: string, now: number, persist: boolean): void {
    const map = (family === 4 ? this.#v4 : this.#v6) as Map<AddressKey, Seen>
    const s = map.get(key)
    if (s !== undefined) {
      if (now > s.lastSeen) s.lastSeen = now
      let changed = false
      if (!s.names.includes(name)) {
        if (s.names.length >= MAX_SHARED_NAMES) s.names.shift()
        s.names.push(name)
        changed = true
      }
      if (changed || now - s.stamp >= this.#refreshMs) {
        if (now >= s.stamp) {
          // To the back of the eviction order.
          map.delete(key)
          map.set(key, s)
          s.stamp = now
        }
        // The store writes the address's whole list (one row per address, at most 8 names).
        if (persist) this.#store?.putAllowed(family, key, s.names, s.lastSeen)
      }
      return
    }
    const seen: Seen = { names: [name], lastSeen: now, stamp: now }
    map.set(key, seen)
    if (persist) this.#store?.putAllowed(family, key, seen.names, now)
    if (this.#v4.size + this.#v6.size > this.#max) this.#evictOne()
  }

  /** Drops the least recently seen address of the two maps. */
  #evictOne (): void {
    const a = this.#v4.entries().next()
    const b = this.#v6.entries().next()
    if (a.done !== true && (b.done === true || a.value[1].stamp <= b.value[1].stamp)) {
      this.#v4.delete(a.value[0])
      this.#store?.deleteAllowed(4, a.value[0])
    } else if (b.done !== true) {
      this.#v6.delete(b.value[0])
      this.#store?.deleteAllowed(6, b.value[0])
    } else {
      return
    }
    this.#evicted++
  }

  #buildRanges (): NeverRange[] {
    const out: NeverRange[] = []
    const add = (text: string, origin: string): void => {
      const c = parseCidr(text)
      if ('error' in c) { this.#log.warn({ range: text, origin, error: c.error }, 'never-block range skipped'); return }
      out.push({ family: c.family, start: c.start, end: c.end, label: `${c.value} (${origin})` })
    }
    for (const r of SPECIAL_PURPOSE_RANGES) add(r, 'special-purpose')
    // IPv4-mapped IPv6 (an AAAA record that carries an IPv4 address): parseCidr would read it as
    // the IPv4 range 0.0.0.0/0, so it is written out here.
    out.push({ family: 6, start: 0xffffn << 32n, end: (0xffffn << 32n) | 0xffffffffn, label: '::ffff:0:0/96 (special-purpose)' })
    for (const r of this.#configured.neverBlock) add(r, 'learning.neverBlock')
    for (const r of this.#configured.lanCidrs) add(r, 'firewall.lanCidrs')
    for (const h of this.#configured.upstreamHosts) if (parseAddress(h) !== undefined) add(h, 'upstream resolver')
    let ifaces: NodeJS.Dict<NetworkInterfaceInfo[]> = {}
    try { ifaces = (this.#deps.interfaces ?? networkInterfaces)() } catch (err) { this.#log.warn({ err }, 'cannot read the gateway\'s interfaces') }
    for (const [name, list] of Object.entries(ifaces)) {
      for (const i of list ?? []) add(i.address.replace(/%.*$/, ''), `gateway address on ${name}`)
    }
    return out
  }
}
