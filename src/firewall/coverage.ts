// What the firewall's table (the one `egressd export nftables` prints and firewall.sync loads)
// does with traffic to one address, and which learned addresses a blocked name left in it: for
// `check` (GET /api/v1/check and `egressd query`). Reads the policy build, the config and the
// learned rows it is given (the running daemon's book, or the policy file read-only); never nft,
// so it says the same with firewall.sync off. The set names are those nftables.ts renders.

import type { Config } from '../config/types.js'
import { parseAddress, type ParsedAddress } from '../learn/address.js'
import type { Hold } from '../learn/guard.js'
import type { HeldAddress, LearnedAddress, LearnedVia } from '../learn/types.js'
import type { EngineBuild } from '../policy/build.js'
import { parseCidr } from '../policy/names.js'
import { learnedSetName, setName, sharedSetName } from './nftables.js'
import { firewallCategories } from './sync.js'

/** The learned rows in force (all categories, not expired), as the book or `readLearned` gives them. */
export interface LearnedRowsView {
  readonly active: readonly LearnedAddress[]
  readonly held: readonly HeldAddress[]
}

export interface CoverageSources {
  readonly config: Config
  readonly build: EngineBuild
  /** The learned and held rows; undefined with learning off. */
  readonly learned: (() => LearnedRowsView) | undefined
  /** The collateral guard's judgement of an address now (the running daemon's; never-block only from the CLI). */
  readonly guard?: (address: string) => Hold | undefined
}

/** In a category's published ranges (its cidrs.txt, set `<cat>_v4`). */
export interface RangeHit {
  readonly category: string
  readonly set: string
  readonly range: string
  /** The rule that puts the range there, when the engine names it (the first matching one). */
  readonly list?: string
  readonly line?: number
  readonly rule?: string
}

/** In opt-in shared ranges turned on by firewall.sharedRanges (set `<cat>_shared_v4`). */
export interface SharedHit {
  readonly category: string
  readonly set: string
  readonly range: string
  /** What else these ranges carry (the pack's `# cuts-off:` line). */
  readonly cutsOff: string[]
}

/** An address in a learned set (`learned_<cat>_v4`). */
export interface LearnedHit {
  readonly address: string
  readonly category: string
  readonly set: string
  /** The name whose resolution put it there (the latest one). */
  readonly name: string
  readonly via: LearnedVia
  readonly firstSeen: string
  readonly lastSeen: string
  readonly expiresAt: string
}

/** A learned address the collateral guard keeps out of the set. */
export interface HeldHit {
  readonly address: string
  readonly category: string
  readonly name: string
  readonly via: LearnedVia
  readonly reason: HeldAddress['reason']
  /** Allowed names that share it (allowed-name), or the shared front ends of its chain (shared-host). */
  readonly sharedWith: string[]
  /** The never-block range it falls in (reason never-block), else null. */
  readonly range: string | null
  readonly lastSeen: string
  readonly expiresAt: string
}

/** Why the guard would keep the address out of any learned set now. */
export interface GuardHold {
  readonly reason: Hold['reason']
  readonly sharedWith: string[]
  readonly range: string | null
}

/** The firewall part of a check. */
export interface FirewallCoverage {
  /** firewall.sync: egressd loads the table itself. */
  readonly sync: boolean
  readonly table: string
  /** learning.enabled (learned sets are filled). */
  readonly learning: boolean
  /** What the reader must know: sync off (export the table), rejectAddresses off, an exempt client, an allow rule. */
  readonly notes: string[]
  /** Address checks: in a set the table rejects (published, shared or learned). */
  readonly covered?: boolean
  readonly ranges?: RangeHit[]
  readonly shared?: SharedHit[]
  readonly learned: LearnedHit[]
  readonly held: HeldHit[]
  /** Address checks: the guard would hold it back from a learned set now (learning on). */
  readonly guard?: GuardHold
  /** Address checks: the allow rule range that the table accepts before any reject. */
  readonly allowRule?: string
}

const iso = (ms: number): string => new Date(ms).toISOString()

function learnedHit (a: LearnedAddress): LearnedHit {
  return {
    address: a.address, category: a.category, set: learnedSetName(a.category, a.family), name: a.name, via: a.via,
    firstSeen: iso(a.firstSeen), lastSeen: iso(a.lastSeen), expiresAt: iso(a.expiresAt)
  }
}

function heldHit (h: HeldAddress): HeldHit {
  return {
    address: h.address, category: h.category, name: h.name, via: h.via, reason: h.reason,
    sharedWith: [...h.sharedWith], range: h.range ?? null, lastSeen: iso(h.lastSeen), expiresAt: iso(h.expiresAt)
  }
}

function syncNotes (config: Config): string[] {
  const notes: string[] = []
  if (!config.firewall.sync) notes.push('firewall.sync is off: egressd does not load this table; export it with `egressd export nftables` (and apply it with nft -f -)')
  if (!config.firewall.rejectAddresses) notes.push('firewall.rejectAddresses is off: the table rejects no address')
  return notes
}

/** The first CIDR of `cidrs` (normalized text) that contains `a`. */
function containing (cidrs: readonly string[], a: ParsedAddress): string | undefined {
  for (const text of cidrs) {
    const c = parseCidr(text)
    if (!('error' in c) && c.family === a.family && a.value >= c.start && a.value <= c.end) return c.value
  }
  return undefined
}

/**
 * How the table treats LAN traffic from `client` (its group `group`, exempt or not) to `address`
 * (any valid text; undefined when it is not an IP address): the sets it is in, the learned rows and
 * the guard's view of it. `block` is true when the table rejects that traffic.
 */
export function addressCoverage (s: CoverageSources, address: string, exemptClient: boolean): { address: string, family: 4 | 6, block: boolean, firewall: FirewallCoverage } | undefined {
  const a = parseAddress(address)
  if (a === undefined) return undefined
  const { config, build } = s
  const fw = config.firewall
  const family = a.family
  const engine = build.engine
  const categories = firewallCategories(build)
  // The engine's first matching address rule (default group, as the table carries it): its list and line.
  const verdict = engine.decideAddress(a.text, engine.groups[0])
  const ranges: RangeHit[] = []
  const shared: SharedHit[] = []
  for (const category of categories) {
    const rules = build.addresses.block.get(category)
    const range = rules === undefined ? undefined : containing(family === 4 ? rules.v4 : rules.v6, a)
    if (range !== undefined) {
      const source = verdict?.category === category ? engine.rule(verdict.ruleId) : undefined
      ranges.push({ category, set: setName(category, family), range, ...(source !== undefined && { list: source.list, line: source.line, rule: source.rule }) })
    }
    const sr = build.extras.shared.get(category)
    const sharedRange = sr === undefined ? undefined : containing(family === 4 ? sr.v4 : sr.v6, a)
    if (sr !== undefined && sharedRange !== undefined) shared.push({ category, set: sharedSetName(category, family), range: sharedRange, cutsOff: [...sr.cutsOff] })
  }
  const rows = s.learned?.()
  const carried = new Set(categories)
  const learned = (rows?.active ?? []).filter(r => r.address === a.text && carried.has(r.category)).map(learnedHit)
  const held = (rows?.held ?? []).filter(r => r.address === a.text).map(heldHit)
  const hold = s.learned === undefined ? undefined : s.guard?.(a.text)
  const allowRule = containing(family === 4 ? build.addresses.allow.v4 : build.addresses.allow.v6, a)
  const covered = ranges.length + shared.length + learned.length > 0
  const notes = syncNotes(config)
  if (covered && exemptClient) notes.push('the client is in an exempt group: the table accepts its traffic before any reject')
  if (covered && allowRule !== undefined) notes.push(`an allow rule (${allowRule}, set allow_v${family}) accepts this address before any reject`)
  return {
    address: a.text,
    family,
    block: covered && fw.rejectAddresses && !exemptClient && allowRule === undefined,
    firewall: {
      sync: fw.sync,
      table: fw.table,
      learning: s.learned !== undefined,
      notes,
      covered,
      ranges,
      shared,
      learned,
      held,
      ...(hold !== undefined && { guard: { reason: hold.reason, sharedWith: hold.reason === 'never-block' ? [] : [...hold.sharedWith], range: hold.reason === 'never-block' ? hold.range : null } }),
      ...(allowRule !== undefined && { allowRule })
    }
  }
}

/** For a blocked name: the learned addresses it left in the sets (and those the guard held back). */
export function nameCoverage (s: CoverageSources, name: string): FirewallCoverage {
  const rows = s.learned?.()
  const carried = new Set(firewallCategories(s.build))
  return {
    sync: s.config.firewall.sync,
    table: s.config.firewall.table,
    learning: s.learned !== undefined,
    notes: syncNotes(s.config),
    learned: (rows?.active ?? []).filter(r => r.name === name && carried.has(r.category)).map(learnedHit),
    held: (rows?.held ?? []).filter(r => r.name === name).map(heldHit)
  }
}
