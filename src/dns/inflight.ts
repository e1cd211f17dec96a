// The forwarded queries in flight, by cache key: coalescing finds the query an identical one can
// wait on here. An open-addressing table of our own (key hashes in an int32 array, the queries in
// a plain array beside it, linear probing, removals that shift the following entries back), not
// a `Map`: entries come and go at the query rate, and a `Map` rehashed into new storage every few
// hundred of them. Each old storage left behind in the old generation still pointed at the queries
// that were in flight when it was replaced, and until the next full collection the scavenger took
// those references as live: queries long answered, with their packets and strings, were copied and
// promoted instead of dying young. Here a removed entry is cleared in place.

/** The part of a query the table needs: its cache key. */
export interface Keyed { readonly q: { readonly key: string } }

export class InflightQueries<T extends Keyed> {
  /** Key hash per position (0: free; hashes are never 0, see wire.keyHash). */
  #hashes = new Int32Array(64)
  #entries: Array<T | undefined> = new Array<T | undefined>(64).fill(undefined)
  #mask = 63
  #size = 0

  get size (): number { return this.#size }

  /** The query in flight under `key` (hash `h`), or undefined. */
  get (key: string, h: number): T | undefined {
    const hashes = this.#hashes
    const mask = this.#mask
    for (let i = h & mask; hashes[i] !== 0; i = (i + 1) & mask) {
      if (hashes[i] === h) {
        const e = this.#entries[i] as T
        if (e.q.key === key) return e
      }
    }
    return undefined
  }

  /** Adds a query whose key is not in the table. */
  add (h: number, entry: T): void {
    if ((this.#size + 1) * 2 > this.#hashes.length) this.#grow()
    this.#put(h, entry)
    this.#size++
  }

  /** Removes `entry` (added under hash `h`); nothing happens if it is not there. */
  remove (h: number, entry: T): void {
    const hashes = this.#hashes
    const entries = this.#entries
    const mask = this.#mask
    let i = h & mask
    for (; hashes[i] !== 0; i = (i + 1) & mask) if (entries[i] === entry) break
    if (hashes[i] === 0) return
    this.#size--
    // Shift back every entry after the hole in the same run that may move into it (its home
    // position is not cyclically in (hole, j]), so lookups never need tombstones.
    let hole = i
    for (let j = (i + 1) & mask; hashes[j] !== 0; j = (j + 1) & mask) {
      const home = hashes[j] & mask
      const stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
      if (stays) continue
      hashes[hole] = hashes[j]
      entries[hole] = entries[j]
      hole = j
    }
    hashes[hole] = 0
    entries[hole] = undefined
  }

  #put (h: number, entry: T): void {
    const hashes = this.#hashes
    const mask = this.#mask
    let i = h & mask
    while (hashes[i] !== 0) i = (i + 1) & mask
    hashes[i] = h
    this.#entries[i] = entry
  }

  #grow (): void {
    const hashes = this.#hashes
    const entries = this.#entries
    const size = hashes.length * 2
    this.#hashes = new Int32Array(size)
    this.#entries = new Array<T | undefined>(size).fill(undefined)
    this.#mask = size - 1
    for (let i = 0; i < hashes.length; i++) if (hashes[i] !== 0) this.#put(hashes[i], entries[i] as T)
  }
}
