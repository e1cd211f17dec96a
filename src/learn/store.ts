// Learned addresses and the guard's allowed-address observations in the policy file (policy.sqlite,
// POLICY_MIGRATIONS 2), so a restart keeps both. Writers queue changes in memory (coalesced per row)
// and one timer writes them in one transaction, at most about once a `flushMs` (1 s): a learned
// address is on disk within that second; the DNS path never waits on SQLite. A failed write is
// counted, logged and retried at the next flush (the queue is keyed, so it cannot grow beyond the
// rows it stands for). Reading functions serve the API and, from a path read-only, the CLI's
// `export nftables` and `learned`.

import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import type { Logger } from 'pino'
import type { Db } from '../store/db.js'
import { keyText, type AddressKey } from './address.js'
import type { Family, HeldAddress, LearnedAddress, LearnedElements, LearnedVia } from './types.js'

/** One row of `learned`: an address in a category's set (held null) or held back by the guard. */
export interface StoredLearned {
  readonly category: string
  readonly address: string
  readonly family: Family
  readonly name: string
  readonly via: LearnedVia
  readonly firstSeen: number
  readonly lastSeen: number
  readonly expiresAt: number
  readonly held: HeldAddress['reason'] | null
  readonly sharedWith: readonly string[]
  readonly range: string | null
}

/** One row of `allowed_addresses`: an allowed name resolved to the address, last at `lastSeen`. */
export interface StoredAllowed {
  readonly address: string
  readonly family: Family
  readonly name: string
  readonly lastSeen: number
}

export interface LearnedStoreDeps {
  /** The policy file (policy.sqlite), migrated with POLICY_MIGRATIONS. Not closed by the store. */
  readonly db: Db
  readonly log: Logger
  readonly now: () => number
  /** How long an allowed observation is kept (learning.guardWindowSeconds, in ms). */
  readonly guardWindowMs: number
  /** At most one write transaction per this many ms (default 1000). */
  readonly flushMs?: number
}

export interface LearnedStoreStats {
  /** Write transactions committed. */
  readonly flushes: number
  /** Write transactions that failed (retried at the next flush). */
  readonly failures: number
  /** Queued changes not yet written. */
  readonly pending: number
  readonly lastError: string | undefined
}

interface PendingAllowed { family: Family, key: AddressKey, name: string, lastSeen: number }

const PRUNE_EVERY_MS = 60_000

const rowOf = (r: Record<string, unknown>): StoredLearned => ({
  category: String(r.category),
  address: String(r.address),
  family: Number(r.family) === 6 ? 6 : 4,
  name: String(r.name),
  via: r.via === 'probe' ? 'probe' : 'query',
  firstSeen: Number(r.first_seen),
  lastSeen: Number(r.last_seen),
  expiresAt: Number(r.expires_at),
  held: r.held === 'allowed-name' || r.held === 'never-block' || r.held === 'shared-host' ? r.held : null,
  sharedWith: sharedOf(r.shared_with),
  range: typeof r.range === 'string' ? r.range : null
})

function sharedOf (v: unknown): string[] {
  try {
    const a = JSON.parse(String(v)) as unknown
    return Array.isArray(a) ? a.map(String) : []
  } catch {
    return []
  }
}

export class LearnedStore {
  readonly #db: Db
  readonly #log: Logger
  readonly #now: () => number
  readonly #windowMs: number
  readonly #flushMs: number
  /** `category \t address` -> the row to write, or null to delete it. */
  readonly #learned = new Map<string, StoredLearned | null>()
  /** `key \t name` -> the observation to write. */
  readonly #allowed = new Map<string, PendingAllowed>()
  /** Addresses whose observations go (evicted from the guard's memory): family and key. */
  readonly #allowedGone: Array<{ family: Family, key: AddressKey }> = []
  #timer: NodeJS.Timeout | undefined
  #lastPrune = 0
  #closed = false
  #flushes = 0
  #failures = 0
  #lastError: string | undefined
  readonly #put: Database.Statement
  readonly #del: Database.Statement
  readonly #putAllowed: Database.Statement
  readonly #delAllowed: Database.Statement
  readonly #pruneAllowed: Database.Statement

  constructor (deps: LearnedStoreDeps) {
    this.#db = deps.db
    this.#log = deps.log.child({ mod: 'learned-store' })
    this.#now = deps.now
    this.#windowMs = deps.guardWindowMs
    this.#flushMs = deps.flushMs ?? 1000
    this.#put = this.#db.prepare(`
      INSERT INTO learned (category, address, family, name, via, first_seen, last_seen, expires_at, held, shared_with, range)
      VALUES (@category, @address, @family, @name, @via, @firstSeen, @lastSeen, @expiresAt, @held, @sharedWith, @range)
      ON CONFLICT (category, address) DO UPDATE SET family = excluded.family, name = excluded.name, via = excluded.via,
        first_seen = excluded.first_seen, last_seen = excluded.last_seen, expires_at = excluded.expires_at,
        held = excluded.held, shared_with = excluded.shared_with, range = excluded.range`)
    this.#del = this.#db.prepare('DELETE FROM learned WHERE category = ? AND address = ?')
    this.#putAllowed = this.#db.prepare(`INSERT INTO allowed_addresses (address, name, last_seen) VALUES (?, ?, ?)
      ON CONFLICT (address, name) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`)
    this.#delAllowed = this.#db.prepare('DELETE FROM allowed_addresses WHERE address = ?')
    this.#pruneAllowed = this.#db.prepare('DELETE FROM allowed_addresses WHERE last_seen < ?')
  }

  /** Queues a learned row (insert or replace); written at the next flush. */
  putLearned (row: StoredLearned): void {
    this.#learned.set(row.category + '\t' + row.address, row)
    this.#arm()
  }

  /** Queues the removal of a learned row. */
  deleteLearned (category: string, address: string): void {
    this.#learned.set(category + '\t' + address, null)
    this.#arm()
  }

  /** Queues an allowed observation (address as the guard keys it; converted to text at the flush). */
  putAllowed (family: Family, key: AddressKey, name: string, lastSeen: number): void {
    const k = String(key) + '\t' + name
    const p = this.#allowed.get(k)
    if (p !== undefined) p.lastSeen = lastSeen
    else this.#allowed.set(k, { family, key, name, lastSeen })
    this.#arm()
  }

  /** Queues the removal of every observation of an address (the guard forgot it). */
  deleteAllowed (family: Family, key: AddressKey): void {
    this.#allowedGone.push({ family, key })
    this.#arm()
  }

  /** The learned rows that have not expired (expired ones are deleted), for the book's start. */
  loadLearned (now = this.#now()): StoredLearned[] {
    this.#db.prepare('DELETE FROM learned WHERE expires_at <= ?').run(now)
    return (this.#db.prepare('SELECT * FROM learned ORDER BY last_seen').all() as Array<Record<string, unknown>>).map(rowOf)
  }

  /** The allowed observations within the guard window, oldest first, for the guard's start. */
  loadAllowed (now = this.#now()): StoredAllowed[] {
    this.#pruneAllowed.run(now - this.#windowMs)
    const rows = this.#db.prepare('SELECT address, name, last_seen FROM allowed_addresses ORDER BY last_seen').all() as Array<{ address: string, name: string, last_seen: number }>
    return rows.map(r => ({ address: r.address, family: r.address.includes(':') ? 6 : 4, name: r.name, lastSeen: r.last_seen }))
  }

  /** Writes the queued changes in one transaction now. False (counted, kept for the next try) on failure. */
  flush (): boolean {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const now = this.#now()
    const prune = now - this.#lastPrune >= PRUNE_EVERY_MS
    if (this.#learned.size === 0 && this.#allowed.size === 0 && this.#allowedGone.length === 0 && !prune) return true
    const learned = [...this.#learned]
    const allowed = [...this.#allowed.values()]
    const gone = this.#allowedGone.splice(0)
    this.#learned.clear()
    this.#allowed.clear()
    try {
      this.#db.transaction(() => {
        for (const [k, row] of learned) {
          if (row === null) {
            const tab = k.indexOf('\t')
            this.#del.run(k.slice(0, tab), k.slice(tab + 1))
          } else {
            this.#put.run({ ...row, sharedWith: JSON.stringify(row.sharedWith) })
          }
        }
        for (const g of gone) this.#delAllowed.run(keyText(g.family, g.key))
        for (const a of allowed) this.#putAllowed.run(keyText(a.family, a.key), a.name, a.lastSeen)
        if (prune) this.#pruneAllowed.run(now - this.#windowMs)
      })()
      if (prune) this.#lastPrune = now
      this.#flushes++
      return true
    } catch (err) {
      this.#failures++
      this.#lastError = (err as Error).message
      this.#log.warn({ err }, 'writing learned addresses to the policy file failed; retried in a second')
      // Put back what is not superseded by a newer change queued meanwhile (none: flush is synchronous).
      for (const [k, row] of learned) if (!this.#learned.has(k)) this.#learned.set(k, row)
      for (const a of allowed) { const k = String(a.key) + '\t' + a.name; if (!this.#allowed.has(k)) this.#allowed.set(k, a) }
      this.#allowedGone.unshift(...gone)
      if (!this.#closed) this.#arm()
      return false
    }
  }

  /** Writes what is queued and stops the timer (the db stays open: its owner closes it). */
  close (): void {
    this.#closed = true
    this.flush()
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  get stats (): LearnedStoreStats {
    return {
      flushes: this.#flushes,
      failures: this.#failures,
      pending: this.#learned.size + this.#allowed.size + this.#allowedGone.length,
      lastError: this.#lastError
    }
  }

  #arm (): void {
    if (this.#timer !== undefined || this.#closed) return
    this.#timer = setTimeout(() => { this.#timer = undefined; this.flush() }, this.#flushMs)
    this.#timer.unref()
  }
}

/** What `readLearned` returns: addresses in the sets and those the guard holds back. */
export interface LearnedRows {
  readonly active: LearnedAddress[]
  readonly held: HeldAddress[]
}

/** Opens a policy file read-only; undefined when it is missing or has no learned table yet. */
function openReadOnly (path: string): Db | undefined {
  if (!existsSync(path)) return undefined
  const db = new Database(path, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 2000')
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'learned'").get() === undefined) {
    db.close()
    return undefined
  }
  return db
}

/** A stored row as the API shows it. */
export function viewOf (r: StoredLearned): LearnedAddress | HeldAddress {
  const base: LearnedAddress = {
    address: r.address, family: r.family, category: r.category, name: r.name, via: r.via,
    firstSeen: r.firstSeen, lastSeen: r.lastSeen, expiresAt: r.expiresAt
  }
  if (r.held === null) return base
  return { ...base, reason: r.held, sharedWith: r.sharedWith, ...(r.range !== null ? { range: r.range } : {}) }
}

/**
 * The learned and held addresses that have not expired at `now`, read from the policy file at
 * `path` (read-only; a missing file or one without the table reads empty). `category` filters.
 */
export function readLearned (path: string, now: number, category?: string): LearnedRows {
  const db = openReadOnly(path)
  if (db === undefined) return { active: [], held: [] }
  try {
    const rows = (db.prepare('SELECT * FROM learned WHERE expires_at > ? AND (? IS NULL OR category = ?) ORDER BY category, family, address')
      .all(now, category ?? null, category ?? null) as Array<Record<string, unknown>>).map(rowOf)
    return {
      active: rows.filter(r => r.held === null).map(viewOf),
      held: rows.filter(r => r.held !== null).map(r => viewOf(r) as HeldAddress)
    }
  } finally {
    db.close()
  }
}

/**
 * The learned elements in force at `now` per category, with their remaining timeouts (whole
 * seconds, at least 1), from the policy file at `path` (read-only): what `egressd export nftables`
 * prints. A missing file reads as an empty map.
 */
export function readLearnedElements (path: string, now: number): Map<string, LearnedElements> {
  const db = openReadOnly(path)
  if (db === undefined) return new Map()
  try {
    const rows = db.prepare('SELECT category, address, family, expires_at FROM learned WHERE held IS NULL AND expires_at > ? ORDER BY category, address')
      .all(now) as Array<{ category: string, address: string, family: number, expires_at: number }>
    return elementsOf(rows.map(r => ({ category: r.category, address: r.address, family: r.family === 6 ? 6 : 4, expiresAt: r.expires_at })), now)
  } finally {
    db.close()
  }
}

/** Groups active addresses into per-category elements with their remaining timeouts. */
export function elementsOf (rows: Iterable<{ category: string, address: string, family: Family, expiresAt: number }>, now: number): Map<string, LearnedElements> {
  const out = new Map<string, { v4: Array<{ address: string, timeoutSeconds: number }>, v6: Array<{ address: string, timeoutSeconds: number }> }>()
  for (const r of rows) {
    if (r.expiresAt <= now) continue
    let e = out.get(r.category)
    if (e === undefined) { e = { v4: [], v6: [] }; out.set(r.category, e) }
    const el = { address: r.address, timeoutSeconds: Math.max(1, Math.ceil((r.expiresAt - now) / 1000)) }
    if (r.family === 4) e.v4.push(el)
    else e.v6.push(el)
  }
  return out
}
