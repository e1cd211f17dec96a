// Renders the nftables script that closes the doors a DNS filter alone leaves open: an `inet`
// table with interval sets of the blocked categories' address ranges (v4 and v6), forward rules
// rejecting LAN traffic to them, DNS redirected to egressd, DNS over TLS/QUIC rejected. The script
// replaces the whole table in one nft transaction. Knows nothing of DNS or the engine.

import type { FirewallConfig } from '../config/types.js'

export interface FirewallCategory {
  readonly name: string
  readonly title: string
  readonly v4: readonly string[]
  readonly v6: readonly string[]
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

/** nft identifiers: letters, digits and _ (category names may have '-' and ':'). */
export function setName (category: string, family: 4 | 6): string {
  return `${category.replace(/[^A-Za-z0-9_]/g, '_')}_v${family}`
}

function set (name: string, family: 4 | 6, elements: readonly string[], comment: string): string {
  const type = family === 4 ? 'ipv4_addr' : 'ipv6_addr'
  const els = elements.length === 0 ? '' : ` elements = { ${elements.join(', ')} }`
  return `  set ${name} {\n    type ${type}; flags interval; auto-merge; comment ${quote(comment.slice(0, 100))};${els}\n  }`
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, '')}"`

export function renderNftables (input: FirewallInput): string {
  const c = input.config
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
  }
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
    for (const cat of input.categories) {
      const comment = quote(`egressd: ${cat.name}`)
      if (lan4Match !== undefined) forward.push(`    ${lan4Match}ip daddr @${setName(cat.name, 4)} counter reject with icmpx type admin-prohibited comment ${comment}`)
      if (lan6Match !== undefined) forward.push(`    ${lan6Match}ip6 daddr @${setName(cat.name, 6)} counter reject with icmpx type admin-prohibited comment ${comment}`)
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
