// The learned sets in force: which addresses each category's set holds now, which the guard holds
// back and why, and when each expires. learn() runs every address through the guard; an address
// in a set goes to the sink (the firewall's element sync) with its remaining timeout, and is
// written to the store within a second. allowedAnswer() is the DNS path's one call per fresh
// allowed answer: it feeds the guard and takes any learned address it shares out of the sets. An
// expiry timer removes what ran out; a restart loads the store and gives the sink the addresses
// again with their remaining timeouts.

import type { Logger } from 'pino'
import type { LearningConfig } from '../config/types.js'
import { fromV4, fromV6, parseAddress, type AddressKey, type AddressList, type ParsedAddress } from './address.js'
import { timeoutText } from '../firewall/nftables.js'
import { v4MappedValue, type CollateralGuard, type GuardRanges, type Hold } from './guard.js'
import { elementsOf, viewOf, type LearnedStore, type StoredLearned } from './store.js'
import type { Family, HeldAddress, LearnedAddress, LearnedElements, LearnedSink, LearnedVia } from './types.js'

export interface LearnedBookDeps {
  readonly learning: LearningConfig
  readonly guard: CollateralGuard
  readonly store: LearnedStore
  /** Where set changes go; none (or setSink(undefined)) while firewall sync is off. */
  readonly sink?: LearnedSink
  readonly log: Logger
  readonly now: () => number
}

/** What learn() did with the addresses of one resolution. */
export interface LearnOutcome {
  /** Addresses now in the category's set (new or refreshed). */
  readonly active: number
  /** Addresses the guard held back. */
  readonly held: number
}

export interface BookStats {
  /** Addresses in the sets now (all categories). */
  readonly active: number
  /** Addresses held back now. */
  readonly held: number
  /** Addresses that entered a set (counting re-entries after expiry or a hold). */
  readonly added: number
  /** Addresses taken out of a set by a later allowed answer. */
  readonly removedByGuard: number
  readonly expired: number
  /** Rows dropped by the maxLearned bound (the least recently seen). */
  readonly evicted: number
  /** learn() calls for a category the firewall does not carry (not in the last retainCategories set): nothing done. */
  readonly ignored: number
}

const IGNORED: LearnOutcome = Object.freeze({ active: 0, held: 0 })

interface Row {
  readonly category: string
  readonly address: ParsedAddress
  name: string
  via: LearnedVia
  readonly firstSeen: number
  lastSeen: number
  expiresAt: number
  /**
   * The expiry the sink was last given (its timeout from then, capped at the firewall's
   * MAX_TIMEOUT_SECONDS): when the kernel's element runs out. Meaningful while active.
   */
  sentExpiresAt: number
  held: HeldAddress['reason'] | null
  sharedWith: readonly string[]
  range: string | null
}

/** Upper bound on one expiry timer (the sweep also runs this often when nothing is due). */
const MAX_SWEEP_MS = 60_000
/**
 * A re-learned address goes to the sink again when its expiry moved this much past the one the
 * sink was last given (or when less than half its lifetime is left in the kernel), so the kernel's
 * element never runs out while the book has it active, and re-learning a name every few seconds
 * does not rewrite its element each time.
 */
const RESYNC_MS = 60_000
/**
 * The longest timeout the firewall writes for an element (nftables.ts caps it at 30 days; read
 * through timeoutText, which it exports): a longer expiry is given again before it runs out.
 */
const MAX_TIMEOUT_SECONDS = Number.parseInt(timeoutText(Number.MAX_SAFE_INTEGER) ?? '2592000', 10)
/** An element whose kernel timeout runs out before its book expiry is given again this long before it would. */
const REFRESH_AHEAD_MS = 5_000

export class LearnedBook {
  readonly #cfg: LearningConfig
  readonly #guard: CollateralGuard
  readonly #store: LearnedStore
  #sink: LearnedSink | undefined
  readonly #log: Logger
  readonly #now: () => number
  /** `category \t address` -> row; iteration order = least recently seen first (re-seen rows move back). */
  readonly #rows = new Map<string, Row>()
  /** Rows per address (any category), keyed as the guard keys them, for allowedAnswer and lookup. */
  readonly #byV4 = new Map<number, Row[]>()
  readonly #byV6 = new Map<string, Row[]>()
  #active = 0
  #timer: NodeJS.Timeout | undefined
  /** When the armed timer fires (Infinity when none). */
  #timerAt = Infinity
  #closed = false
  #added = 0
  #removedByGuard = 0
  #expired = 0
  #evicted = 0
  #ignored = 0
  /** The categories the firewall carries (the last retainCategories); undefined: not said yet, all are learned. */
  #retained: ReadonlySet<string> | undefined
  /** The earliest refresh #learnOne found due during one learn() call (Infinity: none). */
  #dueRefresh = Infinity

  constructor (deps: LearnedBookDeps) {
    this.#cfg = deps.learning
    this.#guard = deps.guard
    this.#store = deps.store
    this.#sink = deps.sink
    this.#log = deps.log.child({ mod: 'learned-book' })
    this.#now = deps.now
  }

  /**
   * Loads the guard's stored observations and the stored rows (expired ones dropped), gives the
   * active ones to the sink, arms the expiry timer.
   */
  start (): void {
    this.#guard.load()
    const now = this.#now()
    let dropped = 0
    for (const r of this.#store.loadLearned(now)) {
      const address = parseAddress(r.address)
      if (address === undefined) continue
      if (this.#retained !== undefined && !this.#retained.has(r.category)) {
        // A category the firewall no longer carries (retainCategories was called before start).
        this.#store.deleteLearned(r.category, r.address)
        dropped++
        continue
      }
      const row: Row = {
        category: r.category, address, name: r.name, via: r.via, firstSeen: r.firstSeen, lastSeen: r.lastSeen,
        expiresAt: r.expiresAt, sentExpiresAt: 0, held: r.held, sharedWith: r.sharedWith, range: r.range
      }
      this.#insert(row)
      if (row.held === null) this.#send(row, now)
    }
    this.#log.info({ active: this.#active, held: this.#rows.size - this.#active, dropped }, 'learned addresses loaded')
    this.#schedule(now)
  }

  /** Stops the expiry timer and writes what is queued (the store's flush). */
  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Infinity
    this.#store.close()
  }

  /** Replaces the sink (firewall sync turned on or off by a reload); a new sink gets every active address. */
  setSink (sink: LearnedSink | undefined): void {
    this.#sink = sink
    if (sink === undefined) return
    const now = this.#now()
    for (const r of this.#rows.values()) if (r.held === null && r.expiresAt > now) this.#send(r, now)
  }

  /**
   * The addresses one resolution of `name` (a blocked name of `category`, or a probe name) gave,
   * with the answer's TTL (seconds): each goes into the category's set unless the guard holds it
   * back. v4 as 32-bit values, v6 as any valid text (AnswerTargets' form included).
   */
  learn (category: string, name: string, v4: Iterable<number>, v6: Iterable<string>, ttlSeconds: number, via: LearnedVia,
    frontEnds?: readonly string[]): LearnOutcome {
    // A resolution that finishes after its category was dropped (or of one never carried): a set
    // change for it would name an nft set the table does not have and fail the element batch.
    if (this.#retained !== undefined && !this.#retained.has(category)) {
      this.#ignored++
      return IGNORED
    }
    const now = this.#now()
    const c = this.#cfg
    const lifetimeMs = Math.min(Math.max(ttlSeconds * c.ttlMultiple, c.minExpirySeconds), c.maxExpirySeconds) * 1000
    const expiresAt = now + lifetimeMs
    let active = 0
    let held = 0
    const one = (a: ParsedAddress): void => {
      if (this.#learnOne(category, name, a, now, expiresAt, via, frontEnds)) active++
      else held++
    }
    for (const x of v4) one(fromV4(x))
    for (const t of v6) {
      const a = fromV6(t)
      if (a !== undefined) one(a)
    }
    // Expiries are at least learning.minExpirySeconds (>= 10 s) away: the timer is brought forward
    // when this one (or a refresh #learnOne asked for) is due before it fires.
    this.#due(Math.min(expiresAt, this.#dueRefresh), now)
    this.#dueRefresh = Infinity
    return { active, held }
  }

  /**
   * The DNS path's call for every fresh upstream answer of an allowed name (not for cache hits,
   * not for blocked names' background resolutions): the guard remembers its addresses, and any of
   * them in a learned set leaves the set (held, with the allowed names sharing it; logged with the
   * `client` whose lookup it was, when given). An IPv4-mapped AAAA counts as its IPv4 address. For
   * addresses seen recently this is two Map lookups each and allocates nothing.
   */
  allowedAnswer (name: string, list: AddressList, client?: string): void {
    const now = this.#now()
    this.#guard.observeAllowed(name, list, now)
    if (this.#active === 0) return
    for (let i = 0; i < list.v4Count; i++) {
      const rows = this.#byV4.get(list.v4[i] | 0)
      if (rows !== undefined) this.#holdShared(rows, now, name, client)
    }
    for (let i = 0; i < list.v6Count; i++) {
      const w = list.v6[i]
      const mapped = v4MappedValue(w)
      const rows = mapped >= 0 ? this.#byV4.get(mapped | 0) : this.#byV6.get(w)
      if (rows !== undefined) this.#holdShared(rows, now, name, client)
    }
  }

  /**
   * A reload changed the configured never-block ranges (firewall.lanCidrs, the upstreams,
   * learning.neverBlock): the guard takes them (and re-reads the gateway's addresses), and every
   * address in a set that now falls in one leaves its set (held, never-block). Returns how many left.
   */
  setGuardRanges (r: GuardRanges): number {
    this.#guard.setRanges(r)
    let n = 0
    for (const row of this.#rows.values()) {
      if (row.held !== null) continue
      const range = this.#guard.neverBlock(row.address)
      if (range === undefined) continue
      row.held = 'never-block'
      row.range = range
      row.sharedWith = []
      this.#active--
      this.#sink?.remove(row.category, row.address.text, row.address.family)
      this.#store.putLearned(stored(row))
      n++
    }
    if (n > 0) this.#log.info({ held: n }, 'learned addresses taken out of their sets: they fall in a never-block range now')
    return n
  }

  /** The active learned address `address` (canonical or any valid text) of some category, if any. */
  lookup (address: string): LearnedAddress | undefined {
    const a = parseAddress(address)
    if (a === undefined) return undefined
    const rows = this.#rowsOf(a.family, a.key)
    const now = this.#now()
    const r = rows?.find(r => r.held === null && r.expiresAt > now)
    return r === undefined ? undefined : viewOf(stored(r))
  }

  /** The addresses in the sets, optionally of one category, sorted by category and address. */
  list (category?: string): LearnedAddress[] {
    const now = this.#now()
    return this.#select(r => r.held === null && r.expiresAt > now && (category === undefined || r.category === category))
      .map(r => viewOf(stored(r)))
  }

  /** The addresses the guard holds back, with the allowed names sharing them now (or when held). */
  held (category?: string): HeldAddress[] {
    const now = this.#now()
    return this.#select(r => r.held !== null && r.expiresAt > now && (category === undefined || r.category === category))
      .map(r => {
        const live = r.held === 'allowed-name' ? this.#guard.sharedWith(r.address.family, r.address.key, now) : undefined
        return viewOf({ ...stored(r), sharedWith: live ?? r.sharedWith }) as HeldAddress
      })
  }

  /** Per category, the active elements with their remaining timeouts: for the full nft script. */
  elements (): Map<string, LearnedElements> {
    const now = this.#now()
    const rows: Array<{ category: string, address: string, family: Family, expiresAt: number }> = []
    for (const r of this.#rows.values()) if (r.held === null) rows.push({ category: r.category, address: r.address.text, family: r.address.family, expiresAt: r.expiresAt })
    return elementsOf(rows, now)
  }

  /**
   * The categories the firewall carries now (at start and after every policy swap; may be called
   * before start, which then loads only theirs). Rows of other categories are dropped from memory
   * and the store but not sent to the sink as removals: their nft sets are gone, or go with the
   * table's next full sync (which writes only these categories' elements), and a removal from a
   * set the table lacks would fail the whole element batch. From now on learn() ignores the
   * others (counted), so a resolution in flight cannot bring a dropped category back.
   */
  retainCategories (keep: ReadonlySet<string>): void {
    this.#retained = new Set(keep)
    for (const r of [...this.#rows.values()]) if (!keep.has(r.category)) this.#drop(r, false)
  }

  get stats (): BookStats {
    return {
      active: this.#active,
      held: this.#rows.size - this.#active,
      added: this.#added,
      removedByGuard: this.#removedByGuard,
      expired: this.#expired,
      evicted: this.#evicted,
      ignored: this.#ignored
    }
  }

  /** Removes what expired by `now` (the timer calls it; tests with their own clock may too). */
  sweep (now = this.#now()): number {
    let n = 0
    let resent = 0
    for (const r of [...this.#rows.values()]) {
      if (r.expiresAt > now) {
        // A kernel element that would run out before the next sweep, while the book keeps the
        // address longer (re-learned below RESYNC_MS, or capped at MAX_TIMEOUT_SECONDS): given again.
        if (r.held === null && r.sentExpiresAt < r.expiresAt && r.sentExpiresAt - now <= MAX_SWEEP_MS + REFRESH_AHEAD_MS) {
          this.#send(r, now)
          resent++
        }
        continue
      }
      this.#drop(r)
      n++
    }
    if (resent > 0) this.#log.debug({ resent }, 'learned elements given to the firewall again before their timeout')
    this.#expired += n
    this.#guard.prune(now)
    if (n > 0) this.#log.debug({ expired: n }, 'learned addresses expired')
    return n
  }

  /** True when the address is (now) in the set, false when held. */
  #learnOne (category: string, name: string, a: ParsedAddress, now: number, expiresAt: number, via: LearnedVia, frontEnds: readonly string[] | undefined): boolean {
    const hold: Hold | undefined = frontEnds !== undefined && frontEnds.length > 0 ? { reason: 'shared-host', sharedWith: frontEnds } : this.#guard.checkParsed(a, now)
    const key = category + '\t' + a.text
    let r = this.#rows.get(key)
    const wasActive = r !== undefined && r.held === null
    if (r === undefined) {
      this.#bound()
      // Inserted as not active (#insert counts active rows): below, it enters the set (counted
      // once, as added) or is held with the guard's reason.
      r = { category, address: a, name, via, firstSeen: now, lastSeen: now, expiresAt, sentExpiresAt: 0, held: hold?.reason ?? 'allowed-name', sharedWith: [], range: null }
      this.#insert(r)
    } else {
      // Most recently seen: to the back of the eviction order.
      this.#rows.delete(key)
      this.#rows.set(key, r)
      r.name = name
      r.via = via
      r.lastSeen = now
      if (expiresAt > r.expiresAt) r.expiresAt = expiresAt
    }
    if (hold === undefined) {
      if (!wasActive) {
        r.held = null
        r.sharedWith = []
        r.range = null
        this.#active++
        this.#added++
        this.#send(r, now)
      } else if (r.sentExpiresAt < r.expiresAt) {
        // What the kernel would get now (capped), against what it has.
        const target = Math.min(r.expiresAt, now + MAX_TIMEOUT_SECONDS * 1000)
        if (target - r.sentExpiresAt >= RESYNC_MS || (r.sentExpiresAt - now) * 2 <= target - now) this.#send(r, now)
        else if (r.sentExpiresAt - REFRESH_AHEAD_MS < this.#dueRefresh) this.#dueRefresh = r.sentExpiresAt - REFRESH_AHEAD_MS
      }
    } else {
      if (wasActive) {
        this.#active--
        this.#sink?.remove(category, a.text, a.family)
      }
      r.held = hold.reason
      r.sharedWith = hold.reason === 'never-block' ? [] : hold.sharedWith
      r.range = hold.reason === 'never-block' ? hold.range : null
    }
    this.#store.putLearned(stored(r))
    return hold === undefined
  }

  /** An allowed answer (of `allowedName`, asked by `client`) shares these rows' address: the active ones leave their sets. */
  #holdShared (rows: readonly Row[], now: number, allowedName: string, client: string | undefined): void {
    for (const r of rows) {
      if (r.held !== null) continue
      r.held = 'allowed-name'
      r.sharedWith = this.#guard.sharedWith(r.address.family, r.address.key, now) ?? []
      this.#active--
      this.#removedByGuard++
      this.#sink?.remove(r.category, r.address.text, r.address.family)
      this.#store.putLearned(stored(r))
      this.#log.info({ category: r.category, address: r.address.text, name: r.name, allowedName, client, sharedWith: r.sharedWith },
        'learned address taken out of its set: an allowed name resolves to it')
    }
  }

  #insert (r: Row): void {
    this.#rows.set(r.category + '\t' + r.address.text, r)
    const list = this.#rowsOf(r.address.family, r.address.key)
    if (list !== undefined) list.push(r)
    else if (r.address.family === 4) this.#byV4.set(r.address.key as number, [r])
    else this.#byV6.set(r.address.key as string, [r])
    if (r.held === null) this.#active++
  }

  /** Removes a row everywhere: memory, sink (when active and `fromSink`), store. */
  #drop (r: Row, fromSink = true): void {
    this.#rows.delete(r.category + '\t' + r.address.text)
    const list = this.#rowsOf(r.address.family, r.address.key)
    if (list !== undefined) {
      const i = list.indexOf(r)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0) {
        if (r.address.family === 4) this.#byV4.delete(r.address.key as number)
        else this.#byV6.delete(r.address.key as string)
      }
    }
    if (r.held === null) {
      this.#active--
      if (fromSink) this.#sink?.remove(r.category, r.address.text, r.address.family)
    }
    this.#store.deleteLearned(r.category, r.address.text)
  }

  /** Makes room for one more row under learning.maxLearned (the least recently seen go). */
  #bound (): void {
    while (this.#rows.size >= this.#cfg.maxLearned) {
      const first = this.#rows.values().next()
      if (first.done === true) return
      this.#drop(first.value)
      this.#evicted++
    }
  }

  #rowsOf (family: Family, key: AddressKey): Row[] | undefined {
    return family === 4 ? this.#byV4.get(key as number) : this.#byV6.get(key as string)
  }

  #select (take: (r: Row) => boolean): Row[] {
    const out = [...this.#rows.values()].filter(take)
    out.sort((a, b) => a.category < b.category ? -1 : a.category > b.category ? 1 : a.address.family - b.address.family || (a.address.value < b.address.value ? -1 : a.address.value > b.address.value ? 1 : 0))
    return out
  }

  /** Gives the sink an active row with its remaining lifetime (capped at the firewall's longest timeout). */
  #send (r: Row, now: number): void {
    const timeout = Math.max(1, Math.min(Math.ceil((r.expiresAt - now) / 1000), MAX_TIMEOUT_SECONDS))
    r.sentExpiresAt = now + timeout * 1000
    this.#sink?.add(r.category, r.address.text, r.address.family, timeout)
  }

  /** Brings the timer forward to `at` when it would fire later (or is not armed). */
  #due (at: number, now: number): void {
    if (this.#closed || (this.#timer !== undefined && this.#timerAt <= Math.max(at, now + 1000))) return
    this.#arm(at, now)
  }

  /** Arms the timer for the next expiry or refresh (at most MAX_SWEEP_MS away, at least 1 s). */
  #schedule (now: number): void {
    if (this.#closed) return
    let next = now + MAX_SWEEP_MS
    for (const r of this.#rows.values()) {
      if (r.expiresAt < next) next = r.expiresAt
      if (r.held === null && r.sentExpiresAt < r.expiresAt && r.sentExpiresAt - REFRESH_AHEAD_MS < next) next = r.sentExpiresAt - REFRESH_AHEAD_MS
    }
    this.#arm(next, now)
  }

  #arm (at: number, now: number): void {
    const delay = Math.min(MAX_SWEEP_MS, Math.max(1000, at - now))
    clearTimeout(this.#timer)
    this.#timerAt = now + delay
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#timerAt = Infinity
      try { this.sweep() } catch (err) { this.#log.error({ err }, 'expiring learned addresses failed') }
      this.#schedule(this.#now())
    }, delay)
    this.#timer.unref()
  }
}

function stored (r: Row): StoredLearned {
  return {
    category: r.category, address: r.address.text, family: r.address.family, name: r.name, via: r.via,
    firstSeen: r.firstSeen, lastSeen: r.lastSeen, expiresAt: r.expiresAt, held: r.held, sharedWith: r.sharedWith, range: r.range
  }
}
