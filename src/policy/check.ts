// "What would egressd do with this name for this client?": the explanation `egressd query` prints
// and GET /api/v1/check returns, built in one place so both say the same. Decides the query name
// only (as the query-policy stage does); answers are not fetched. For a blocked name it adds the
// learned addresses the name left in the firewall's sets; for an IP address instead of a name, how
// the firewall's table treats traffic to it (firewall/coverage.ts).

import type { BlockAction } from '../config/types.js'
import { addressCoverage, nameCoverage, type CoverageSources, type FirewallCoverage } from '../firewall/coverage.js'
import { qtypeName } from '../qtypes.js'
import type { Engine, MatchedPart } from './engine.js'

export interface NameCheck {
  readonly name: string
  readonly type: string
  readonly client: string
  readonly group: string
  /** 'allow', 'block', or 'monitor (answered, logged as a would-be block)'. */
  readonly verdict: string
  readonly action?: BlockAction
  readonly category?: string
  readonly list?: string
  readonly line?: number
  readonly rule?: string
  readonly matched?: MatchedPart
  readonly policyRef?: string
  /** For a block: what else the blocking category cuts off (its meta.yaml alsoAffects). */
  readonly alsoAffects?: readonly string[]
  /** For a block, when the firewall's sources are given: the learned addresses of the name. */
  readonly firewall?: FirewallCoverage
}

/** "What does the firewall do with traffic to this address?" (`egressd query ADDRESS`, GET /api/v1/check?address=). */
export interface AddressCheck {
  readonly address: string
  readonly family: 4 | 6
  readonly client: string
  readonly group: string
  /** block: the table rejects LAN traffic from the client to it; allow: it does not. */
  readonly verdict: 'block' | 'allow'
  readonly firewall: FirewallCoverage
}

/**
 * `name` must already be normalized (names.normalizeName), `qtype` a type number (qtypeNumber) and
 * `client` an IP address. A rule limited to query types (`$dnstype=`) shows in `rule`.
 */
export function checkName (engine: Engine, name: string, qtype: number, client: string, firewall?: CoverageSources): NameCheck {
  const group = engine.groupOf(client)
  const v = engine.decideName(name, group, qtype)
  const alsoAffects = v === undefined ? [] : engine.categories.find(c => c.name === v.category)?.alsoAffects ?? []
  return {
    name,
    type: qtypeName(qtype),
    client,
    group: group.name,
    verdict: v === undefined ? 'allow' : v.action === 'monitor' ? 'monitor (answered, logged as a would-be block)' : 'block',
    ...(v !== undefined && { action: v.action, category: v.category, ...engine.rule(v.ruleId), matched: v.matched, policyRef: v.policyRef }),
    ...(alsoAffects.length > 0 && { alsoAffects }),
    ...(v !== undefined && v.action !== 'monitor' && firewall !== undefined && { firewall: nameCoverage(firewall, name) })
  }
}

/**
 * `address` any IP address text (undefined when it is not one), `client` an IP address. Reads the
 * policy build the sources carry (its engine decides the client's group).
 */
export function checkAddress (sources: CoverageSources, address: string, client: string): AddressCheck | undefined {
  const group = sources.build.engine.groupOf(client)
  const c = addressCoverage(sources, address, group.exempt)
  if (c === undefined) return undefined
  return { address: c.address, family: c.family, client, group: group.name, verdict: c.block ? 'block' : 'allow', firewall: c.firewall }
}
