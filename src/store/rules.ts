// Custom block and allow rules kept in the policy file (table `rules`, policy.sqlite): what the
// management API adds and removes at run time. An id is never given again, even after its rule was
// deleted (AUTOINCREMENT): audit rows name rules by id. Rows only; validating a rule and applying it to the engine is
// custom-policy.ts's work. Statements are prepared once, in the constructor.

import type { Statement } from 'better-sqlite3'
import type { InlineRules } from '../config/types.js'
import type { Db } from './db.js'

export type RuleEffect = 'block' | 'allow'

export interface CustomRule {
  readonly id: number
  readonly kind: RuleEffect
  /** In the syntax of a plain list line: `example.org`, `=example.org`, `*.example.org`, `/re/`, CIDR. */
  readonly rule: string
  readonly comment: string
  /** Milliseconds since the epoch. */
  readonly createdAt: number
  /** Token name of whoever added it. */
  readonly createdBy: string
  /** Milliseconds since the epoch; null: never expires. */
  readonly expiresAt: number | null
}

export type NewRule = Omit<CustomRule, 'id'>

interface Row { id: number, kind: RuleEffect, rule: string, comment: string, created_at: number, created_by: string, expires_at: number | null }

const toRule = (r: Row): CustomRule => ({
  id: r.id, kind: r.kind, rule: r.rule, comment: r.comment, createdAt: r.created_at, createdBy: r.created_by, expiresAt: r.expires_at
})

export class RuleStore {
  readonly #all: Statement<[], Row>
  readonly #get: Statement<[number], Row>
  readonly #find: Statement<[RuleEffect, string], Row>
  readonly #insert: Statement<[RuleEffect, string, string, number, string, number | null], Row>
  readonly #delete: Statement<[number]>
  readonly #expired: Statement<[number], Row>
  readonly #next: Statement<[], { t: number | null }>

  constructor (db: Db) {
    const cols = 'id, kind, rule, comment, created_at, created_by, expires_at'
    this.#all = db.prepare(`SELECT ${cols} FROM rules ORDER BY id`)
    this.#get = db.prepare(`SELECT ${cols} FROM rules WHERE id = ?`)
    this.#find = db.prepare(`SELECT ${cols} FROM rules WHERE kind = ? AND rule = ?`)
    this.#insert = db.prepare(`INSERT INTO rules (kind, rule, comment, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING ${cols}`)
    this.#delete = db.prepare('DELETE FROM rules WHERE id = ?')
    this.#expired = db.prepare(`SELECT ${cols} FROM rules WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY id`)
    this.#next = db.prepare('SELECT min(expires_at) AS t FROM rules WHERE expires_at IS NOT NULL')
  }

  list (): CustomRule[] { return this.#all.all().map(toRule) }

  get (id: number): CustomRule | undefined {
    const r = this.#get.get(id)
    return r === undefined ? undefined : toRule(r)
  }

  find (kind: RuleEffect, rule: string): CustomRule | undefined {
    const r = this.#find.get(kind, rule)
    return r === undefined ? undefined : toRule(r)
  }

  /** Inserts a rule; throws SQLITE_CONSTRAINT_UNIQUE when the same kind and text exist. */
  add (r: NewRule): CustomRule {
    return toRule(this.#insert.get(r.kind, r.rule, r.comment, r.createdAt, r.createdBy, r.expiresAt) as Row)
  }

  /** Deletes by id; true when a row was there. */
  remove (id: number): boolean { return this.#delete.run(id).changes > 0 }

  /** Rules whose expiry is at or before `now`. */
  expired (now: number): CustomRule[] { return this.#expired.all(now).map(toRule) }

  /** The earliest expiry of any rule (past ones included), or undefined. */
  nextExpiry (): number | undefined { return this.#next.get()?.t ?? undefined }

  /** The rules in force at `now`, as the engine takes them (in id order). */
  active (now: number): InlineRules {
    const block: string[] = []
    const allow: string[] = []
    for (const r of this.#all.all()) {
      if (r.expires_at !== null && r.expires_at <= now) continue
      ;(r.kind === 'allow' ? allow : block).push(r.rule)
    }
    return { block, allow }
  }
}
