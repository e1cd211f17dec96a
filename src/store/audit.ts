// The audit log (table `audit` of the policy file, policy.sqlite): one row per admin change made through the management
// API (rules, categories, reloads) or by egressd on its own behalf (expired rules, actor "egressd"):
// when, which token, from which client address, what, and the state before and after (JSON). Ids
// are never given again (AUTOINCREMENT).

import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'

export interface AuditEntry {
  readonly id: number
  /** Milliseconds since the epoch. */
  readonly ts: number
  /** Token name (or "egressd" for changes it makes itself). */
  readonly actor: string
  /** Client address of the request ('' for egressd's own changes). */
  readonly client: string
  /** What was done: rule.add, rule.delete, rule.expire, category.update, config.reload, ... */
  readonly action: string
  /** What it was done to: a rule id, a category and group, a config file. */
  readonly target: string
  readonly before: unknown
  readonly after: unknown
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>

export interface AuditQuery {
  /** Newest first; at most this many (default 100). */
  readonly limit?: number
  /** Only entries with an id below this (paging backwards). */
  readonly beforeId?: number
  readonly action?: string
}

interface Row { id: number, ts: number, actor: string, client: string, action: string, target: string, before: string | null, after: string | null }

const parse = (s: string | null): unknown => s === null ? null : JSON.parse(s)

export class AuditLog {
  readonly #insert: Statement<[number, string, string, string, string, string | null, string | null], { id: number }>
  readonly #list: Statement<{ before: number, action: string | null, limit: number }, Row>

  constructor (db: Db) {
    this.#insert = db.prepare('INSERT INTO audit (ts, actor, client, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id')
    this.#list = db.prepare(`SELECT id, ts, actor, client, action, target, before, after FROM audit
      WHERE id < @before AND (@action IS NULL OR action = @action) ORDER BY id DESC LIMIT @limit`)
  }

  record (e: NewAuditEntry): AuditEntry {
    const json = (v: unknown): string | null => v === undefined || v === null ? null : JSON.stringify(v)
    const { id } = this.#insert.get(e.ts, e.actor, e.client, e.action, e.target, json(e.before), json(e.after)) as { id: number }
    return { id, ...e, before: e.before ?? null, after: e.after ?? null }
  }

  list (q: AuditQuery = {}): AuditEntry[] {
    return this.#list.all({ before: q.beforeId ?? Number.MAX_SAFE_INTEGER, action: q.action ?? null, limit: q.limit ?? 100 })
      .map(r => ({ id: r.id, ts: r.ts, actor: r.actor, client: r.client, action: r.action, target: r.target, before: parse(r.before), after: parse(r.after) }))
  }
}
