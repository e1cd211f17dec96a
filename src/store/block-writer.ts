// Writes batches of block events into the database, one transaction per batch: interns the
// repeating strings, inserts the rows and adds them to the hourly/daily roll-ups. Synchronous and
// thread-agnostic: the writer worker runs it on its own connection; benchmarks and tests call it
// directly. A failed batch rolls back whole (SQLITE_BUSY, SQLITE_FULL, I/O errors) and can be
// written again later.

import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import { MATCH_CODES, reverseName, type BlockEvent } from './block-event.js'

export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000

/** Interned ids kept in memory, per table; cleared when it grows past this. */
const CACHE_MAX = 200_000

class Interner {
  readonly #cache = new Map<string, number>()
  readonly #added: string[] = []
  readonly #select: Statement
  readonly #insert: (value: string) => number
  constructor (select: Statement, insert: (value: string) => number) { this.#select = select; this.#insert = insert }
  id (value: string): number {
    let id = this.#cache.get(value)
    if (id !== undefined) return id
    const row = this.#select.get(value) as { id: number } | undefined
    id = row !== undefined ? row.id : this.#insert(value)
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear()
    this.#cache.set(value, id)
    this.#added.push(value)
    return id
  }

  /** The transaction committed: ids learned in it are durable. */
  commit (): void { this.#added.length = 0 }
  /** The transaction rolled back: forget ids it created. */
  rollback (): void { for (const v of this.#added) this.#cache.delete(v); this.#added.length = 0 }
}

export class EventWriter {
  readonly #db: Db
  readonly #strings: Interner
  readonly #clients: Interner
  readonly #names: Interner
  readonly #insert: Statement
  readonly #hourCategory: Statement
  readonly #dayQname: Statement
  readonly #dayClient: Statement
  readonly #tx: (events: readonly BlockEvent[]) => void

  constructor (db: Db) {
    this.#db = db
    const insertString = db.prepare('INSERT INTO strings (value) VALUES (?)')
    const insertClient = db.prepare('INSERT INTO clients (addr) VALUES (?)')
    const insertName = db.prepare('INSERT INTO names (name, rname) VALUES (?, ?)')
    this.#strings = new Interner(db.prepare('SELECT id FROM strings WHERE value = ?'), v => Number(insertString.run(v).lastInsertRowid))
    this.#clients = new Interner(db.prepare('SELECT id FROM clients WHERE addr = ?'), v => Number(insertClient.run(v).lastInsertRowid))
    this.#names = new Interner(db.prepare('SELECT id FROM names WHERE name = ?'), v => Number(insertName.run(v, reverseName(v)).lastInsertRowid))
    this.#insert = db.prepare(`INSERT INTO events (ts, client, grp, qname, qtype, matched, value, category, action, list, line, rule, list_hash, rcode, latency_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    const upsert = (table: string, key: string, cols: string): Statement => db.prepare(
      `INSERT INTO ${table} (${key}, ${cols}, n) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n`)
    this.#hourCategory = upsert('hour_category', 'hour', 'category, action')
    this.#dayQname = upsert('day_qname', 'day', 'category, qname')
    this.#dayClient = upsert('day_client', 'day', 'category, client')
    this.#tx = db.transaction((events: readonly BlockEvent[]) => this.#writeAll(events))
  }

  /** Writes every event in one transaction; throws (and writes nothing) on a storage error. */
  write (events: readonly BlockEvent[]): void {
    if (events.length === 0) return
    const interners = [this.#strings, this.#clients, this.#names]
    try {
      this.#tx(events)
    } catch (err) {
      for (const i of interners) i.rollback()
      throw err
    }
    for (const i of interners) i.commit()
  }

  #writeAll (events: readonly BlockEvent[]): void {
    const s = this.#strings
    const opt = (v: string | undefined): number | null => v === undefined ? null : s.id(v)
    const hc = new Map<string, number>()
    const qn = new Map<string, number>()
    const cl = new Map<string, number>()
    const add = (m: Map<string, number>, k: string): void => { m.set(k, (m.get(k) ?? 0) + 1) }
    for (const e of events) {
      const client = this.#clients.id(e.client)
      const qname = this.#names.id(e.qname)
      const category = s.id(e.category)
      const action = s.id(e.action)
      const value = e.value === '' || (e.matched === 'qname' && e.value === e.qname) ? null : s.id(e.value)
      this.#insert.run(e.ts, client, s.id(e.group), qname, e.qtype, MATCH_CODES[e.matched] ?? 0, value, category, action,
        opt(e.list), e.line ?? null, opt(e.rule), opt(e.listHash), e.rcode ?? null, e.latencyMs ?? null)
      if (e.action === 'allow') continue
      const hour = Math.floor(e.ts / HOUR_MS)
      const day = Math.floor(e.ts / DAY_MS)
      add(hc, `${hour}|${category}|${action}`)
      add(qn, `${day}|${category}|${qname}`)
      add(cl, `${day}|${category}|${client}`)
    }
    for (const [k, n] of hc) { const [a, b, c] = k.split('|'); this.#hourCategory.run(Number(a), Number(b), Number(c), n) }
    for (const [k, n] of qn) { const [d, c, q] = k.split('|'); this.#dayQname.run(Number(d), Number(c), Number(q), n) }
    for (const [k, n] of cl) { const [d, c, q] = k.split('|'); this.#dayClient.run(Number(d), Number(c), Number(q), n) }
  }

  get db (): Db { return this.#db }
}

export interface RetentionLimits {
  /** Events older than this many days are deleted. */
  readonly days: number
  /** 0 = no limit. */
  readonly maxRows: number
  /** Bytes of used pages (page_count - freelist_count); 0 = no limit. */
  readonly maxBytes: number
}

/**
 * One small retention step: deletes at most `step` of the oldest events that are past the age
 * limit, or beyond the row or size limit, plus roll-up rows older than the age limit. Each step
 * is its own short transaction, so writers and readers never wait long. Returns how many events
 * it deleted; call again while that equals `step`.
 */
export function retentionStep (db: Db, limits: RetentionLimits, now: number, step = 2000, excessRows?: number): number {
  const cutoff = now - limits.days * DAY_MS
  let deleted = db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? ORDER BY ts LIMIT ?)').run(cutoff, step).changes
  if (deleted === 0) {
    db.prepare('DELETE FROM hour_category WHERE hour < ?').run(Math.floor(cutoff / HOUR_MS))
    db.prepare('DELETE FROM day_qname WHERE day < ?').run(Math.floor(cutoff / DAY_MS))
    db.prepare('DELETE FROM day_client WHERE day < ?').run(Math.floor(cutoff / DAY_MS))
  }
  if (deleted < step && excessRows !== undefined && excessRows > 0) {
    deleted += deleteOldest(db, Math.min(step - deleted, excessRows - deleted))
  }
  if (deleted < step && limits.maxBytes > 0 && usedBytes(db) > limits.maxBytes) {
    deleted += deleteOldest(db, step - deleted)
  }
  return deleted
}

function deleteOldest (db: Db, n: number): number {
  return db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY ts, id LIMIT ?)').run(n).changes
}

/** Bytes of pages in use (the file itself keeps its high-water size; freed pages are reused). */
export function usedBytes (db: Db): number {
  const pages = db.pragma('page_count', { simple: true }) as number
  const free = db.pragma('freelist_count', { simple: true }) as number
  const size = db.pragma('page_size', { simple: true }) as number
  return (pages - free) * size
}

/** Rows beyond `maxRows` (an exact count; run it in the background, it reads a whole index). */
export function excessRows (db: Db, maxRows: number): number {
  if (maxRows <= 0) return 0
  const n = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
  return Math.max(0, n - maxRows)
}

/**
 * Runs retention to completion in small steps, yielding between steps (`pause`) so batches of new
 * events get written in between. Returns the number of events deleted.
 */
export async function runRetention (db: Db, limits: RetentionLimits, now: number, pause: () => Promise<void>, step = 2000): Promise<number> {
  let excess = excessRows(db, limits.maxRows)
  let total = 0
  for (let i = 0; i < 1_000_000; i++) {
    const n = retentionStep(db, limits, now, step, excess)
    total += n
    excess = Math.max(0, excess - n)
    if (n < step) break
    await pause()
  }
  return total
}
