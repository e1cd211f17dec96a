// The run-time policy inputs a daemon on this data dir would use, read without a daemon: the last
// accepted copies of URL sources (dataDir/lists) and the custom rules and category overrides of the
// policy file (dataDir/policy.sqlite, read-only; when damaged, the rows that can still be read, with
// a note; before the daemon's first start with that file, the old tables of the block log). The
// CLI's `query`, `export nftables` and `check-config` use it, so they decide as the running daemon
// does. Nothing here writes.

import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from './config/types.js'
import { LastGoodStore } from './lists/last-good.js'
import type { PolicyInputs } from './policy/build.js'
import { CategoryOverrideStore } from './store/category-overrides.js'
import { damageOf, migrate, openDatabase, type Db } from './store/db.js'
import { OLD_POLICY_TABLES, POLICY_MIGRATIONS } from './store/migrations.js'
import { policyPath, readLosses, restoreRows } from './store/policy-db.js'
import { RuleStore } from './store/rules.js'
import { salvageFile } from './store/salvage.js'

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
  const path = policyPath(config.dataDir)
  let db: Db | undefined
  try {
    if (existsSync(path)) {
      db = openReadable(path, notes)
    } else if (existsSync(config.store.path)) {
      // A data dir whose daemon has not started since the policy got its own file: the block log
      // still holds the rows (the next start moves them).
      db = fromSalvage(config.store.path, OLD_POLICY_TABLES, notes, false)
    }
    if (db === undefined) return { inputs: { sourceFiles }, notes }
    try {
      for (const loss of readLosses(db)) notes.push(`${path}: not acknowledged loss: ${loss}`)
      return { inputs: { sourceFiles, rules: new RuleStore(db).active(now), categories: new CategoryOverrideStore(db).all() }, notes }
    } finally {
      db.close()
    }
  } catch (err) {
    notes.push(`${path}: custom rules and category overrides not read: ${(err as Error).message}`)
    return { inputs: { sourceFiles }, notes }
  }
}

/** The policy file read-only; when damaged, what can be read of it (copied into memory), with notes. */
function openReadable (path: string, notes: string[]): Db | undefined {
  if (damageOf(path, Infinity) === undefined) return openDatabase(path, { readonly: true })
  notes.push(`${path}: damaged; deciding with the rows that could still be read (the daemon salvages the file at its next start)`)
  return fromSalvage(path, ['rules', 'category_overrides', 'meta'], notes, true)
}

/** The readable rows of `tables` in `path`, in an in-memory policy database. */
function fromSalvage (path: string, tables: readonly string[], notes: string[], damaged: boolean): Db | undefined {
  const s = salvageFile(path, tables)
  for (const p of s.problems) notes.push(`${p}${damaged ? '' : ' (custom rules and category overrides not read)'}`)
  if (s.tables.size === 0) return undefined
  const mem = new Database(':memory:')
  migrate(mem, POLICY_MIGRATIONS)
  restoreRows(mem, s)
  return mem
}
