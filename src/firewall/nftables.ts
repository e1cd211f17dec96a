// Renders the nftables script that closes the doors a DNS filter alone leaves open: an `inet`
// table with interval sets of the blocked categories' address ranges (v4 and v6), forward rules
// rejecting LAN traffic to them, DNS redirected to egressd, DNS over TLS/QUIC rejected. The script
// replaces the whole table in one nft transaction. Knows nothing of DNS or the engine.
//
// Per category and family there are up to three sets, each rejected the same way:
// - `<cat>_v4`: the pack's published ranges (interval set);
// - `<cat>_shared_v4`: ranges the pack shares with allowed services, only when turned on
//   (firewall.sharedRanges; interval set);
// - `learned_<cat>_v4`: single addresses learned from DNS (learn/), each with its own timeout
//   (`flags timeout`, not interval). It always exists, empty when nothing is learned, so that the
//   incremental element sync (firewall/elements.ts) always has a target.
//
// Evidence (firewall.evidence, read back by firewall/evidence.ts): each reject rule for TCP and UDP
// first updates a dynamic set `evidence_v4`/`evidence_v6` keyed by (client, destination, protocol,
// tag of the set that matched) with a counter, then adds (client, destination, protocol, port) to a
// small second dynamic set `evidence_ports_v4`/`_v6` with a short timeout, which only names a port
// for the event. The port is not in the counted key: one client sweeping ports to one address
// would otherwise fill the set (one element per port) and blind the evidence of every other
// client; so the counted set is bounded by clients x destinations, and a full port set only makes
// ports unknown (0) for a minute. Why this mechanism: it needs no extra daemon, netlink socket or
// native module (nft is already a dependency, and `nft -j list set` on a timer is all the reading
// there is); the kernel aggregates per key, so a flood of attempts costs one set element and its
// counter, never one event per packet; the sets' sizes bound the memory and the reading time. nflog
// would need a netlink listener in the daemon and carries one message per packet. A full dynamic
// set makes `update`/`add` fail, which ends that rule without its verdict: so each evidence rule is
// followed by a plain reject of the same set, which also rejects ICMP and the other protocols
// (they have no port, and a rule that reads `th dport` does not match them).
import { isIPv4, isIPv6 } from 'node:net'
import type { FirewallConfig } from '../config/types.js'
import { PolicyError } from '../errors.js'
import type { Family, LearnedElements } from '../learn/types.js'

export interface FirewallCategory {
  readonly name: string
  readonly title: string
  readonly v4: readonly string[]
  readonly v6: readonly string[]
  /** Opt-in shared ranges (firewall.sharedRanges): their own interval sets, only when given. */
  readonly shared?: { readonly v4: readonly string[], readonly v6: readonly string[] }
  /** Learned addresses with their remaining lifetime; the learned sets exist (empty) without them. */
  readonly learned?: LearnedElements
}

export interface FirewallInput {
  readonly config: FirewallConfig
  /** The port egressd answers DNS on (redirect target). */
  readonly dnsPort: number
  /** Enabled categories with their ranges (categories without ranges still get empty sets). */
  readonly categories: readonly FirewallCategory[]
  /** Allow rules' ranges: accepted before any reject. */
  readonly allow: { readonly v4: readonly string[], readonly v6: readonly string[] }
  /** Client ranges of exempt groups: their traffic is not filtered. */
  readonly exempt: { readonly v4: readonly string[], readonly v6: readonly string[] }
  /** For the header comment. */
  readonly generatedBy: string
}

const ident = (category: string): string => category.replace(/[^A-Za-z0-9_]/g, '_')

/** nft identifiers: letters, digits and _ (category names may have '-' and ':'). */
export function setName (category: string, family: Family): string {
  return `${ident(category)}_v${family}`
}

/** The set of a category's opt-in shared ranges (rendered only when the category has them on). */
export function sharedSetName (category: string, family: Family): string {
  return `${ident(category)}_shared_v${family}`
}

/** The set of a category's learned addresses (always rendered for every rendered category). */
export function learnedSetName (category: string, family: Family): string {
  return `learned_${ident(category)}_v${family}`
}

/** The dynamic set the reject rules record attempts in (firewall.evidence.enabled). */
export function evidenceSetName (family: Family): string {
  return `evidence_v${family}`
}

/** The dynamic set that names a port per (client, destination, proto) for the evidence events. */
export function evidencePortSetName (family: Family): string {
  return `evidence_ports_v${family}`
}

/**
 * Evidence sets: how long an idle (client, destination, proto, set) key stays (every packet
 * refreshes it), and how many keys; at least three reads (firewall.evidence.intervalMs) long.
 * 16384 elements are about 2 MB of `nft -j` output per family.
 */
export const EVIDENCE_TIMEOUT_SECONDS = 900
export const EVIDENCE_SET_SIZE = 16384
/** Port samples: a short timeout (not refreshed: `add`), few elements; a full set only makes ports unknown. */
export const EVIDENCE_PORT_TIMEOUT_SECONDS = 60
export const EVIDENCE_PORT_SET_SIZE = 2048

/** Element timeouts of the evidence sets for a read interval: never shorter than three reads. */
export function evidenceTimeouts (intervalMs: number): { readonly counted: number, readonly ports: number } {
  const reads = Math.ceil(3 * intervalMs / 1000)
  return { counted: Math.max(EVIDENCE_TIMEOUT_SECONDS, reads), ports: Math.max(EVIDENCE_PORT_TIMEOUT_SECONDS, reads) }
}

/**
 * The number a reject rule writes into its evidence key to say which set matched: FNV-1a (32 bit)
 * of the set name, so it does not depend on the order or number of the categories rendered.
 */
export function evidenceTag (set: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < set.length; i++) {
    h ^= set.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

export type SetKind = 'ranges' | 'shared' | 'learned'

/** Every set a category's reject rules may name, by evidence tag (for evidence.ts to say which set rejected). */
export function evidenceTags (categories: readonly string[]): Map<number, { readonly category: string, readonly set: string, readonly kind: SetKind }> {
  const tags = new Map<number, { category: string, set: string, kind: SetKind }>()
  for (const category of categories) {
    for (const family of [4, 6] as const) {
      for (const [kind, set] of [['ranges', setName(category, family)], ['shared', sharedSetName(category, family)], ['learned', learnedSetName(category, family)]] as const) {
        tags.set(evidenceTag(set), { category, set, kind })
      }
    }
  }
  return tags
}

/** Longest timeout written for a learned element (the kernel's limit on older versions is ~49 days). */
const MAX_TIMEOUT_SECONDS = 30 * 86400

/** A learned element's timeout as nft takes it, or undefined when it has run out. */
export function timeoutText (seconds: number): string | undefined {
  if (!Number.isFinite(seconds)) return undefined
  const s = Math.min(Math.floor(seconds), MAX_TIMEOUT_SECONDS)
  return s >= 1 ? `${s}s` : undefined
}

/** Whether a string is an address of the family (never lets text other than an address into a script). */
export const isAddress = (address: string, family: Family): boolean => family === 4 ? isIPv4(address) : isIPv6(address)

function set (name: string, family: Family, elements: readonly string[], comment: string): string {
  const type = family === 4 ? 'ipv4_addr' : 'ipv6_addr'
  const els = elements.length === 0 ? '' : ` elements = { ${elements.join(', ')} }`
  return `  set ${name} {\n    type ${type}; flags interval; auto-merge; comment ${quote(comment.slice(0, 100))};${els}\n  }`
}

/** A learned set: single addresses, each with its timeout; the longest timeout wins for a duplicate. */
function learnedSet (name: string, family: Family, elements: LearnedElements['v4'], comment: string): string {
  const type = family === 4 ? 'ipv4_addr' : 'ipv6_addr'
  const longest = new Map<string, number>()
  for (const e of elements) {
    if (!isAddress(e.address, family) || timeoutText(e.timeoutSeconds) === undefined) continue
    longest.set(e.address, Math.max(longest.get(e.address) ?? 0, e.timeoutSeconds))
  }
  const els = longest.size === 0 ? '' : ` elements = { ${[...longest].map(([a, s]) => `${a} timeout ${timeoutText(s) as string}`).join(', ')} }`
  return `  set ${name} {\n    type ${type}; flags timeout; comment ${quote(comment.slice(0, 100))};${els}\n  }`
}

function evidenceSets (family: Family, intervalMs: number): string[] {
  const addr = family === 4 ? 'ipv4_addr' : 'ipv6_addr'
  const timeouts = evidenceTimeouts(intervalMs)
  return [
    `  set ${evidenceSetName(family)} {\n    type ${addr} . ${addr} . inet_proto . mark; flags dynamic,timeout; ` +
      `timeout ${timeouts.counted}s; size ${EVIDENCE_SET_SIZE}; comment "rejected attempts: client . destination . proto . set tag";\n  }`,
    `  set ${evidencePortSetName(family)} {\n    type ${addr} . ${addr} . inet_proto . inet_service; flags dynamic,timeout; ` +
      `timeout ${timeouts.ports}s; size ${EVIDENCE_PORT_SET_SIZE}; comment "port samples of rejected attempts: client . destination . proto . port";\n  }`
  ]
}

/**
 * Throws a PolicyError when two rendered sets would get the same nft name (names are made of the
 * category with '-' and ':' turned into '_': `doh-bypass` and `doh_bypass`, a category `learned_x`
 * beside x's learned set, `x_shared` beside x's shared set, or a category `lan` beside egressd's own
 * LAN set). nft would refuse the script, or worse, two categories would share one set.
 */
function checkSetNames (input: FirewallInput, evidence: boolean): void {
  // Every name ends in _v4 or _v6, so a clash in one family is the same clash in the other: v4 says it.
  const owners = new Map<string, string>()
  const problems: string[] = []
  const claim = (name: string, owner: string): void => {
    const other = owners.get(name)
    if (other === undefined) owners.set(name, owner)
    else problems.push(`firewall: the nft set name ${name} of ${owner} is also that of ${other}; rename or disable one of the two`)
  }
  for (const own of ['lan', 'allow', 'exempt']) claim(`${own}_v4`, `egressd's own ${own} set`)
  if (evidence) {
    claim(evidenceSetName(4), "egressd's own evidence set")
    claim(evidencePortSetName(4), "egressd's own evidence port set")
  }
  for (const cat of input.categories) {
    claim(setName(cat.name, 4), `category "${cat.name}" (its published ranges)`)
    if (cat.shared !== undefined) claim(sharedSetName(cat.name, 4), `category "${cat.name}" (its shared ranges)`)
    claim(learnedSetName(cat.name, 4), `category "${cat.name}" (its learned addresses)`)
  }
  if (problems.length > 0) throw new PolicyError(problems)
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, '')}"`

export function renderNftables (input: FirewallInput): string {
  const c = input.config
  const evidence = c.evidence.enabled && c.rejectAddresses
  checkSetNames(input, evidence)
  const lines: string[] = []
  const table = `inet ${c.table}`
  lines.push(`#!/usr/sbin/nft -f`)
  lines.push(`# ${input.generatedBy}`)
  lines.push(`# Replaces table ${table} as a whole, atomically: apply with nft -f.`)
  lines.push(`table ${table}`)
  lines.push(`delete table ${table}`)
  lines.push(`table ${table} {`)

  const lan4 = c.lanCidrs.filter(x => !x.includes(':'))
  const lan6 = c.lanCidrs.filter(x => x.includes(':'))
  const sets: string[] = []
  if (lan4.length > 0) sets.push(set('lan_v4', 4, lan4, 'LAN source ranges'))
  if (lan6.length > 0) sets.push(set('lan_v6', 6, lan6, 'LAN source ranges'))
  sets.push(set('allow_v4', 4, input.allow.v4, 'allow rules'), set('allow_v6', 6, input.allow.v6, 'allow rules'))
  sets.push(set('exempt_v4', 4, input.exempt.v4, 'exempt client groups'), set('exempt_v6', 6, input.exempt.v6, 'exempt client groups'))
  for (const cat of input.categories) {
    sets.push(set(setName(cat.name, 4), 4, cat.v4, cat.title), set(setName(cat.name, 6), 6, cat.v6, cat.title))
    if (cat.shared !== undefined) {
      const title = `${cat.title}: shared ranges`
      sets.push(set(sharedSetName(cat.name, 4), 4, cat.shared.v4, title), set(sharedSetName(cat.name, 6), 6, cat.shared.v6, title))
    }
    const title = `${cat.title}: learned addresses`
    sets.push(learnedSet(learnedSetName(cat.name, 4), 4, cat.learned?.v4 ?? [], title), learnedSet(learnedSetName(cat.name, 6), 6, cat.learned?.v6 ?? [], title))
  }
  if (evidence) sets.push(...evidenceSets(4, c.evidence.intervalMs), ...evidenceSets(6, c.evidence.intervalMs))
  lines.push(...sets)

  // Which traffic is "from the LAN", per family: input interfaces and/or source ranges. A family
  // with no ranges while the other has some is not LAN traffic (unless only interfaces are given).
  const ifaces = c.lanInterfaces.length > 0 ? `iifname { ${c.lanInterfaces.map(quote).join(', ')} } ` : ''
  const anyCidrs = lan4.length > 0 || lan6.length > 0
  const lanFor = (family: 4 | 6): string | undefined => {
    if (!anyCidrs) return ifaces
    if (family === 4) return lan4.length > 0 ? `${ifaces}ip saddr @lan_v4 ` : undefined
    return lan6.length > 0 ? `${ifaces}ip6 saddr @lan_v6 ` : undefined
  }
  const lan4Match = lanFor(4)
  const lan6Match = lanFor(6)
  // Rules that are the same for both families need one copy per distinct match.
  const eitherFamily = [...new Set([lan4Match, lan6Match].filter((m): m is string => m !== undefined))]
  const hasLan = c.lanInterfaces.length > 0 || anyCidrs

  const forward: string[] = []
  forward.push('    ip saddr @exempt_v4 accept comment "exempt client group"')
  forward.push('    ip6 saddr @exempt_v6 accept comment "exempt client group"')
  if (c.rejectAddresses) {
    forward.push('    ip daddr @allow_v4 accept comment "allow rule"')
    forward.push('    ip6 daddr @allow_v6 accept comment "allow rule"')
    const reject = (lan: string, family: Family, set: string, comment: string): void => {
      const ip = family === 4 ? 'ip' : 'ip6'
      if (evidence) {
        forward.push(`    ${lan}${ip} daddr @${set} meta l4proto { tcp, udp } update @${evidenceSetName(family)} ` +
          `{ ${ip} saddr . ${ip} daddr . meta l4proto . ${evidenceTag(set)} counter } add @${evidencePortSetName(family)} ` +
          `{ ${ip} saddr . ${ip} daddr . meta l4proto . th dport } counter reject with icmpx type admin-prohibited comment ${comment}`)
      }
      forward.push(`    ${lan}${ip} daddr @${set} counter reject with icmpx type admin-prohibited comment ${comment}`)
    }
    for (const cat of input.categories) {
      const comment = quote(`egressd: ${cat.name}`)
      const names = (family: Family): string[] => [setName(cat.name, family), ...cat.shared !== undefined ? [sharedSetName(cat.name, family)] : [], learnedSetName(cat.name, family)]
      if (lan4Match !== undefined) for (const n of names(4)) reject(lan4Match, 4, n, comment)
      if (lan6Match !== undefined) for (const n of names(6)) reject(lan6Match, 6, n, comment)
    }
  }
  for (const lan of eitherFamily) {
    if (c.rejectDot) forward.push(`    ${lan}tcp dport 853 counter reject with tcp reset comment "egressd: DNS over TLS"`)
    if (c.rejectDoq) forward.push(`    ${lan}udp dport 853 counter reject with icmpx type admin-prohibited comment "egressd: DNS over QUIC"`)
  }
  lines.push('  chain forward {')
  lines.push('    type filter hook forward priority filter; policy accept;')
  lines.push(...forward)
  lines.push('  }')

  if (c.redirectDns) {
    lines.push('  chain dns_redirect {')
    lines.push('    type nat hook prerouting priority dstnat; policy accept;')
    if (hasLan) {
      for (const lan of eitherFamily) {
        lines.push(`    ${lan}udp dport 53 counter redirect to :${input.dnsPort} comment "LAN DNS to egressd"`)
        lines.push(`    ${lan}tcp dport 53 counter redirect to :${input.dnsPort} comment "LAN DNS to egressd"`)
      }
    } else {
      lines.push('    # no firewall.lanInterfaces or firewall.lanCidrs configured: DNS is not redirected')
    }
    lines.push('  }')
  }
  lines.push('}')
  return lines.join('\n') + '\n'
}
