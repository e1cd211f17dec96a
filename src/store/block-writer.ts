// Writes batches of block events into the database, one transaction per batch: interns the
// repeating strings, inserts the rows and adds them to the hourly/daily roll-ups. Synchronous and
// thread-agnostic: the writer worker runs it on its own connection; benchmarks and tests call it
// directly. A failed batch rolls back whole (SQLITE_BUSY, SQLITE_FULL, I/O errors) and can be
// written again later.

import type { Statement, Transaction } from 'better-sqlite3'
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
  /** Rows were deleted: forget every id (call between transactions). */
  clear (): void { this.#cache.clear() }
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
  readonly #tx: Transaction<(batch: EventBatch) => void>

  constructor (db: Db) {
    this.#db = db
    const insertString = db.prepare('INSERT INTO strings (value) VALUES (?)')
    const insertClient = db.prepare('INSERT INTO clients (addr) VALUES (?)')
    const insertName = db.prepare('INSERT INTO names (name, rname) VALUES (?, ?)')
    this.#strings = new Interner(db.prepare('SELECT id FROM strings WHERE value = ?'), v => Number(insertString.run(v).lastInsertRowid))
    this.#clients = new Interner(db.prepare('SELECT id FROM clients WHERE addr = ?'), v => Number(insertClient.run(v).lastInsertRowid))
    this.#names = new Interner(db.prepare('SELECT id FROM names WHERE name = ?'), v => Number(insertName.run(v, reverseName(v)).lastInsertRowid))
    this.#insert = db.prepare(`INSERT INTO events (ts, client, grp, qname, qtype, matched, value, category, action, list, line, rule, list_hash, rcode, latency_ms,
      port, proto, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
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
      // BEGIN IMMEDIATE: the write lock is taken first, so another writer makes this wait up to the
      // busy timeout. A deferred transaction reads first and then cannot upgrade while another
      // connection writes: SQLITE_BUSY at once, without waiting.
      this.#tx.immediate(batch)
    } catch (err) {
      for (const i of interners) i.rollback()
      throw err
    }
    for (const i of interners) i.commit()
  }

  #writeAll (b: EventBatch): void {
    // Each distinct string of the batch is looked up (or added) once, per table it goes to.
    const strs = b.strings
    const stringIds = new Array<number | undefined>(strs.length)
    const clientIds = new Array<number | undefined>(strs.length)
    const nameIds = new Array<number | undefined>(strs.length)
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
        str(a[o + F.list]), num(a[o + F.line]), str(a[o + F.rule]), str(a[o + F.listHash]), num(a[o + F.rcode]), num(a[o + F.latencyMs]),
        num(a[o + F.port]), str(a[o + F.proto]), num(a[o + F.attempts]))
      const hour = Math.floor(ts / HOUR_MS)
      nh.add(hour, qname, 0)
      if (actionCode === allow) continue
      // Roll-ups count events: a firewall event counts once like a blocked query, however many
      // rejected packets (`attempts`) it stands for (the discovery report sums those from the rows).
      // So statistics read the same from roll-ups and from raw rows (count(*)) at a range's edges.
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

  /** Retention deleted names: their ids must not come from the cache again. */
  forgetNames (): void { this.#names.clear() }

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

/** What a retention pass deleted. */
export interface Retained {
  readonly events: number
  /** Interned query names nothing refers to any more. */
  readonly names: number
  /** Bytes still over `maxBytes` when the pass ended (the last hour's events are never deleted for size), else 0. */
  readonly overBytes: number
}

/**
 * State of one retention pass across its steps: how far the time-bucketed tables have been cut
 * (their cuts are cheap except `name_hours`, which has no index by hour and is cut once per day
 * the horizon moves), and how far the sweep of unreferenced names has come.
 */
class RetentionPass {
  /** The day before which `name_hours` has been cut in this pass (-1: not yet). */
  cutDay = -1
  /** Names with an id above this are still to be checked (-1: no sweep due). */
  sweepFrom = -1
  events = 0
  names = 0
}

/**
 * Deletes what is kept by time bucket and older than `horizon` (ms): the hourly and daily
 * roll-ups, and the hours names were seen in, by whole days, so that a name counted in a day's
 * roll-up keeps its hours as long as the roll-up stays. A name with no hour left is referenced by
 * no event and no roll-up: cutting `name_hours` starts a sweep of such names.
 */
function cutBefore (db: Db, horizon: number, pass: RetentionPass): void {
  const day = Math.floor(horizon / DAY_MS)
  db.prepare('DELETE FROM hour_category WHERE hour < ?').run(Math.floor(horizon / HOUR_MS))
  db.prepare('DELETE FROM day_qname WHERE day < ?').run(day)
  db.prepare('DELETE FROM day_client WHERE day < ?').run(day)
  if (day <= pass.cutDay) return
  pass.cutDay = day
  const cut = db.prepare('DELETE FROM name_hours WHERE hour < ?').run(day * 24).changes
  if (cut > 0 && pass.sweepFrom < 0) pass.sweepFrom = 0
}

/**
 * Deletes up to `step` names, checked in id order from `pass.sweepFrom`, that have no hour in
 * `name_hours`; `forget` runs right after (the writer must not reuse their ids from its cache).
 */
function sweepNames (db: Db, pass: RetentionPass, step: number, forget: () => void): void {
  const upTo = db.prepare('SELECT max(id) FROM (SELECT id FROM names WHERE id > ? ORDER BY id LIMIT ?)').pluck().get(pass.sweepFrom, step) as number | null
  if (upTo === null) { pass.sweepFrom = -1; return }
  const n = db.prepare('DELETE FROM names WHERE id > ? AND id <= ? AND NOT EXISTS (SELECT 1 FROM name_hours h WHERE h.qname = names.id)').run(pass.sweepFrom, upTo).changes
  if (n > 0) forget()
  pass.names += n
  pass.sweepFrom = upTo
}

/**
 * One small retention step: deletes at most `step` of the oldest events that are past the age
 * limit, or beyond the row or size limit, then what is kept by time (roll-ups, name hours) older
 * than what the limits keep, and checks up to `step` names for a sweep. Each statement is its
 * own short transaction, so writers and readers never wait long. Returns true while there is
 * more to do.
 *
 * The size limit counts the whole file: over it, the oldest events go, and with them the roll-ups
 * and name hours older than the oldest event left, so that the window shrinks for everything
 * alike (roll-ups left behind would otherwise keep the file over the limit until every event was
 * gone). The last hour's events are never deleted for size.
 */
function retentionStep (db: Db, limits: RetentionLimits, now: number, pass: RetentionPass, step = 2000, excessRows = 0, forget: () => void = () => {}): boolean {
  const cutoff = now - limits.days * DAY_MS
  let deleted = db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? ORDER BY ts LIMIT ?)').run(cutoff, step).changes
  if (deleted < step) cutBefore(db, cutoff, pass) // every event past the age limit is gone
  if (deleted < step && excessRows > pass.events + deleted) {
    deleted += deleteOldest(db, Math.min(step - deleted, excessRows - pass.events - deleted), Number.MAX_SAFE_INTEGER)
  }
  let full = false
  if (deleted < step && limits.maxBytes > 0 && usedBytes(db) > limits.maxBytes) {
    // First what is older than every event (roll-ups outlive events deleted for rows), then the
    // oldest events, and with them what is as old.
    const oldest = db.prepare('SELECT min(ts) FROM events').pluck()
    const lastHour = now - HOUR_MS
    cutBefore(db, Math.min((oldest.get() as number | null) ?? now, lastHour), pass)
    if (usedBytes(db) > limits.maxBytes) {
      const n = deleteOldest(db, step - deleted, lastHour)
      deleted += n
      full = n > 0
      if (full) cutBefore(db, Math.min((oldest.get() as number | null) ?? now, lastHour), pass)
    }
  }
  pass.events += deleted
  if (pass.sweepFrom >= 0) sweepNames(db, pass, step, forget)
  return deleted === step || full || pass.sweepFrom >= 0
}

/** Deletes up to `n` of the oldest events, none at or after `before` (ms). */
function deleteOldest (db: Db, n: number, before: number): number {
  return db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? ORDER BY ts, id LIMIT ?)').run(before, n).changes
}

/** Bytes of pages in use (the file itself keeps its high-water size; freed pages are reused). */
export function usedBytes (db: Db): number {
  const pages = db.pragma('page_count', { simple: true }) as number
  const free = db.pragma('freelist_count', { simple: true }) as number
  const size = db.pragma('page_size', { simple: true }) as number
  return (pages - free) * size
}

/** Rows beyond `maxRows` (an exact count; run it in the background, it reads a whole index). */
function excessRows (db: Db, maxRows: number): number {
  if (maxRows <= 0) return 0
  const n = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
  return Math.max(0, n - maxRows)
}

/**
 * Runs retention to completion in small steps, yielding between steps (`pause`) so batches of new
 * events get written in between. `forget` is called whenever names were deleted.
 */
export async function runRetention (db: Db, limits: RetentionLimits, now: number, pause: () => Promise<void>, step = 2000, forget: () => void = () => {}): Promise<Retained> {
  const excess = excessRows(db, limits.maxRows)
  const pass = new RetentionPass()
  for (let i = 0; i < 10_000_000 && retentionStep(db, limits, now, pass, step, excess, forget); i++) await pause()
  const over = limits.maxBytes > 0 ? usedBytes(db) - limits.maxBytes : 0
  return { events: pass.events, names: pass.names, overBytes: over > 0 ? over : 0 }
}
