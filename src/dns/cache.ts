// The answer cache: stored answers keyed by (name, type, class, DO), bounded by entry count with
// LRU eviction, expiring by the answer's lifetime. Time comes from the injected clock (ms).
// Knows nothing of sockets or policy; the pipeline's cache stage decides what goes in.

import { Buffer } from 'node:buffer' // a plain binding; the global is a getter (see wire.ts)
import { answerTargetsIn, keyHash, renderCached, type AnswerTargets, type Query, type StoredAnswer } from './wire.js'

export interface CacheStats { size: number, hits: number, misses: number, evictions: number, expired: number }

/** Table markers: a key's hash is never 0 (empty slot). */
const EMPTY = 0

/** What `find` returns when the key has no live entry. */
export const MISS = -1

/** What `recall` returns when no decision is remembered for the slot under the given keys. */
export const FORGOTTEN: unique symbol = Symbol('forgotten')

/**
 * Bytes of arena per entry. An answer whose body, OPT and key fit (nearly every answer: a typical
 * A or AAAA answer with a CNAME chain is 60-300 bytes) is kept in its slot's share of the arena;
 * a larger one gets a buffer of its own.
 */
export const SLOT_BYTES = 512
const SLOT_SHIFT = 9

/**
 * Eviction is LRU approximated by CLOCK (second chance): entries sit in a ring of `maxEntries`
 * slots; a hit only sets a flag, so the hot path never reorders anything; when the cache is full,
 * the hand moves over the ring, clearing flags, and evicts the first entry not used since the
 * hand last passed. Every operation is O(1) amortized. (A JS Map used as an LRU queue is not:
 * reading its oldest key walks over every deleted slot before it.)
 *
 * An entry is not an object, and neither is its answer: the ring is a set of parallel typed arrays
 * indexed by slot (lengths, key hash, stored-at and expires-at times, used flag, table position),
 * and the answer's bytes, its OPT and its key are copied into the slot's 512 bytes of an arena
 * (chunks of 1 MiB, allocated as the ring grows). Storing an answer leaves nothing behind on the
 * JavaScript heap: the upstream's datagram, the prepared answer and the key string all die young.
 * Kept as objects (the datagram's buffer with its own ArrayBuffer and backing store, the answer
 * object, the key), every forwarded answer survived into the old generation and took the garbage
 * collector's time twice, once to promote it and once to free it after eviction: a bare forwarder
 * that kept them used 13-16 % more CPU per query than one copying the bytes into an arena
 * (bench/floor-forwarder.mjs, paired rounds). The arena's size is bounded and known: maxEntries x
 * 512 bytes, touched only as the ring fills.
 *
 * Keys are found through an open-addressing table of our own, not a `Map`: two int32 arrays (the
 * key's 32-bit hash, the entry's ring slot), linear probing, at most half full, and removals that
 * shift the following keys back instead of leaving tombstones. Most lookups miss (every blocked and
 * every forwarded query looks first): a miss reads one slot, and neither a miss nor an insertion
 * compares any key bytes unless the 32-bit hashes are equal. In a `Map` of 100,000 string
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
  /** 1: the slot holds an entry. */
  #live8 = new Uint8Array(0)
  /** Arena chunks of #chunkSlots slots each; a slot's bytes start at (slot & #chunkMask) * SLOT_BYTES. */
  #chunks: Buffer[] = []
  readonly #chunkShift: number
  readonly #chunkMask: number
  /** The buffer of an entry too large for its slot (undefined: the entry is in the arena). */
  #spill: Array<Buffer | undefined> = []
  /** Byte lengths of the entry's parts, stored one after the other: body, OPT, key. */
  #bodyLen = new Uint16Array(0)
  #optLen = new Uint16Array(0)
  #keyLen = new Uint16Array(0)
  #keyHash = new Int32Array(0)
  #storedAt = new Float64Array(0)
  #expiresAt = new Float64Array(0)
  /** 1: hit since the hand last passed (second chance). */
  #used = new Uint8Array(0)
  /** Where the slot's key sits in the hash table (moves when a removal shifts it back). */
  #pos = new Int32Array(0)
  /** A decision remembered per slot (see `recall`), and the two keys it was made under. */
  #memoKey: unknown[] = []
  #memoBy: unknown[] = []
  #memoValue: unknown[] = []
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
    this.#hashOf = opts.hash ?? keyHash
    // 2,048 slots (1 MiB) per chunk, fewer for a small cache.
    let shift = 0
    while (shift < 11 && (1 << shift) < this.#max) shift++
    this.#chunkShift = shift
    this.#chunkMask = (1 << shift) - 1
  }

  get size (): number { return this.#live }

  /**
   * The slot of the live entry for `key`, or MISS; an expired entry is dropped. `h` is the key's
   * hash when the caller has it already (Query.keyHash). Without `now`, the clock is read only
   * when the key is found (a miss, the common case, needs no time), and kept in `checkedAt`.
   */
  find (key: string, now?: number, h: number = this.#hash(key)): number {
    const slot = this.#lookup(key, h)
    if (slot === MISS) { this.stats.misses++; return MISS }
    const t = this.checkedAt = now ?? this.#now()
    if (this.#expiresAt[slot] <= t) {
      this.#remove(slot)
      this.stats.expired++
      this.stats.misses++
      return MISS
    }
    this.#used[slot] = 1
    this.stats.hits++
    return slot
  }

  /** The clock reading (ms) of the last `find` that found its key. */
  checkedAt = 0

  // A slot `find` returned is valid until the next `put` or `clear`.

  /** When the answer in `slot` was stored (clock ms): TTLs served are decremented from here. */
  storedAt (slot: number): number { return this.#storedAt[slot] }
  /** When the answer in `slot` expires (clock ms). */
  expiresAt (slot: number): number { return this.#expiresAt[slot] }
  /** The rcode of the answer in `slot`. */
  rcode (slot: number): number { return this.#source(slot)[this.#at(slot) + 3] & 0x0f }

  /** The answer in `slot` for one client (its ID, question case and OPT), TTLs decremented by `elapsed` s. */
  render (slot: number, msg: Buffer, q: Query, elapsed: number): Buffer {
    return renderCached(this.#source(slot), this.#at(slot), this.#bodyLen[slot], this.#optLen[slot], msg, q, elapsed)
  }

  /** The answer's CNAME targets and addresses (wire.answerTargets) into `out`. */
  targets (slot: number, out: AnswerTargets): AnswerTargets {
    const at = this.#at(slot)
    return answerTargetsIn(this.#source(slot), at, at + this.#bodyLen[slot], out)
  }

  /**
   * The decision remembered for `slot` under the two keys (for answer policy: the client group's
   * index and the policy snapshot's token), or FORGOTTEN. Storing a new answer in the slot forgets
   * it. Whatever the keys and the value reference stays alive until then: keys are best small.
   */
  recall (slot: number, key: unknown, by: unknown): unknown {
    return this.#memoKey[slot] === key && this.#memoBy[slot] === by ? this.#memoValue[slot] : FORGOTTEN
  }

  remember (slot: number, key: unknown, by: unknown, value: unknown): void {
    this.#memoKey[slot] = key
    this.#memoBy[slot] = by
    this.#memoValue[slot] = value
  }

  /** The live answer for `key` as a StoredAnswer of its own (tests, tools): a copy of the bytes. */
  get (key: string, now: number = this.#now()): StoredAnswer | undefined {
    const slot = this.find(key, now)
    if (slot === MISS) return undefined
    const src = this.#source(slot)
    const at = this.#at(slot)
    const blen = this.#bodyLen[slot]
    const body = Buffer.from(src.subarray(at, at + blen))
    return {
      body,
      opt: Buffer.from(src.subarray(at + blen, at + blen + this.#optLen[slot])),
      rcode: body[3] & 0x0f,
      lifetime: (this.#expiresAt[slot] - this.#storedAt[slot]) / 1000,
      ancount: (body[6] << 8) | body[7],
      raw: undefined
    }
  }

  /** Stores a copy of an answer for its lifetime; answers with lifetime 0 are not stored. `h` as for `find`. */
  put (key: string, answer: StoredAnswer, now: number = this.#now(), h: number = this.#hash(key)): void {
    if (answer.lifetime <= 0 || this.#max === 0) return
    let slot = this.#lookup(key, h)
    if (slot === MISS) {
      if ((this.#live + 1) * 2 > this.#hashes.length) this.#grow()
      slot = this.#freeSlot(now) // may evict, which may move keys in the table: probe after it
      this.#pos[slot] = this.#insert(h, slot)
      this.#keyHash[slot] = h
      this.#live8[slot] = 1
      this.#live++
      this.stats.size = this.#live
    }
    const { body, opt } = answer
    const blen = body.length
    const olen = opt.length
    const klen = key.length
    let dst: Buffer
    let at: number
    if (blen + olen + klen <= SLOT_BYTES) {
      dst = this.#chunks[slot >> this.#chunkShift] ??= Buffer.allocUnsafeSlow(SLOT_BYTES << this.#chunkShift)
      at = (slot & this.#chunkMask) << SLOT_SHIFT
      this.#spill[slot] = undefined
    } else {
      dst = Buffer.allocUnsafeSlow(blen + olen + klen)
      at = 0
      this.#spill[slot] = dst
    }
    dst.set(body, at)
    dst.set(opt, at + blen)
    // Keys are ASCII (odd bytes are escaped as \DDD).
    for (let i = 0, p = at + blen + olen; i < klen; i++) dst[p + i] = key.charCodeAt(i)
    this.#bodyLen[slot] = blen
    this.#optLen[slot] = olen
    this.#keyLen[slot] = klen
    this.#storedAt[slot] = now
    this.#expiresAt[slot] = now + answer.lifetime * 1000
    this.#used[slot] = 0
    this.#memoKey[slot] = undefined
    this.#memoBy[slot] = undefined
    this.#memoValue[slot] = undefined
  }

  #source (slot: number): Buffer {
    return this.#spill[slot] ?? this.#chunks[slot >> this.#chunkShift]
  }

  #at (slot: number): number {
    return this.#spill[slot] === undefined ? (slot & this.#chunkMask) << SLOT_SHIFT : 0
  }

  /** True when the entry in `slot` was stored under `key`. */
  #keyIs (slot: number, key: string): boolean {
    const n = key.length
    if (this.#keyLen[slot] !== n) return false
    const src = this.#source(slot)
    const p = this.#at(slot) + this.#bodyLen[slot] + this.#optLen[slot]
    for (let i = 0; i < n; i++) if (src[p + i] !== key.charCodeAt(i)) return false
    return true
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
        if (this.#keyIs(slot, key)) return slot
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
      if (this.#live8[slot] === 1) this.#pos[slot] = this.#insert(this.#keyHash[slot], slot)
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

  /** Doubles the ring's arrays (up to #max slots). */
  #growRing (): void {
    const n = Math.min(this.#max, Math.max(64, this.#used.length * 2))
    this.#live8 = grown(this.#live8, new Uint8Array(n))
    this.#bodyLen = grown(this.#bodyLen, new Uint16Array(n))
    this.#optLen = grown(this.#optLen, new Uint16Array(n))
    this.#keyLen = grown(this.#keyLen, new Uint16Array(n))
    this.#keyHash = grown(this.#keyHash, new Int32Array(n))
    this.#storedAt = grown(this.#storedAt, new Float64Array(n))
    this.#expiresAt = grown(this.#expiresAt, new Float64Array(n))
    this.#used = grown(this.#used, new Uint8Array(n))
    this.#pos = grown(this.#pos, new Int32Array(n))
    // Filled, so that the arrays stay packed (no holes) as slots are written in any order.
    for (const a of [this.#spill, this.#memoKey, this.#memoBy, this.#memoValue]) {
      for (let i = a.length; i < n; i++) a.push(undefined)
    }
  }

  #remove (slot: number): void {
    this.#unlink(this.#pos[slot])
    this.#live--
    this.#live8[slot] = 0
    this.#spill[slot] = undefined
    this.#memoKey[slot] = undefined
    this.#memoBy[slot] = undefined
    this.#memoValue[slot] = undefined
    this.#free.push(slot)
    this.stats.size = this.#live
  }

  clear (): void {
    this.#hashes = new Int32Array(64)
    this.#slots = new Int32Array(64)
    this.#mask = 63
    this.#live = 0
    this.#length = 0
    this.#live8.fill(0)
    this.#chunks = []
    this.#spill.fill(undefined)
    this.#memoKey.fill(undefined)
    this.#memoBy.fill(undefined)
    this.#memoValue.fill(undefined)
    this.#free.length = 0
    this.#hand = 0
    this.stats.size = 0
  }

  /** Tests: checks that every live entry is found where the table says; a description of the first fault. */
  selfCheck (): string | undefined {
    let n = 0
    for (let slot = 0; slot < this.#length; slot++) {
      if (this.#live8[slot] === 0) continue
      n++
      const at = this.#at(slot) + this.#bodyLen[slot] + this.#optLen[slot]
      const key = this.#source(slot).toString('latin1', at, at + this.#keyLen[slot])
      const pos = this.#pos[slot]
      if (this.#hashes[pos] !== this.#hash(key) || this.#keyHash[slot] !== this.#hash(key) || this.#slots[pos] !== slot) return `${key}: table position ${pos} is not its own`
      if (this.#lookup(key, this.#hash(key)) !== slot) return `${key}: not found by a lookup`
    }
    let used = 0
    for (const x of this.#hashes) if (x !== EMPTY) used++
    if (n !== this.#live || used !== this.#live) return `${n} entries in the ring, ${used} table positions used, ${this.#live} counted`
    return undefined
  }
}

/** `into` with `from`'s elements at its start. */
function grown<T extends Uint8Array | Uint16Array | Int32Array | Float64Array> (from: T, into: T): T {
  into.set(from)
  return into
}
