// The answer cache: stored answers keyed by (name, type, class, DO), bounded by entry count with
// LRU eviction, expiring by the answer's lifetime. Time comes from the injected clock (ms).
// Knows nothing of sockets or policy; the pipeline's cache stage decides what goes in.

import type { StoredAnswer } from './wire.js'

export interface CacheEntry {
  readonly answer: StoredAnswer
  /** Clock time (ms) when the answer was stored; TTLs served are decremented from here. */
  readonly storedAt: number
  readonly expiresAt: number
}

export interface CacheStats { size: number, hits: number, misses: number, evictions: number, expired: number }

export class AnswerCache {
  readonly #max: number
  readonly #now: () => number
  // Map keeps insertion order: the first key is the least recently used one.
  readonly #map = new Map<string, CacheEntry>()
  readonly stats: CacheStats = { size: 0, hits: 0, misses: 0, evictions: 0, expired: 0 }

  constructor (opts: { maxEntries: number, now: () => number }) {
    this.#max = opts.maxEntries
    this.#now = opts.now
  }

  get size (): number { return this.#map.size }

  /** The live entry for `key`, refreshed as most recently used; expired entries are dropped. */
  get (key: string, now: number = this.#now()): CacheEntry | undefined {
    const map = this.#map
    const e = map.get(key)
    if (e === undefined) { this.stats.misses++; return undefined }
    map.delete(key)
    if (e.expiresAt <= now) {
      this.stats.expired++
      this.stats.misses++
      this.stats.size = map.size
      return undefined
    }
    map.set(key, e)
    this.stats.hits++
    return e
  }

  /** Stores an answer for its lifetime; answers with lifetime 0 are not stored. */
  put (key: string, answer: StoredAnswer, now: number = this.#now()): void {
    if (answer.lifetime <= 0 || this.#max === 0) return
    const map = this.#map
    map.delete(key)
    map.set(key, { answer, storedAt: now, expiresAt: now + answer.lifetime * 1000 })
    while (map.size > this.#max) {
      const oldest = map.keys().next().value as string
      map.delete(oldest)
      this.stats.evictions++
    }
    this.stats.size = map.size
  }

  clear (): void {
    this.#map.clear()
    this.stats.size = 0
  }
}
