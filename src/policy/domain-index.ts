// Name rules compiled for matching: hash maps walked label by label from the full name up to its
// last label (one map lookup per label, no trie nodes to allocate), plus a small list of bounded
// regexes. Each map value is a rule id; rules with the same name are chained, so the caller can
// skip rules that do not apply (a category disabled for the client's group) and take the next.

import { FNV_OFFSET, FNV_PRIME, finishHash } from '../hash.js'

export type NameKind = 'suffix' | 'exact' | 'wildcard'

export class DomainIndex {
  /**
   * name -> first rule id; `x` matches x and every name under it. Once sealed, only the names the
   * table cannot decide alone stay here (those sharing a hash, non-ASCII ones): a million-name list
   * does not keep a million-entry map next to the table.
   */
  #suffix = new Map<string, number>()
  /** Distinct suffix-rule names. */
  #suffixNames = 0
  /** name -> first rule id; matches only the name itself. */
  readonly #exact = new Map<string, number>()
  /** base -> first rule id; `*.x` matches names strictly under x. */
  readonly #wildcard = new Map<string, number>()
  readonly #regex: Array<{ re: RegExp, id: number }> = []
  /** Next rule id with the same name in the same map, or -1. Indexed by rule id. */
  readonly #next: number[] = []
  /**
   * After seal(): an open-addressing table of the hashes of every suffix-rule name. A lookup hashes
   * the query name once from the right, which gives the hash of every suffix on the way, and only
   * suffixes whose hash is in the table are checked. Most names match nothing, and for them the
   * walk allocates nothing and touches one compact array.
   *
   * Four int32 per slot, so that a probe and its confirmation read one cache line: the hash key
   * (0 = empty), the name's first rule id (-2: two listed names share the hash, and the map
   * decides), and where the name's bytes are in `#arena` (offset, length). A hit is confirmed by
   * comparing the query name's tail with those bytes: no slice, no map lookup, no string object.
   */
  #slots: Int32Array | undefined
  #arena = new Uint8Array(0)
  /**
   * A bitmap of 8 bits per table slot (16 or more per listed name), with the bit of every listed
   * name's key set (taken from the key's high bits; the table uses the low ones): a suffix whose
   * bit is clear is not listed, known from a bitmap small enough to stay in cache, without touching
   * the much larger table.
   */
  #bits = new Int32Array(0)
  #bitShift = 32
  readonly #hits = new Int32Array(128)
  readonly #hitSlots = new Int32Array(128)

  add (kind: NameKind, name: string, id: number): void {
    if (kind === 'suffix' && this.#slots !== undefined) throw new Error('DomainIndex: a suffix rule added after seal()')
    const map = kind === 'suffix' ? this.#suffix : kind === 'exact' ? this.#exact : this.#wildcard
    const first = map.get(name)
    this.#next[id] = first ?? -1
    map.set(name, id)
    if (kind === 'suffix' && first === undefined) this.#suffixNames++
  }

  addRegex (re: RegExp, id: number): void {
    this.#regex.push({ re, id })
    this.#next[id] = -1
  }

  /** Builds the suffix hash table; call once, after every suffix rule is added. */
  seal (): void {
    if (this.#slots !== undefined) return
    let size = 16
    while (size < this.#suffix.size * 2) size *= 2
    const slots = new Int32Array(size * 4)
    let bytes = 0
    for (const name of this.#suffix.keys()) bytes += name.length
    const arena = new Uint8Array(bytes)
    let used = 0
    const mask = size - 1
    // size * 8 bits: a suffix that is not listed finds its bit set about once in 16.
    const bitShift = 32 - Math.log2(size * 8)
    const bits = new Int32Array(size / 4)
    const hashes = new Int32Array(this.#suffix.size) // per name, in map order
    let k = 0
    for (const [name, first] of this.#suffix) {
      const h = suffixHash(name, 0, name.length)
      hashes[k++] = h
      const b = h >>> bitShift
      bits[b >>> 5] |= 1 << (b & 31)
      let i = h & mask
      while (slots[i * 4] !== 0 && slots[i * 4] !== h) i = (i + 1) & mask
      const s = i * 4
      if (slots[s] === h) {
        slots[s + 1] = -2 // a second name with the same hash
        continue
      }
      slots[s] = h
      slots[s + 1] = first
      // Listed names are ASCII (IDNs as punycode, odd bytes as \DDD); anything else goes to the map.
      let ascii = true
      for (let c = 0; c < name.length; c++) {
        const code = name.charCodeAt(c)
        if (code > 0x7f) ascii = false
        arena[used + c] = code
      }
      if (!ascii) { slots[s + 1] = -2; continue }
      slots[s + 2] = used
      slots[s + 3] = name.length
      used += name.length
    }
    // Keep in the map only what the table sends there.
    const shared = new Map<string, number>()
    k = 0
    for (const [name, first] of this.#suffix) {
      const h = hashes[k++]
      let i = h & mask
      while (slots[i * 4] !== h) i = (i + 1) & mask
      if (slots[i * 4 + 1] === -2) shared.set(name, first)
    }
    this.#suffix = shared
    this.#slots = slots
    this.#arena = arena
    this.#bits = bits
    this.#bitShift = bitShift
  }

  /** Slots of the sealed table that the map decides (names sharing a hash, non-ASCII names). */
  get hashCollisions (): number {
    const slots = this.#slots
    let n = 0
    if (slots !== undefined) for (let s = 1; s < slots.length; s += 4) if (slots[s] === -2) n++
    return n
  }

  get size (): number { return this.#suffixNames + this.#exact.size + this.#wildcard.size + this.#regex.length }

  /**
   * The first rule that matches `qname` (lower-case, no trailing dot) and that `accept` takes, or -1.
   * Order: exact, then suffix rules from the longest matching name up, then wildcards, then regexes.
   */
  match (qname: string, accept: (id: number) => boolean): number {
    if (this.#exact.size > 0) {
      const id = this.#take(this.#exact.get(qname), accept)
      if (id >= 0) return id
    }
    if (this.#suffixNames > 0) {
      const id = this.#slots === undefined ? this.#walk(this.#suffix, qname, 0, accept) : this.#filtered(qname, accept)
      if (id >= 0) return id
    }
    if (this.#wildcard.size > 0) {
      const dot = qname.indexOf('.')
      if (dot >= 0) {
        const id = this.#walk(this.#wildcard, qname, dot + 1, accept)
        if (id >= 0) return id
      }
    }
    // Regexes are bounded for real names (<= 253 characters, labels <= 63); a name with escaped
    // bytes (\DDD) from the wire can be longer, and no list rule could mean it anyway.
    if (this.#regex.length > 0 && !qname.includes('\\')) {
      for (const r of this.#regex) {
        if (r.re.test(qname) && accept(r.id)) return r.id
      }
    }
    return -1
  }

  /** Looks up qname.slice(from) and every shorter suffix, longest first. */
  #walk (map: Map<string, number>, qname: string, from: number, accept: (id: number) => boolean): number {
    for (let start = from; ;) {
      const id = this.#take(map.get(start === 0 ? qname : qname.slice(start)), accept)
      if (id >= 0) return id
      const dot = qname.indexOf('.', start)
      if (dot < 0) return -1
      start = dot + 1
    }
  }

  #filtered (qname: string, accept: (id: number) => boolean): number {
    const slots = this.#slots as Int32Array
    const mask = (slots.length >> 2) - 1
    const hits = this.#hits
    const hitSlots = this.#hitSlots
    const bits = this.#bits
    const bitShift = this.#bitShift
    let n = 0
    let h = FNV_OFFSET
    // Right to left, each character read once: at a dot (or the start), h is the hash of the
    // suffix after it.
    for (let i = qname.length - 1; ; i--) {
      const c = i >= 0 ? qname.charCodeAt(i) : 0x2e
      if (c === 0x2e) {
        const key = finishHash(h)
        const b = key >>> bitShift
        if ((bits[b >>> 5] & (1 << (b & 31))) !== 0) {
          let j = key & mask
          while (slots[j << 2] !== 0 && slots[j << 2] !== key) j = (j + 1) & mask
          if (slots[j << 2] === key && n < hits.length) { hits[n] = i + 1; hitSlots[n++] = j << 2 }
        }
        if (i < 0) break
      }
      h = Math.imul(h ^ c, FNV_PRIME) // int32 all the way: no heap numbers
    }
    // Candidates were found shortest first; the most specific name wins.
    const arena = this.#arena
    for (let k = n - 1; k >= 0; k--) {
      const start = hits[k]
      const s = hitSlots[k]
      const first = slots[s + 1]
      let id: number
      if (first === -2) {
        id = this.#take(this.#suffix.get(start === 0 ? qname : qname.slice(start)), accept)
      } else {
        // Same hash; the same name only if the query name's tail reads the same.
        const len = slots[s + 3]
        if (len !== qname.length - start) continue
        const off = slots[s + 2] - start
        let c = start
        while (c < qname.length && arena[off + c] === qname.charCodeAt(c)) c++
        if (c !== qname.length) continue
        id = this.#take(first, accept)
      }
      if (id >= 0) return id
    }
    return -1
  }

  #take (first: number | undefined, accept: (id: number) => boolean): number {
    for (let id = first ?? -1; id >= 0; id = this.#next[id]) {
      if (accept(id)) return id
    }
    return -1
  }
}

/** FNV-1a (int32) over name[from..to) read right to left, finalized. */
function suffixHash (name: string, from: number, to: number): number {
  let h = FNV_OFFSET
  for (let i = to - 1; i >= from; i--) h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME)
  return finishHash(h)
}
