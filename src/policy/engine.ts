// The policy engine: every rule of every list compiled into one immutable snapshot that answers
// "is this name / this answer blocked for this client, and why". Built by build.ts, swapped in one
// step by the daemon; queries in flight keep the engine they started with.
//
// Rules live in arrays indexed by rule id (kind, value, line), so a million rules cost a few
// arrays, not a million objects. Ids are given out list by list, so a rule's list, and with it its
// category, is found from its id in a small table. Allow rules are a separate index that is
// consulted first: an allow rule that applies to the client's group overrides every block rule.

import type { BlockAction } from '../config/types.js'
import type { DomainIndex } from './domain-index.js'
import type { IpIndex } from './ip-index.js'
import { ipv4Text } from './names.js'
import { qtypeName } from '../qtypes.js'
import { typeApplies, type RuleKind, type TypeFilter } from './rule.js'

/** What matched: the query name, a name in the answer's CNAME chain, or an answer address. */
export type MatchedPart = 'qname' | 'cname' | 'address'

/**
 * The explanation of one decision. Where the rule came from (`Engine.rule(ruleId)`: list, line,
 * text) is looked up only by what shows it: a block that nobody logs never touches the rule's
 * records, which for a large list are cache misses.
 */
export interface Verdict {
  readonly action: BlockAction
  readonly category: string
  /** The rule that matched, in the snapshot that decided (its Engine). */
  readonly ruleId: number
  readonly matched: MatchedPart
  /** The name or address that matched. */
  readonly value: string
  readonly group: string
  /** Short policy reference (legal basis) from the category's meta.yaml, for the EDE text. */
  readonly policyRef: string
}

export interface CategoryInfo {
  readonly name: string
  readonly title: string
  readonly policyRef: string
  /** Enabled unless a group says otherwise (meta.yaml default, then config override). */
  readonly enabled: boolean
  readonly action: BlockAction
  /** What else stops working with this category on (meta.yaml alsoAffects). */
  readonly alsoAffects: readonly string[]
}

/** The parts of an answer that policy inspects: the first `…Count` entries of each array. */
export interface AnswerParts {
  /** CNAME/DNAME targets and HTTPS/SVCB target names. */
  readonly names: readonly string[]
  readonly nameCount: number
  /** IPv4 addresses (A records, ipv4hint) as 32-bit values. */
  readonly v4: readonly number[]
  readonly v4Count: number
  /** IPv6 addresses (AAAA records, ipv6hint) as text. */
  readonly v6: readonly string[]
  readonly v6Count: number
}

/** The policy of one client group, resolved against the categories. */
export interface GroupPlan {
  readonly index: number
  readonly name: string
  readonly exempt: boolean
  /** Per category id: 1 if its rules apply to this group. */
  readonly enabled: Uint8Array
  /** Per category id: the action for this group. */
  readonly actions: readonly BlockAction[]
  /** Takes a rule id if its category applies to this group (built once, used on every lookup). */
  readonly accepts: (id: number) => boolean
}

/** Where a rule came from, for logs and explanations. */
export interface RuleSource {
  /** The list file (or config path for inline rules). */
  readonly list: string
  readonly line: number
  /** The rule as written in its list. */
  readonly rule: string
}

export interface RuleTable {
  /** Per rule id. */
  readonly kind: readonly RuleKind[]
  readonly value: readonly string[]
  readonly line: Uint32Array
  /**
   * Ids are given out list by list: list i holds the ids from listStart[i] up to listStart[i + 1]
   * (one entry more than there are lists). A match learns its rule's category (does the rule apply
   * to the group?) from here and `listCategory`, two small arrays that stay in cache, instead of a
   * record per rule, which in a large list is a cache miss.
   */
  readonly listStart: Uint32Array
  /** Category id per list. */
  readonly listCategory: Uint32Array
  /** The `$dnstype=` filters of the rules that have one, by rule id (few rules have one). */
  readonly types: ReadonlyMap<number, TypeFilter>
}

/** The list a rule id belongs to (a binary search over RuleTable.listStart). */
export function listOfRule (listStart: Uint32Array, id: number): number {
  let lo = 0
  let hi = listStart.length - 2
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (listStart[mid] <= id) lo = mid
    else hi = mid - 1
  }
  return lo
}

export interface EngineParts {
  readonly generation: number
  readonly categories: readonly CategoryInfo[]
  readonly lists: readonly string[]
  readonly rules: RuleTable
  readonly blockNames: DomainIndex
  readonly allowNames: DomainIndex
  /**
   * Pack exceptions: the `@@` entries of a bundled category, which keep names answered that the
   * category's own entries would block (a host shared with an allowed service under a blocked
   * domain). Unlike an allow rule, an exception lifts only its own category's blocks.
   */
  readonly exceptNames: DomainIndex
  /** Per category id: 1 if it has pack exceptions. */
  readonly excepting: Uint8Array
  readonly blockAddresses: IpIndex
  readonly allowAddresses: IpIndex
  /** groups[0] is "default". */
  readonly groups: readonly GroupPlan[]
  /** Client ranges -> group index (rule ids of this index are group indexes). */
  readonly clients: IpIndex | undefined
}

export class Engine {
  readonly generation: number
  readonly categories: readonly CategoryInfo[]
  readonly groups: readonly GroupPlan[]
  /**
   * Names this snapshot without holding it: a decision remembered under the token (the answer
   * cache's) must not keep an engine alive, with all its lists, after a reload replaced it.
   */
  readonly token: object = Object.freeze({})
  readonly #p: EngineParts
  /** Client address -> group, for engines with groups (bounded; cleared when full). */
  readonly #groupOf = new Map<string, GroupPlan>()
  /** A rule's text, built the first time it is shown. Indexed by rule id. */
  readonly #ruleTexts: Array<string | undefined> = []

  /** True when answers need inspecting at all (some name or address rule exists). */
  readonly inspectsAnswers: boolean
  readonly #allowNames: boolean
  readonly #allowAddresses: boolean
  readonly #blockAddresses: boolean
  /** Per category id: 1 if it has pack exceptions. */
  readonly #excepting: Uint8Array
  /**
   * Set when some rule has a `$dnstype=` filter: per group, its `accepts` that also asks whether
   * the rule applies to `#qtype`, the type of the query being decided (set just before a match;
   * matching is synchronous). Without such rules, lookups take the group's `accepts` as before.
   */
  readonly #typedAccepts: Array<(id: number) => boolean> | undefined
  #qtype = 0

  constructor (parts: EngineParts) {
    this.#p = parts
    this.generation = parts.generation
    this.categories = parts.categories
    this.groups = parts.groups
    this.#allowNames = parts.allowNames.size > 0
    this.#allowAddresses = parts.allowAddresses.size > 0
    this.#blockAddresses = parts.blockAddresses.size > 0
    this.inspectsAnswers = parts.blockNames.size > 0 || this.#blockAddresses
    this.#excepting = parts.excepting
    const types = parts.rules.types
    this.#typedAccepts = types.size === 0
      ? undefined
      : parts.groups.map(g => (id: number) => {
        if (!g.accepts(id)) return false
        const f = types.get(id)
        return f === undefined || typeApplies(f, this.#qtype)
      })
  }

  /** True when some rule applies to certain query types only (`$dnstype=`). */
  get typed (): boolean { return this.#typedAccepts !== undefined }

  #categoryOf (id: number): number {
    const r = this.#p.rules
    return r.listCategory[listOfRule(r.listStart, id)]
  }

  /** The rule filter for a lookup of a name queried with type `qtype`. */
  #accepts (group: GroupPlan, qtype: number): (id: number) => boolean {
    const typed = this.#typedAccepts
    if (typed === undefined) return group.accepts
    this.#qtype = qtype
    return typed[group.index]
  }

  /**
   * The block rule for a name, past the pack exceptions: when the rule found belongs to a category
   * with an exception covering the name, that category is passed over and the search goes on.
   */
  #blockedName (qname: string, accepts: (id: number) => boolean): number {
    const p = this.#p
    const id = p.blockNames.match(qname, accepts)
    if (id < 0 || this.#excepting[this.#categoryOf(id)] === 0) return id
    const lifted = new Set<number>()
    let found = id
    while (found >= 0) {
      const c = this.#categoryOf(found)
      if (this.#excepting[c] === 0 || p.exceptNames.match(qname, e => this.#categoryOf(e) === c && accepts(e)) < 0) return found
      lifted.add(c)
      found = p.blockNames.match(qname, b => !lifted.has(this.#categoryOf(b)) && accepts(b))
    }
    return -1
  }

  /** The group a client address belongs to: the first group whose ranges contain it, else default. */
  groupOf (client: string): GroupPlan {
    const clients = this.#p.clients
    if (clients === undefined) return this.groups[0]
    let g = this.#groupOf.get(client)
    if (g === undefined) {
      // Ids are group indexes and come lowest first: the first group in the config wins.
      const found = clients.match(client, () => true)
      g = this.groups[found < 0 ? 0 : found]
      if (this.#groupOf.size >= 65536) this.#groupOf.clear()
      this.#groupOf.set(client, g)
    }
    return g
  }

  /**
   * The verdict for a name (the query name, or with `matched` 'cname' a name in its answer) of a
   * query of type `qtype`, or undefined when it is allowed.
   */
  decideName (qname: string, group: GroupPlan, qtype: number, matched: MatchedPart = 'qname'): Verdict | undefined {
    if (group.exempt) return undefined
    const accepts = this.#accepts(group, qtype)
    if (this.#allowNames && this.#p.allowNames.match(qname, accepts) >= 0) return undefined
    const id = this.#blockedName(qname, accepts)
    return id < 0 ? undefined : this.#verdict(id, group, matched, qname)
  }

  /** True when an allow rule that applies to the group (and to `qtype`) covers the name. */
  allowsName (qname: string, group: GroupPlan, qtype: number): boolean {
    return this.#allowNames && this.#p.allowNames.match(qname, this.#accepts(group, qtype)) >= 0
  }

  /** The verdict for an address in an answer, or undefined when it is allowed. */
  decideAddress (address: string, group: GroupPlan): Verdict | undefined {
    if (group.exempt) return undefined
    const p = this.#p
    if (!this.#blockAddresses) return undefined
    if (this.#allowAddresses && p.allowAddresses.match(address, group.accepts) >= 0) return undefined
    const id = p.blockAddresses.match(address, group.accepts)
    return id < 0 ? undefined : this.#verdict(id, group, 'address', address)
  }

  /** `decideAddress` for an IPv4 address as its 32-bit value; the text is built only for a verdict. */
  decideV4 (address: number, group: GroupPlan): Verdict | undefined {
    if (group.exempt) return undefined
    const p = this.#p
    if (!this.#blockAddresses) return undefined
    if (this.#allowAddresses && p.allowAddresses.matchV4(address, group.accepts) >= 0) return undefined
    const id = p.blockAddresses.matchV4(address, group.accepts)
    return id < 0 ? undefined : this.#verdict(id, group, 'address', ipv4Text(address))
  }

  /** The first blocked part of the answer to a `qtype` query (CNAME targets, then addresses), or undefined. */
  decideAnswer (t: AnswerParts, group: GroupPlan, qtype: number): Verdict | undefined {
    for (let i = 0; i < t.nameCount; i++) {
      const v = this.decideName(t.names[i], group, qtype, 'cname')
      if (v !== undefined) return v
    }
    if (!this.#blockAddresses) return undefined
    for (let i = 0; i < t.v4Count; i++) {
      const v = this.decideV4(t.v4[i], group)
      if (v !== undefined) return v
    }
    for (let i = 0; i < t.v6Count; i++) {
      const v = this.decideAddress(t.v6[i], group)
      if (v !== undefined) return v
    }
    return undefined
  }

  #verdict (id: number, group: GroupPlan, matched: MatchedPart, value: string): Verdict {
    const r = this.#p.rules
    const c = r.listCategory[listOfRule(r.listStart, id)]
    const cat = this.categories[c]
    return { action: group.actions[c], category: cat.name, ruleId: id, matched, value, group: group.name, policyRef: cat.policyRef }
  }

  /** The list, line and text of a rule of this snapshot (a verdict's `ruleId`). */
  rule (id: number): RuleSource {
    const r = this.#p.rules
    // Verdicts come from block rules only: never an @@ rule.
    return { list: this.#p.lists[listOfRule(r.listStart, id)], line: r.line[id], rule: this.#ruleTexts[id] ??= ruleText(r.kind[id], r.value[id], false, r.types.get(id)) }
  }

  /** Entry counts for status and logs. */
  stats (): { names: number, addresses: number, allowNames: number, allowAddresses: number, exceptions: number } {
    const p = this.#p
    return { names: p.blockNames.size, addresses: p.blockAddresses.size, allowNames: p.allowNames.size, allowAddresses: p.allowAddresses.size, exceptions: p.exceptNames.size }
  }
}

/** A rule written back in plain-list syntax (with its `$dnstype=` filter, if any). */
export function ruleText (kind: RuleKind, value: string, allow: boolean, types?: TypeFilter): string {
  const body = kind === 'exact' ? `=${value}` : kind === 'wildcard' ? `*.${value}` : kind === 'regex' ? `/${value}/` : value
  const text = allow ? `@@${body}` : body
  return types === undefined ? text : `${text} ${typeFilterText(types)}`
}

/** `$dnstype=A|AAAA` or `$dnstype=~MX|~TXT`. */
export function typeFilterText (f: TypeFilter): string {
  return '$dnstype=' + f.types.map(t => (f.except ? '~' : '') + qtypeName(t)).join('|')
}
