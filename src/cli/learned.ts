// `egressd learned [--category C] [--held] [--json|--table]`: the learned address sets as the
// running daemon keeps them in its policy file (read-only; works with the daemon running or not):
// the addresses in each category's learned set and those the collateral guard holds back.

import { readLearned } from '../learn/store.js'
import type { HeldAddress, LearnedAddress } from '../learn/types.js'
import { policyPath } from '../store/policy-db.js'
import { parseCliArgs } from '../cli-args.js'
import { loadCliConfig } from './config.js'
import type { CliIo } from './io.js'
import { formatTable, json, OUTPUT_OPTIONS, outputMode } from './output.js'

export const LEARNED_USAGE = `  egressd learned [--category C] [--held] [--json | --table] [--config FILE]
      the learned address sets (from the policy file): addresses in each category's set, and those
      the collateral guard holds back with the allowed names that share them`

/** Why the guard holds an address back, in a few words (the WHY column, `egressd query`'s held lines). */
export function holdText (h: { readonly reason: HeldAddress['reason'], readonly sharedWith: readonly string[], readonly range?: string | null }): string {
  if (h.reason === 'never-block') return `never-block ${h.range ?? ''}`
  if (h.reason === 'shared-host') return `behind shared front end ${h.sharedWith.join(', ')}`
  return `shared with ${h.sharedWith.join(', ')}`
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
const isoMs = (ms: number): string => new Date(ms).toISOString()
const learnedOut = (a: LearnedAddress): Record<string, unknown> => ({
  address: a.address, family: a.family, category: a.category, name: a.name, via: a.via, firstSeen: isoMs(a.firstSeen), lastSeen: isoMs(a.lastSeen), expiresAt: isoMs(a.expiresAt)
})
const heldOut = (h: HeldAddress): Record<string, unknown> => ({ ...learnedOut(h), reason: h.reason, sharedWith: [...h.sharedWith], range: h.range ?? null })

export function learnedCommand (argv: string[], io: CliIo): number {
  const { values } = parseCliArgs({
    args: argv,
    options: { category: { type: 'string' }, held: { type: 'boolean' }, config: { type: 'string', short: 'c' }, ...OUTPUT_OPTIONS },
    strict: true
  })
  const mode = outputMode(values, io.isTTY)
  const config = loadCliConfig(io, values.config)
  if (!config.learning.enabled) io.err('note: learning.enabled is off in this config: the daemon learns nothing new\n')
  const rows = readLearned(policyPath(config.dataDir), io.now(), values.category)
  if (mode === 'json') {
    // The shape GET /api/v1/learned gives (times in ISO 8601).
    const held = rows.held.map(heldOut)
    io.out(json(values.held === true ? { held } : { learned: rows.active.map(learnedOut), held }))
    return 0
  }
  const common = [
    { title: 'CATEGORY', value: (r: LearnedAddress) => r.category },
    { title: 'ADDRESS', value: (r: LearnedAddress) => r.address },
    { title: 'NAME', value: (r: LearnedAddress) => r.name },
    { title: 'VIA', value: (r: LearnedAddress) => r.via },
    { title: 'LAST SEEN', value: (r: LearnedAddress) => iso(r.lastSeen) }
  ]
  if (values.held !== true) {
    io.out(`Learned (in the firewall's learned sets): ${rows.active.length}\n`)
    io.out(formatTable(rows.active, [...common, { title: 'EXPIRES', value: r => iso(r.expiresAt) }]))
  }
  io.out(`Held back by the collateral guard: ${rows.held.length}\n`)
  io.out(formatTable(rows.held, [...common, { title: 'WHY', value: (r: HeldAddress) => holdText(r) }]))
  return 0
}
