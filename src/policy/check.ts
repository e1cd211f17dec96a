// "What would egressd do with this name for this client?": the explanation `egressd query` prints
// and GET /api/v1/check returns, built in one place so both say the same. Decides the query name
// only (as the query-policy stage does); answers are not fetched.

import type { BlockAction } from '../config/types.js'
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
}

/**
 * `name` must already be normalized (names.normalizeName), `qtype` a type number (qtypeNumber) and
 * `client` an IP address. A rule limited to query types (`$dnstype=`) shows in `rule`.
 */
export function checkName (engine: Engine, name: string, qtype: number, client: string): NameCheck {
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
    ...(alsoAffects.length > 0 && { alsoAffects })
  }
}
