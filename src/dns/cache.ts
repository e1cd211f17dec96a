// The answer cache: stored answers keyed by (name, type, class, DO), bounded by entry count with
// LRU eviction, expiring by the answer's lifetime. Time comes from the injected clock (ms).
// Knows nothing of sockets or policy; the pipeline's cache stage decides what goes in.

import type { StoredAnswer } from './wire.js'

export interface CacheEntry {
  readonly key: string
  readonly answer: StoredAnswer
  /** Clock time (ms) when the answer was stored; TTLs served are decremented from here. */
  readonly storedAt: number
  readonly expiresAt: number
  /** Set on every hit, cleared when the eviction hand passes (second chance). */
  used: boolean
  /** Index in the ring. */
  slot: number
  /** Where the key sits in the hash table (moves when a removal shifts it back). */
  pos: number
}

export interface CacheStats { size: number, hits: number, misses: number, evictions: number, expired: number }

/** Table markers: a key's hash is never 0 (empty slot). */
const EMPTY = 0

/**
 * Eviction is LRU approximated by CLOCK (second chance): entries sit in a ring of `maxEntries`
 * slots; a hit only sets a flag, so the hot path never reorders anything; when the cache is full,
 * the hand moves over the ring, clearing flags, and evicts the first entry not used since the
 * hand last passed. Every operation is O(1) amortized. (A JS Map used as an LRU queue is not:
 * reading its oldest key walks over every deleted slot before it.)
 *
 * Keys are found through an open-addressing table of our own, not a `Map`: two int32 arrays (the
 * key's 32-bit hash, the entry's ring slot), linear probing, at most half full, and removals that
 * shift the following keys back instead of leaving tombstones. Most lookups miss (every blocked and
 * every forwarded query looks first): a miss reads one slot, and neither a miss nor an insertion
 * touches any other key's string unless the 32-bit hashes are equal. In a `Map` of 100,000 string
 * keys a miss cost ~0.45 µs here (a walk over a bucket's chain, one cold key string per step), an
 * insertion the same again, and each eviction a third walk.
 */
export class AnswerCache {
  readonly #max: number
  readonly #now: () => number
  readonly #hashOf: (key: string) => number
  readonly #ring: Array<CacheEntry | undefined> = []
  /** Slots freed by expiry, reused before the hand evicts anything. */
  readonly #free: number[] = []
  #hand = 0
  /** The table: key hash per position (EMPTY: free), and the ring slot of its entry. */
  #hashes = new Int32Array(64)
  #slots = new Int32Array(64)
  #mask = 63
  #live = 0
  readonly stats: CacheStats = { size: 0, hits: 0, misses: 0, evictions: 0, expired: 0 }

  /** `hash` (tests only): a replacement key hash (an int32), to force collisions. */
  constructor (opts: { maxEntries: number, now: () => number, hash?: (key: string) => number }) {
    this.#max = opts.maxEntries
    this.#now = opts.now
    this.#hashOf = opts.hash ?? hashKey
  }

  get size (): number { return this.#live }

  /** The live entry for `key`; expired entries are dropped. */
  get (key: string, now: number = this.#now()): CacheEntry | undefined {
    const e = this.#find(key, this.#hash(key))
    if (e === undefined) { this.stats.misses++; return undefined }
    if (e.expiresAt <= now) {
      this.#remove(e)
      this.stats.expired++
      this.stats.misses++
      return undefined
    }
    e.used = true
    this.stats.hits++
    return e
  }

  /** Stores an answer for its lifetime; answers with lifetime 0 are not stored. */
  put (key: string, answer: StoredAnswer, now: number = this.#now()): void {
    if (answer.lifetime <= 0 || this.#max === 0) return
    const h = this.#hash(key)
    const old = this.#find(key, h)
    const expiresAt = now + answer.lifetime * 1000
    if (old !== undefined) {
      const e: CacheEntry = { key, answer, storedAt: now, expiresAt, used: false, slot: old.slot, pos: old.pos }
      this.#ring[e.slot] = e
      return
    }
    if ((this.#live + 1) * 2 > this.#hashes.length) this.#grow()
    const slot = this.#freeSlot(now) // may evict, which may move keys in the table: probe after it
    const e: CacheEntry = { key, answer, storedAt: now, expiresAt, used: false, slot, pos: this.#insert(h, slot) }
    this.#ring[slot] = e
    this.#live++
    this.stats.size = this.#live
  }

  /** The key's hash, never EMPTY. */
  #hash (key: string): number {
    const h = this.#hashOf(key)
    return h === EMPTY ? 1 : h
  }

  #find (key: string, h: number): CacheEntry | undefined {
    const hashes = this.#hashes
    const mask = this.#mask
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const x = hashes[i]
      if (x === EMPTY) return undefined
      if (x === h) {
        const e = this.#ring[this.#slots[i]] as CacheEntry
        if (e.key === key) return e
      }
    }
  }

  /** Puts hash `h` (of a key not in the table) with its ring slot at the first free position. */
  #insert (h: number, slot: number): number {
    const hashes = this.#hashes
    const mask = this.#mask
    let i = h & mask
    while (hashes[i] !== EMPTY) i = (i + 1) & mask
    hashes[i] = h
    this.#slots[i] = slot
    return i
  }

  /**
   * Frees table position `pos` and shifts back every key after it in the same run that may move
   * there (its home position is not between the hole and itself), so lookups never need tombstones.
   */
  #unlink (pos: number): void {
    const hashes = this.#hashes
    const slots = this.#slots
    const mask = this.#mask
    let hole = pos
    for (let j = (pos + 1) & mask; hashes[j] !== EMPTY; j = (j + 1) & mask) {
      const home = hashes[j] & mask
      // The key at j may fill the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
      if (stays) continue
      hashes[hole] = hashes[j]
      slots[hole] = slots[j]
      ;(this.#ring[slots[hole]] as CacheEntry).pos = hole
      hole = j
    }
    hashes[hole] = EMPTY
  }

  /** Twice the positions: every live entry is inserted again from the ring. */
  #grow (): void {
    const size = this.#hashes.length * 2
    this.#hashes = new Int32Array(size)
    this.#slots = new Int32Array(size)
    this.#mask = size - 1
    for (const e of this.#ring) if (e !== undefined) e.pos = this.#insert(this.#hash(e.key), e.slot)
  }

  #freeSlot (now: number): number {
    const free = this.#free.pop()
    if (free !== undefined) return free
    if (this.#ring.length < this.#max) return this.#ring.length
    // Full: move the hand until an entry has had no hit since the last pass (or has expired).
    // Bounded: each step clears a flag that only a hit sets again.
    const ring = this.#ring
    for (;;) {
      const e = ring[this.#hand] as CacheEntry
      const slot = this.#hand
      this.#hand = this.#hand + 1 === this.#max ? 0 : this.#hand + 1
      if (e.used && e.expiresAt > now) { e.used = false; continue }
      this.#unlink(e.pos)
      this.#live--
      this.stats.evictions++
      return slot
    }
  }

  #remove (e: CacheEntry): void {
    this.#unlink(e.pos)
    this.#live--
    this.#ring[e.slot] = undefined
    this.#free.push(e.slot)
    this.stats.size = this.#live
  }

  clear (): void {
    this.#hashes = new Int32Array(64)
    this.#slots = new Int32Array(64)
    this.#mask = 63
    this.#live = 0
    this.#ring.length = 0
    this.#free.length = 0
    this.#hand = 0
    this.stats.size = 0
  }

  /** Tests: checks that every live entry is found where the table says; a description of the first fault. */
  selfCheck (): string | undefined {
    let n = 0
    for (const e of this.#ring) {
      if (e === undefined) continue
      n++
      if (this.#hashes[e.pos] !== this.#hash(e.key) || this.#slots[e.pos] !== e.slot) return `${e.key}: table position ${e.pos} is not its own`
      if (this.#find(e.key, this.#hash(e.key)) !== e) return `${e.key}: not found by a lookup`
    }
    let used = 0
    for (const x of this.#hashes) if (x !== EMPTY) used++
    if (n !== this.#live || used !== this.#live) return `${n} entries in the ring, ${used} table positions used, ${this.#live} counted`
    return undefined
  }
}

/** FNV-1a over the key's characters, mixed (murmur3's finalizer) so that the low bits spread. */
function hashKey (key: string): number {
  let h = 0x811c9dc5 | 0
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h
}
