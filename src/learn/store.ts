// Learned addresses and the guard's allowed-address observations in the policy file (policy.sqlite,
// POLICY_MIGRATIONS 2 and 3), so a restart keeps both. Writers queue changes in memory (coalesced
// per row) and one timer writes them, at most about once a `flushMs` (1 s), in one transaction of
// at most `maxRowsPerFlush` rows (the rest go at the next flush): a learned address is on disk
// within that second; the DNS path never waits on SQLite.
//
// The flush runs on the DNS thread, so it never waits for the file's write lock either: it sets
// the connection's busy_timeout to 0 around its transaction (restored after, so the policy file's
// other writers, custom rules, keep theirs); a file locked by another connection is a counted
// failure, retried at the next flush. What is queued is bounded by `maxPending`: beyond it the
// guard's observations go first (they are made again by the next allowed answer), learned rows
// last, every drop counted. `allowed_addresses` has one row per address (the guard's names for it,
// at most 8), and at most learning.maxAllowedAddresses rows (the least recently seen go).
// Reading functions serve the API and, from a path read-only, the CLI's `export nftables` and
// `learned`.

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

/** One row of `allowed_addresses`: allowed names that resolved to the address (oldest first), last at `lastSeen`. */
export interface StoredAllowed {
  readonly address: string
  readonly family: Family
  readonly names: readonly string[]
  readonly lastSeen: number
}

export interface LearnedStoreDeps {
  /** The policy file (policy.sqlite), migrated with POLICY_MIGRATIONS. Not closed by the store. */
  readonly db: Db
  readonly log: Logger
  readonly now: () => number
  /** How long an allowed observation is kept (learning.guardWindowSeconds, in ms). */
  readonly guardWindowMs: number
  /** Rows of allowed_addresses kept at most (learning.maxAllowedAddresses; default 200 000). */
  readonly maxAllowedAddresses?: number
  /** At most one write transaction per this many ms (default 1000). */
  readonly flushMs?: number
  /** Rows written by one transaction at most (default 5000; the rest at the next flush). */
  readonly maxRowsPerFlush?: number
  /** Changes queued at most (default 100 000; beyond it observations are dropped first, counted). */
  readonly maxPending?: number
}

export interface LearnedStoreStats {
  /** Write transactions committed. */
  readonly flushes: number
  /** Write transactions that failed (the file locked by another connection, ...; retried at the next flush). */
  readonly failures: number
  /** Queued changes not yet written. */
  readonly pending: number
  /** Queued learned-row changes dropped by the maxPending bound (the oldest). */
  readonly droppedLearned: number
  /** Queued guard observations (and their removals) dropped by the maxPending bound. */
  readonly droppedAllowed: number
  readonly lastError: string | undefined
}

/** The guard's observation of one address, as it stands: `names` is the guard's own list (read at the flush). */
interface PendingAllowed { family: Family, key: AddressKey, names: readonly string[], lastSeen: number }

const PRUNE_EVERY_MS = 60_000
const MAX_NAMES = 8

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
  readonly #maxAllowed: number
  readonly #flushMs: number
  readonly #maxRows: number
  readonly #maxPending: number
  /** `category \t address` -> the row to write, or null to delete it. */
  readonly #learned = new Map<string, StoredLearned | null>()
  /** Address key (as the guard keys it) -> its observation to write. */
  readonly #allowed = new Map<AddressKey, PendingAllowed>()
  /** Addresses whose observations go (evicted from the guard's memory): key -> family. */
  readonly #allowedGone = new Map<AddressKey, Family>()
  #timer: NodeJS.Timeout | undefined
  #lastPrune = 0
  /** A removal of an observation was dropped: the next prune trims the table to maxAllowed rows. */
  #trimAllowed = false
  #closed = false
  #flushes = 0
  #failures = 0
  #droppedLearned = 0
  #droppedAllowed = 0
  #lastError: string | undefined
  readonly #put: Database.Statement
  readonly #del: Database.Statement
  readonly #putAllowed: Database.Statement
  readonly #delAllowed: Database.Statement
  readonly #pruneAllowed: Database.Statement
  readonly #trimAllowedRows: Database.Statement

  constructor (deps: LearnedStoreDeps) {
    this.#db = deps.db
    this.#log = deps.log.child({ mod: 'learned-store' })
    this.#now = deps.now
    this.#windowMs = deps.guardWindowMs
    this.#maxAllowed = deps.maxAllowedAddresses ?? 200_000
    this.#flushMs = deps.flushMs ?? 1000
    this.#maxRows = deps.maxRowsPerFlush ?? 5000
    this.#maxPending = deps.maxPending ?? 100_000
    this.#put = this.#db.prepare(`
      INSERT INTO learned (category, address, family, name, via, first_seen, last_seen, expires_at, held, shared_with, range)
      VALUES (@category, @address, @family, @name, @via, @firstSeen, @lastSeen, @expiresAt, @held, @sharedWith, @range)
      ON CONFLICT (category, address) DO UPDATE SET family = excluded.family, name = excluded.name, via = excluded.via,
        first_seen = excluded.first_seen, last_seen = excluded.last_seen, expires_at = excluded.expires_at,
        held = excluded.held, shared_with = excluded.shared_with, range = excluded.range`)
    this.#del = this.#db.prepare('DELETE FROM learned WHERE category = ? AND address = ?')
    this.#putAllowed = this.#db.prepare(`INSERT INTO allowed_addresses (address, names, last_seen) VALUES (?, ?, ?)
      ON CONFLICT (address) DO UPDATE SET names = excluded.names, last_seen = max(last_seen, excluded.last_seen)`)
    this.#delAllowed = this.#db.prepare('DELETE FROM allowed_addresses WHERE address = ?')
    this.#pruneAllowed = this.#db.prepare('DELETE FROM allowed_addresses WHERE last_seen < ?')
    this.#trimAllowedRows = this.#db.prepare(`DELETE FROM allowed_addresses WHERE id NOT IN
      (SELECT id FROM allowed_addresses ORDER BY last_seen DESC, id DESC LIMIT ?)`)
  }

  /** Queues a learned row (insert or replace); written at the next flush. */
  putLearned (row: StoredLearned): void {
    const k = row.category + '\t' + row.address
    if (!this.#learned.has(k)) this.#room()
    this.#learned.set(k, row)
    this.#arm()
  }

  /** Queues the removal of a learned row. */
  deleteLearned (category: string, address: string): void {
    const k = category + '\t' + address
    if (!this.#learned.has(k)) this.#room()
    this.#learned.set(k, null)
    this.#arm()
  }

  /**
   * Queues the guard's observation of an address (keyed as the guard keys it; text at the flush):
   * `names` is the guard's list for it, read when the flush writes it. Allocates nothing when the
   * address is queued already.
   */
  putAllowed (family: Family, key: AddressKey, names: readonly string[], lastSeen: number): void {
    const p = this.#allowed.get(key)
    if (p !== undefined) {
      p.names = names
      if (lastSeen > p.lastSeen) p.lastSeen = lastSeen
      return
    }
    this.#allowedGone.delete(key)
    if (this.#pending() >= this.#maxPending) { this.#droppedAllowed++; return }
    this.#allowed.set(key, { family, key, names, lastSeen })
    this.#arm()
  }

  /** Queues the removal of an address's observation (the guard forgot it). */
  deleteAllowed (family: Family, key: AddressKey): void {
    this.#allowed.delete(key)
    if (this.#allowedGone.has(key)) return
    if (this.#pending() >= this.#maxPending) {
      this.#droppedAllowed++
      this.#trimAllowed = true
      return
    }
    this.#allowedGone.set(key, family)
    this.#arm()
  }

  /** The learned rows that have not expired (expired ones are deleted), for the book's start. */
  loadLearned (now = this.#now()): StoredLearned[] {
    this.#db.prepare('DELETE FROM learned WHERE expires_at <= ?').run(now)
    return (this.#db.prepare('SELECT * FROM learned ORDER BY last_seen').all() as Array<Record<string, unknown>>).map(rowOf)
  }

  /**
   * The observations within the guard window, at most `limit` (the most recent; the table is
   * trimmed to them), oldest first, for the guard's start.
   */
  loadAllowed (now = this.#now(), limit = this.#maxAllowed): StoredAllowed[] {
    this.#pruneAllowed.run(now - this.#windowMs)
    this.#trimAllowedRows.run(limit)
    const rows = this.#db.prepare('SELECT address, names, last_seen FROM allowed_addresses ORDER BY last_seen, id').all() as Array<{ address: string, names: string, last_seen: number }>
    return rows.map(r => ({ address: r.address, family: r.address.includes(':') ? 6 : 4, names: sharedOf(r.names).slice(-MAX_NAMES), lastSeen: r.last_seen }))
  }

  /**
   * Writes queued changes in one transaction now: at most maxRowsPerFlush (learned rows first),
   * or everything with `all`. Without `all` it does not wait for a write lock another connection
   * holds. False (counted, everything kept for the next try) on failure.
   */
  flush (all = false): boolean {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const now = this.#now()
    const prune = now - this.#lastPrune >= PRUNE_EVERY_MS
    if (this.#pending() === 0 && !prune) return true
    const max = all ? Infinity : this.#maxRows
    // Written in this order, each map from its oldest entry; removed from the maps after the commit.
    let nLearned = 0
    let nGone = 0
    let nAllowed = 0
    const busy = all ? undefined : this.#db.pragma('busy_timeout', { simple: true }) as number
    try {
      if (busy !== undefined) this.#db.pragma('busy_timeout = 0')
      this.#db.transaction(() => {
        let n = 0
        for (const [k, row] of this.#learned) {
          if (n++ >= max) break
          if (row === null) {
            const tab = k.indexOf('\t')
            this.#del.run(k.slice(0, tab), k.slice(tab + 1))
          } else {
            this.#put.run({ ...row, sharedWith: JSON.stringify(row.sharedWith) })
          }
          nLearned++
        }
        for (const [key, family] of this.#allowedGone) {
          if (n++ >= max) break
          this.#delAllowed.run(keyText(family, key))
          nGone++
        }
        for (const a of this.#allowed.values()) {
          if (n++ >= max) break
          this.#putAllowed.run(keyText(a.family, a.key), JSON.stringify(a.names.slice(-MAX_NAMES)), a.lastSeen)
          nAllowed++
        }
        if (prune) {
          this.#pruneAllowed.run(now - this.#windowMs)
          if (this.#trimAllowed) this.#trimAllowedRows.run(this.#maxAllowed)
        }
      })()
    } catch (err) {
      this.#failures++
      this.#lastError = (err as Error).message
      this.#log.warn({ err, pending: this.#pending() }, 'writing learned addresses to the policy file failed; retried at the next flush')
      if (!this.#closed) this.#arm()
      return false
    } finally {
      if (busy !== undefined) {
        try { this.#db.pragma(`busy_timeout = ${busy}`) } catch (err) { this.#log.warn({ err }, 'restoring the policy file\'s busy_timeout failed') }
      }
    }
    dropFirst(this.#learned, nLearned)
    dropFirst(this.#allowedGone, nGone)
    dropFirst(this.#allowed, nAllowed)
    if (prune) {
      this.#lastPrune = now
      this.#trimAllowed = false
    }
    this.#flushes++
    if (this.#pending() > 0 && !this.#closed) this.#arm()
    return true
  }

  /** Writes everything queued (waiting for the lock as the file's other writers do) and stops the timer (the db stays open: its owner closes it). */
  close (): void {
    this.#closed = true
    this.flush(true)
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  get stats (): LearnedStoreStats {
    return {
      flushes: this.#flushes,
      failures: this.#failures,
      pending: this.#pending(),
      droppedLearned: this.#droppedLearned,
      droppedAllowed: this.#droppedAllowed,
      lastError: this.#lastError
    }
  }

  #pending (): number {
    return this.#learned.size + this.#allowed.size + this.#allowedGone.size
  }

  /** Makes room for one more learned change under maxPending: observations go first, then the oldest learned change. */
  #room (): void {
    if (this.#pending() < this.#maxPending) return
    if (this.#allowed.size > 0) {
      this.#allowed.delete(this.#allowed.keys().next().value as AddressKey)
      this.#droppedAllowed++
    } else if (this.#allowedGone.size > 0) {
      this.#allowedGone.delete(this.#allowedGone.keys().next().value as AddressKey)
      this.#droppedAllowed++
      this.#trimAllowed = true
    } else if (this.#learned.size > 0) {
      this.#learned.delete(this.#learned.keys().next().value as string)
      this.#droppedLearned++
    }
  }

  #arm (): void {
    if (this.#timer !== undefined || this.#closed) return
    this.#timer = setTimeout(() => { this.#timer = undefined; this.flush() }, this.#flushMs)
    this.#timer.unref()
  }
}

/** Deletes the first `n` entries of a map (insertion order). */
function dropFirst<K, V> (map: Map<K, V>, n: number): void {
  if (n >= map.size) { map.clear(); return }
  for (const k of map.keys()) {
    if (n-- <= 0) return
    map.delete(k)
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
