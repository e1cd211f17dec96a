// The run-time policy inputs a daemon on this data dir would use, read without a daemon: the last
// accepted copies of URL sources (dataDir/lists) and the store's custom rules and category overrides
// (read-only). The CLI's `query`, `export nftables` and `check-config` use it, so they decide as the
// running daemon does. Nothing here writes.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from './config/types.js'
import { LastGoodStore } from './lists/last-good.js'
import type { PolicyInputs } from './policy/build.js'
import { CategoryOverrideStore } from './store/category-overrides.js'
import { openDatabase } from './store/db.js'
import { RuleStore } from './store/rules.js'

export interface StoredPolicy {
  readonly inputs: PolicyInputs
  /** What could not be read (the decision is then made without it). */
  readonly notes: readonly string[]
}

export function readStoredPolicy (config: Config, log: Logger, now = Date.now()): StoredPolicy {
  const notes: string[] = []
  const copies = new LastGoodStore(join(config.dataDir, 'lists'), log)
  const sourceFiles = new Map<string, string>()
  for (const s of config.blocklists.sources) {
    if (s.url === undefined) continue
    const copy = copies.read(s.name)
    if (copy !== undefined) sourceFiles.set(s.name, copy.file)
    else notes.push(`list source ${s.name}: no downloaded copy under ${copies.dir}`)
  }
  if (!existsSync(config.store.path)) return { inputs: { sourceFiles }, notes }
  try {
    const db = openDatabase(config.store.path, { readonly: true })
    try {
      return { inputs: { sourceFiles, rules: new RuleStore(db).active(now), categories: new CategoryOverrideStore(db).all() }, notes }
    } finally {
      db.close()
    }
  } catch (err) {
    notes.push(`${config.store.path}: custom rules and category overrides not read: ${(err as Error).message}`)
    return { inputs: { sourceFiles }, notes }
  }
}
