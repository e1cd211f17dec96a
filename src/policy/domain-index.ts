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

  add (kind: NameKind, name: string, id: number): void {
    const map = kind === 'suffix' ? this.#suffix : kind === 'exact' ? this.#exact : this.#wildcard
    const first = map.get(name)
    this.#next[id] = first === undefined ? -1 : first
    map.set(name, id)
  }

  addRegex (re: RegExp, id: number): void {
    this.#regex.push({ re, id })
    this.#next[id] = -1
  }

  get size (): number { return this.#suffix.size + this.#exact.size + this.#wildcard.size + this.#regex.length }

  /**
   * The first rule that matches `qname` (lower-case, no trailing dot) and that `accept` takes, or -1.
   * Order: exact, then suffix and wildcard from the longest matching name up, then regexes.
   */
  match (qname: string, accept: (id: number) => boolean): number {
    if (this.#exact.size > 0) {
      const id = this.#take(this.#exact.get(qname), accept)
      if (id >= 0) return id
    }
    const suffix = this.#suffix
    const wildcard = this.#wildcard.size > 0 ? this.#wildcard : undefined
    let name = qname
    for (let start = 0; ;) {
      const id = this.#take(suffix.get(name), accept)
      if (id >= 0) return id
      if (wildcard !== undefined && start > 0) {
        const w = this.#take(wildcard.get(name), accept)
        if (w >= 0) return w
      }
      const dot = qname.indexOf('.', start)
      if (dot < 0) break
      start = dot + 1
      name = qname.slice(start)
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

  #take (first: number | undefined, accept: (id: number) => boolean): number {
    for (let id = first ?? -1; id >= 0; id = this.#next[id]) {
      if (accept(id)) return id
    }
    return -1
  }
}
