// Writes batches of block events into the database, one transaction per batch: interns the
// repeating strings, inserts the rows and adds them to the hourly/daily roll-ups. Synchronous and
// thread-agnostic: the writer worker runs it on its own connection; benchmarks and tests call it
// directly. A failed batch rolls back whole (SQLITE_BUSY, SQLITE_FULL, I/O errors) and can be
// written again later.

import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import { reverseName, type BlockEvent } from './block-event.js'
import { F, STRIDE, toBatch, type EventBatch } from './event-batch.js'

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

/** Counts per (a, b, c) of numbers, in nested Maps: no key strings built per event. */
class Tally {
  readonly #m = new Map<number, Map<number, Map<number, number>>>()
  add (a: number, b: number, c: number): void {
    let mb = this.#m.get(a)
    if (mb === undefined) { mb = new Map(); this.#m.set(a, mb) }
    let mc = mb.get(b)
    if (mc === undefined) { mc = new Map(); mb.set(b, mc) }
    mc.set(c, (mc.get(c) ?? 0) + 1)
  }

  forEach (fn: (a: number, b: number, c: number, n: number) => void): void {
    for (const [a, mb] of this.#m) for (const [b, mc] of mb) for (const [c, n] of mc) fn(a, b, c, n)
  }
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
  readonly #nameHour: Statement
  readonly #tx: (batch: EventBatch) => void

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
    this.#nameHour = db.prepare('INSERT OR IGNORE INTO name_hours (qname, hour) VALUES (?, ?)')
    this.#tx = db.transaction((batch: EventBatch) => this.#writeAll(batch))
  }

  /** Writes every event in one transaction; throws (and writes nothing) on a storage error. */
  write (events: readonly BlockEvent[]): void {
    if (events.length > 0) this.writeBatch(toBatch(events))
  }

  /** The same for a batch in columns (what the writer thread receives). */
  writeBatch (batch: EventBatch): void {
    if (batch.n === 0) return
    const interners = [this.#strings, this.#clients, this.#names]
    try {
      this.#tx(batch)
    } catch (err) {
      for (const i of interners) i.rollback()
      throw err
    }
    for (const i of interners) i.commit()
  }

  #writeAll (b: EventBatch): void {
    // Each distinct string of the batch is looked up (or added) once, per table it goes to.
    const strs = b.strings
    const stringIds: Array<number | undefined> = new Array(strs.length)
    const clientIds: Array<number | undefined> = new Array(strs.length)
    const nameIds: Array<number | undefined> = new Array(strs.length)
    const str = (code: number): number | null => code < 0 ? null : (stringIds[code] ??= this.#strings.id(strs[code]))
    const num = (v: number): number | null => v < 0 ? null : v
    const allow = strs.indexOf('allow')
    const hc = new Tally()
    const qn = new Tally()
    const cl = new Tally()
    const nh = new Tally()
    const a = b.nums
    for (let o = 0; o < b.n * STRIDE; o += STRIDE) {
      const ts = a[o + F.ts]
      const client = clientIds[a[o + F.client]] ??= this.#clients.id(strs[a[o + F.client]])
      const qnameCode = a[o + F.qname]
      const qname = nameIds[qnameCode] ??= this.#names.id(strs[qnameCode])
      const matched = a[o + F.matched]
      const valueCode = a[o + F.value]
      // The value is left out when it is the query name itself (a match on the name).
      const value = matched === 1 && valueCode === qnameCode ? null : str(valueCode)
      const category = str(a[o + F.category]) as number
      const actionCode = a[o + F.action]
      const action = str(actionCode) as number
      this.#insert.run(ts, client, str(a[o + F.group]), qname, a[o + F.qtype], matched, value, category, action,
        str(a[o + F.list]), num(a[o + F.line]), str(a[o + F.rule]), str(a[o + F.listHash]), num(a[o + F.rcode]), num(a[o + F.latencyMs]))
      const hour = Math.floor(ts / HOUR_MS)
      nh.add(hour, qname, 0)
      if (actionCode === allow) continue
      const day = Math.floor(ts / DAY_MS)
      hc.add(hour, category, action)
      qn.add(day, category, qname)
      cl.add(day, category, client)
    }
    hc.forEach((hour, category, action, n) => this.#hourCategory.run(hour, category, action, n))
    qn.forEach((day, category, qname, n) => this.#dayQname.run(day, category, qname, n))
    cl.forEach((day, category, client, n) => this.#dayClient.run(day, category, client, n))
    nh.forEach((hour, qname) => this.#nameHour.run(qname, hour))
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
    db.prepare('DELETE FROM name_hours WHERE hour < ?').run(Math.floor(cutoff / HOUR_MS))
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
