// The answer cache: stored answers keyed by (name, type, class, DO), bounded by entry count with
// LRU eviction, expiring by the answer's lifetime. Time comes from the injected clock (ms).
// Knows nothing of sockets or policy; the pipeline's cache stage decides what goes in.

import type { StoredAnswer } from './wire.js'

export interface CacheStats { size: number, hits: number, misses: number, evictions: number, expired: number }

/** Table markers: a key's hash is never 0 (empty slot). */
const EMPTY = 0

/** What `find` returns when the key has no live entry. */
export const MISS = -1

/**
 * Eviction is LRU approximated by CLOCK (second chance): entries sit in a ring of `maxEntries`
 * slots; a hit only sets a flag, so the hot path never reorders anything; when the cache is full,
 * the hand moves over the ring, clearing flags, and evicts the first entry not used since the
 * hand last passed. Every operation is O(1) amortized. (A JS Map used as an LRU queue is not:
 * reading its oldest key walks over every deleted slot before it.)
 *
 * An entry is not an object: the ring is a set of parallel arrays indexed by slot (key, answer,
 * stored-at and expires-at times, used flag, table position), and `find` hands out the slot.
 * Storing an answer allocates nothing of the cache's own, so nothing more survives into the old
 * generation per answer than the answer itself, and the eviction hand reads the times and flags
 * of consecutive slots from dense typed arrays instead of one cold object per step. (In forwarding,
 * every answer is stored and one is evicted for it; measured alone, this change moved W3's CPU per
 * query by under 1 %, within noise: the answers the cache keeps, not the entries, are most of what
 * survives.)
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
  // The ring: slots 0..#length-1 are in use (or free, listed in #free); the typed arrays grow by
  // doubling up to #max slots.
  #length = 0
  #keys: Array<string | undefined> = []
  #answers: Array<StoredAnswer | undefined> = []
  #storedAt = new Float64Array(0)
  #expiresAt = new Float64Array(0)
  /** 1: hit since the hand last passed (second chance). */
  #used = new Uint8Array(0)
  /** Where the slot's key sits in the hash table (moves when a removal shifts it back). */
  #pos = new Int32Array(0)
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

  /** The slot of the live entry for `key`, or MISS; an expired entry is dropped. */
  find (key: string, now: number = this.#now()): number {
    const slot = this.#lookup(key, this.#hash(key))
    if (slot === MISS) { this.stats.misses++; return MISS }
    if (this.#expiresAt[slot] <= now) {
      this.#remove(slot)
      this.stats.expired++
      this.stats.misses++
      return MISS
    }
    this.#used[slot] = 1
    this.stats.hits++
    return slot
  }

  /** The answer in a slot `find` returned (valid until the next `put` or `clear`). */
  answer (slot: number): StoredAnswer { return this.#answers[slot] as StoredAnswer }
  /** When the answer in `slot` was stored (clock ms): TTLs served are decremented from here. */
  storedAt (slot: number): number { return this.#storedAt[slot] }
  /** When the answer in `slot` expires (clock ms). */
  expiresAt (slot: number): number { return this.#expiresAt[slot] }

  /** The live answer for `key` (tests, tools): `find` and `answer` in one. */
  get (key: string, now: number = this.#now()): StoredAnswer | undefined {
    const slot = this.find(key, now)
    return slot === MISS ? undefined : this.answer(slot)
  }

  /** Stores an answer for its lifetime; answers with lifetime 0 are not stored. */
  put (key: string, answer: StoredAnswer, now: number = this.#now()): void {
    if (answer.lifetime <= 0 || this.#max === 0) return
    const h = this.#hash(key)
    let slot = this.#lookup(key, h)
    if (slot === MISS) {
      if ((this.#live + 1) * 2 > this.#hashes.length) this.#grow()
      slot = this.#freeSlot(now) // may evict, which may move keys in the table: probe after it
      this.#pos[slot] = this.#insert(h, slot)
      this.#keys[slot] = key
      this.#live++
      this.stats.size = this.#live
    }
    this.#answers[slot] = answer
    this.#storedAt[slot] = now
    this.#expiresAt[slot] = now + answer.lifetime * 1000
    this.#used[slot] = 0
  }

  /** The key's hash, never EMPTY. */
  #hash (key: string): number {
    const h = this.#hashOf(key)
    return h === EMPTY ? 1 : h
  }

  /** The ring slot holding `key`, or MISS. */
  #lookup (key: string, h: number): number {
    const hashes = this.#hashes
    const mask = this.#mask
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const x = hashes[i]
      if (x === EMPTY) return MISS
      if (x === h) {
        const slot = this.#slots[i]
        if (this.#keys[slot] === key) return slot
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
      this.#pos[slots[hole]] = hole
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
    for (let slot = 0; slot < this.#length; slot++) {
      const key = this.#keys[slot]
      if (key !== undefined) this.#pos[slot] = this.#insert(this.#hash(key), slot)
    }
  }

  /** A slot for a new entry: a freed one, a new one at the end of the ring, or an evicted one. */
  #freeSlot (now: number): number {
    const free = this.#free.pop()
    if (free !== undefined) return free
    if (this.#length < this.#max) {
      if (this.#length === this.#used.length) this.#growRing()
      return this.#length++
    }
    // Full: move the hand until an entry has had no hit since the last pass (or has expired).
    // Bounded: each step clears a flag that only a hit sets again.
    const used = this.#used
    const expiresAt = this.#expiresAt
    for (;;) {
      const slot = this.#hand
      this.#hand = slot + 1 === this.#max ? 0 : slot + 1
      if (used[slot] === 1 && expiresAt[slot] > now) { used[slot] = 0; continue }
      this.#unlink(this.#pos[slot])
      this.#live--
      this.stats.evictions++
      return slot
    }
  }

  /** Doubles the ring's typed arrays (up to #max slots). */
  #growRing (): void {
    const n = Math.min(this.#max, Math.max(64, this.#used.length * 2))
    const storedAt = new Float64Array(n)
    const expiresAt = new Float64Array(n)
    const used = new Uint8Array(n)
    const pos = new Int32Array(n)
    storedAt.set(this.#storedAt)
    expiresAt.set(this.#expiresAt)
    used.set(this.#used)
    pos.set(this.#pos)
    this.#storedAt = storedAt
    this.#expiresAt = expiresAt
    this.#used = used
    this.#pos = pos
  }

  #remove (slot: number): void {
    this.#unlink(this.#pos[slot])
    this.#live--
    this.#keys[slot] = undefined
    this.#answers[slot] = undefined
    this.#free.push(slot)
    this.stats.size = this.#live
  }

  clear (): void {
    this.#hashes = new Int32Array(64)
    this.#slots = new Int32Array(64)
    this.#mask = 63
    this.#live = 0
    this.#length = 0
    this.#keys = []
    this.#answers = []
    this.#free.length = 0
    this.#hand = 0
    this.stats.size = 0
  }

  /** Tests: checks that every live entry is found where the table says; a description of the first fault. */
  selfCheck (): string | undefined {
    let n = 0
    for (let slot = 0; slot < this.#length; slot++) {
      const key = this.#keys[slot]
      if (key === undefined) continue
      n++
      const pos = this.#pos[slot]
      if (this.#hashes[pos] !== this.#hash(key) || this.#slots[pos] !== slot) return `${key}: table position ${pos} is not its own`
      if (this.#lookup(key, this.#hash(key)) !== slot) return `${key}: not found by a lookup`
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
