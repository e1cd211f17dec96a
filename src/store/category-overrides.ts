// Category settings changed at run time (table `category_overrides` of the policy file): per client
// group ('*' = every group) and category, `enabled` and/or `action`, over the config's. The engine
// takes them as PolicyInputs.categories.

import type { Statement } from 'better-sqlite3'
import type { BlockAction, CategoryOverride } from '../config/types.js'
import type { Db } from './db.js'

/** Overrides by group name ('*' = every group), then category name. */
export type CategoryOverrides = Record<string, Record<string, CategoryOverride>>

interface Row { grp: string, category: string, enabled: number | null, action: BlockAction | null }

const toOverride = (r: Row): CategoryOverride => ({
  ...(r.enabled !== null && { enabled: r.enabled === 1 }),
  ...(r.action !== null && { action: r.action })
})

export class CategoryOverrideStore {
  readonly #all: Statement<[], Row>
  readonly #get: Statement<[string, string], Row>
  readonly #upsert: Statement<[string, string, number | null, string | null, number, string]>

  constructor (db: Db) {
    this.#all = db.prepare('SELECT grp, category, enabled, action FROM category_overrides ORDER BY grp, category')
    this.#get = db.prepare('SELECT grp, category, enabled, action FROM category_overrides WHERE grp = ? AND category = ?')
    this.#upsert = db.prepare(`INSERT INTO category_overrides (grp, category, enabled, action, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (grp, category) DO UPDATE SET enabled = excluded.enabled, action = excluded.action, updated_at = excluded.updated_at, updated_by = excluded.updated_by`)
  }

  all (): CategoryOverrides {
    const out: CategoryOverrides = {}
    for (const r of this.#all.all()) (out[r.grp] ??= {})[r.category] = toOverride(r)
    return out
  }

  get (group: string, category: string): CategoryOverride | undefined {
    const r = this.#get.get(group, category)
    return r === undefined ? undefined : toOverride(r)
  }

  set (group: string, category: string, o: CategoryOverride, at: number, by: string): void {
    this.#upsert.run(group, category, o.enabled === undefined ? null : o.enabled ? 1 : 0, o.action ?? null, at, by)
  }
}
