// Name rules compiled for matching: hash maps walked label by label from the full name up to its
// last label (one map lookup per label, no trie nodes to allocate), plus a small list of bounded
// regexes. Each map value is a rule id; rules with the same name are chained, so the caller can
// skip rules that do not apply (a category disabled for the client's group) and take the next.

export type NameKind = 'suffix' | 'exact' | 'wildcard'

export class DomainIndex {
  /** name -> first rule id; `x` matches x and every name under it. */
  readonly #suffix = new Map<string, number>()
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
   */
  #filter: Int32Array | undefined
  /**
   * Per slot of the table: the name whose hash it holds and that name's first rule id, so a hit is
   * confirmed by comparing the query name's tail with that name (no slice, no map lookup). -2: two
   * listed names share the hash, and the map decides.
   */
  #slotFirst = new Int32Array(0)
  #slotName: string[] = []
  readonly #hits = new Int32Array(128)
  readonly #hitSlots = new Int32Array(128)

  add (kind: NameKind, name: string, id: number): void {
    const map = kind === 'suffix' ? this.#suffix : kind === 'exact' ? this.#exact : this.#wildcard
    const first = map.get(name)
    this.#next[id] = first === undefined ? -1 : first
    map.set(name, id)
    if (kind === 'suffix') this.#filter = undefined
  }

  addRegex (re: RegExp, id: number): void {
    this.#regex.push({ re, id })
    this.#next[id] = -1
  }

  /** Builds the suffix hash table; call once all rules are added (adding more drops it). */
  seal (): void {
    let size = 16
    while (size < this.#suffix.size * 2) size *= 2
    const table = new Int32Array(size)
    const slotFirst = new Int32Array(size)
    const slotName: string[] = new Array<string>(size).fill('')
    const mask = size - 1
    for (const [name, first] of this.#suffix) {
      const h = suffixHash(name, 0, name.length)
      let i = h & mask
      while (table[i] !== 0 && table[i] !== h) i = (i + 1) & mask
      if (table[i] === h) {
        slotFirst[i] = -2 // a second name with the same hash
      } else {
        table[i] = h
        slotFirst[i] = first
        slotName[i] = name
      }
    }
    this.#filter = table
    this.#slotFirst = slotFirst
    this.#slotName = slotName
  }

  /** Slots of the sealed table shared by two listed names (those lookups go through the map). */
  get hashCollisions (): number {
    let n = 0
    for (const f of this.#slotFirst) if (f === -2) n++
    return n
  }

  get size (): number { return this.#suffix.size + this.#exact.size + this.#wildcard.size + this.#regex.length }

  /**
   * The first rule that matches `qname` (lower-case, no trailing dot) and that `accept` takes, or -1.
   * Order: exact, then suffix rules from the longest matching name up, then wildcards, then regexes.
   */
  match (qname: string, accept: (id: number) => boolean): number {
    if (this.#exact.size > 0) {
      const id = this.#take(this.#exact.get(qname), accept)
      if (id >= 0) return id
    }
    if (this.#suffix.size > 0) {
      const id = this.#filter === undefined ? this.#walk(this.#suffix, qname, 0, accept) : this.#filtered(qname, accept)
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
    const table = this.#filter as Int32Array
    const mask = table.length - 1
    const hits = this.#hits
    const hitSlots = this.#hitSlots
    let n = 0
    let h = FNV_OFFSET
    for (let i = qname.length - 1; i >= 0; i--) {
      h = Math.imul(h ^ qname.charCodeAt(i), FNV_PRIME) // int32 all the way: no heap numbers
      if (i !== 0 && qname.charCodeAt(i - 1) !== 0x2e) continue
      const key = slotKey(h)
      let j = key & mask
      while (table[j] !== 0 && table[j] !== key) j = (j + 1) & mask
      if (table[j] === key && n < hits.length) { hits[n] = i; hitSlots[n++] = j }
    }
    // Candidates were found shortest first; the most specific name wins.
    for (let k = n - 1; k >= 0; k--) {
      const start = hits[k]
      const first = this.#slotFirst[hitSlots[k]]
      let id: number
      if (first === -2) {
        id = this.#take(this.#suffix.get(start === 0 ? qname : qname.slice(start)), accept)
      } else {
        const name = this.#slotName[hitSlots[k]]
        // Same hash; the same name only if the query name's tail reads the same.
        if (name.length !== qname.length - start || !qname.endsWith(name)) continue
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

const FNV_OFFSET = 0x811c9dc5 | 0
const FNV_PRIME = 0x01000193

/** FNV-1a (int32) over name[from..to) read right to left, finalized by slotKey. */
function suffixHash (name: string, from: number, to: number): number {
  let h = FNV_OFFSET
  for (let i = to - 1; i >= from; i--) h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME)
  return slotKey(h)
}

/**
 * The table key of a hash: FNV-1a's low bits are weakly mixed (a multiply never carries high bits
 * down), and the table is indexed by the low bits, so names that differ in a few digits
 * (blk-040057.bench.test) would pile up in long probe runs. A murmur3-style finalizer spreads
 * them. 0 marks an empty slot, so it is mapped to 1.
 */
function slotKey (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h === 0 ? 1 : h
}
