// The policy's own SQLite file (policy.sqlite in the data dir): custom rules, category overrides and
// the audit log, apart from the big, busy block log (egressd.sqlite), so damage to the log cannot
// touch them. The block log may be lost to damage; the policy may not be lost silently:
//
// - A damaged policy file is read row by row (salvage.ts), moved aside (renamed with a timestamp,
//   kept for forensics) and a fresh file is written with every row that could be read, ids kept.
// - What could not be read, and a policy file gone missing after the policy had been moved out of
//   the block log, is recorded as a loss in the file's `meta` table: readiness fails (`policy`) and
//   the status says why, across restarts, until an admin acknowledges it (custom-policy.ts).
// - On the first start of an egressd with this file, the rows of the block log's old tables
//   (its migration 2) are copied here, ids kept, and then deleted there; the block log's migration
//   5 then drops the empty tables, and refuses to while rows are left.

import Database from 'better-sqlite3'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { Logger } from 'pino'
import { configure, damageOf, isBrokenFile, migrate, moveAside, schemaVersion, type Db } from './db.js'
import { MOVED_KEY, OLD_POLICY_TABLES, POLICY_MIGRATIONS, type MoveRecord } from './migrations.js'
import { salvageFile, type Salvage } from './salvage.js'

const POLICY_FILE = 'policy.sqlite'

/** Where the policy file of a data dir is. */
export const policyPath = (dataDir: string): string => join(dataDir, POLICY_FILE)

/** What the status and readiness say about the policy file. */
export interface PolicyStoreStatus {
  readonly path: string
  /** The file is open and the custom rules, overrides and audit log are served from it. */
  readonly available: boolean
  /** False when rows were lost (or the file is unavailable): readiness fails with `policy`. */
  readonly complete: boolean
  /** Why it is not complete, one sentence each (empty when complete). */
  readonly problems: readonly string[]
}

export interface PolicyStoreOptions {
  readonly path: string
  /** The block log file, which held the policy up to its migration 4 (rows are moved from there). */
  readonly blockLogPath?: string
  readonly synchronous?: 'NORMAL' | 'FULL'
  readonly busyTimeoutMs?: number
  readonly log: Logger
  readonly now: () => number
}

export interface OpenedPolicyStore {
  /** Undefined when the file cannot be opened at all (then `error` says why). */
  readonly db: Db | undefined
  readonly error?: string
}

/** The meta key under which lost rows are recorded until acknowledged (a JSON array of sentences). */
export const LOSSES_KEY = 'losses'

/**
 * Opens (creating, salvaging, migrating, moving the old rows in) the policy file. Never throws: a
 * file that cannot be opened is reported in `error`, logged loudly, and DNS goes on with the
 * config's policy.
 */
export function openPolicyStore (o: PolicyStoreOptions): OpenedPolicyStore {
  const log = o.log.child({ mod: 'policy-store' })
  const at = (): string => new Date(o.now()).toISOString()
  let db: Db | undefined
  try {
    mkdirSync(dirname(o.path), { recursive: true })
    const existed = existsSync(o.path)
    // Was the policy moved out of the block log by an earlier start? Then a missing file is a loss.
    const logVersion = existed || o.blockLogPath === undefined ? undefined : blockLogVersion(o.blockLogPath)
    // Probed read-only: a damaged file is kept aside as it was found (no WAL switch, no checkpoint).
    const damage = existed ? damageOf(o.path, Infinity) : undefined
    if (damage !== undefined) {
      const salvage = salvageFile(o.path, ['rules', 'category_overrides', 'audit', 'meta'])
      const movedTo = moveAside(o.path, o.now)
      db = configure(new Database(o.path), o)
      migrate(db, POLICY_MIGRATIONS)
      const fresh = db
      const losses = salvage.problems.map(p => `${at()}: ${p} (the damaged file is kept as ${movedTo})`)
      fresh.transaction(() => {
        restoreRows(fresh, salvage)
        if (losses.length > 0) addLosses(fresh, losses)
      })()
      const counts = countsOf(salvage)
      if (losses.length === 0) {
        log.error({ path: o.path, movedTo, reason: damage, ...counts },
          'POLICY STORE DAMAGED: the policy file could not be read whole; every row was salvaged into a fresh file and the damaged one moved aside')
      } else {
        log.error({ path: o.path, movedTo, reason: damage, lost: salvage.problems, salvaged: counts },
          'POLICY INCOMPLETE: the policy file is damaged and some custom rules, category overrides or audit rows could not be recovered; ' +
          'readiness fails until an admin acknowledges it (POST /api/v1/policy/acknowledge); DNS goes on with what was read')
      }
    } else {
      db = configure(new Database(o.path), o)
      migrate(db, POLICY_MIGRATIONS)
    }
    if (o.blockLogPath !== undefined) moveOldTables(db, o.blockLogPath, existed, { log, at, busyTimeoutMs: o.busyTimeoutMs })
    if (!existed && logVersion !== undefined && logVersion >= 5) {
      const loss = `${at()}: ${o.path} was missing, although ${o.blockLogPath ?? 'the block log'} says the policy had been moved there; ` +
        'the custom rules, category overrides and audit log it held are lost (restore the file from a backup, or acknowledge)'
      addLosses(db, [loss])
      log.error({ path: o.path }, `POLICY INCOMPLETE: ${loss}`)
    }
    return { db }
  } catch (err) {
    try { db?.close() } catch { /* closing is all that is left to do */ }
    const error = `${o.path}: ${(err as Error).message}`
    log.error({ err, path: o.path }, 'POLICY STORE UNAVAILABLE: custom rules, category overrides and the audit log cannot be read or written; ' +
      'DNS goes on with the config\'s policy, and readiness fails (policy)')
    return { db: undefined, error }
  }
}

/** The block log's schema version, or undefined when it cannot be read (absent, damaged). */
function blockLogVersion (path: string): number | undefined {
  if (!existsSync(path)) return undefined
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true })
    try { return schemaVersion(db) } finally { db.close() }
  } catch {
    return undefined
  }
}

/** Lost rows recorded so far (sentences), as stored in `meta`. */
export function readLosses (db: Db): string[] {
  const r = db.prepare('SELECT value FROM meta WHERE key = ?').get(LOSSES_KEY) as { value: string } | undefined
  if (r === undefined) return []
  try {
    const v = JSON.parse(r.value) as unknown
    return Array.isArray(v) ? v.map(String) : [String(v)]
  } catch {
    return [r.value]
  }
}

function addLosses (db: Db, losses: readonly string[]): void {
  setMeta(db, LOSSES_KEY, JSON.stringify([...readLosses(db), ...losses]))
}

function setMeta (db: Db, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value)
}

function readMoveRecord (db: Db): MoveRecord | undefined {
  const r = db.prepare('SELECT value FROM meta WHERE key = ?').get(MOVED_KEY) as { value: string } | undefined
  if (r === undefined) return undefined
  try {
    const v = JSON.parse(r.value) as Partial<MoveRecord>
    return { ...v, from: str(v.from), at: str(v.at) }
  } catch {
    return { from: '', at: '' } // recorded, if unreadably: the move happened
  }
}

const countsOf = (s: Salvage): Record<string, number> =>
  Object.fromEntries(['rules', 'category_overrides', 'audit'].map(t => [t, s.tables.get(t)?.rows.length ?? 0]))

const num = (v: unknown): number | null => typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null
// A salvaged value as text: SQLite gives text, numbers or blobs; anything else (null, an object
// from damaged JSON) is the fallback, never "[object Object]".
const str = (v: unknown, fallback = ''): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : Buffer.isBuffer(v) ? v.toString('utf8') : fallback

/**
 * Writes salvaged rows into a policy database (ids kept; rows already there win) and sets the
 * AUTOINCREMENT counters so that no id is given again: the rules counter is at least the largest
 * rule id any audit row names ("rule 17"), since deleted rules have no row left. Returns the counts.
 */
export function restoreRows (db: Db, s: Salvage): { rules: number, overrides: number, audit: number } {
  let rules = 0
  let overrides = 0
  let audit = 0
  const insRule = db.prepare('INSERT OR IGNORE INTO rules (id, kind, rule, comment, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
  for (const r of s.tables.get('rules')?.rows ?? []) {
    const id = num(r.id)
    const kind = r.kind === 'allow' ? 'allow' : r.kind === 'block' ? 'block' : undefined
    if (id === null || kind === undefined || typeof r.rule !== 'string') continue
    rules += insRule.run(id, kind, r.rule, str(r.comment), num(r.created_at) ?? 0, str(r.created_by, 'unknown'), num(r.expires_at)).changes
  }
  const insOverride = db.prepare('INSERT OR IGNORE INTO category_overrides (grp, category, enabled, action, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)')
  for (const r of s.tables.get('category_overrides')?.rows ?? []) {
    if (typeof r.grp !== 'string' || typeof r.category !== 'string') continue
    overrides += insOverride.run(r.grp, r.category, num(r.enabled), typeof r.action === 'string' ? r.action : null, num(r.updated_at) ?? 0, str(r.updated_by, 'unknown')).changes
  }
  const insAudit = db.prepare('INSERT OR IGNORE INTO audit (id, ts, actor, client, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  let ruleIdInAudit = 0
  for (const r of s.tables.get('audit')?.rows ?? []) {
    const id = num(r.id)
    if (id === null || typeof r.action !== 'string') continue
    const target = str(r.target)
    const named = /^rule (\d{1,16})$/.exec(target)
    if (named !== null) ruleIdInAudit = Math.max(ruleIdInAudit, Number(named[1]))
    audit += insAudit.run(id, num(r.ts) ?? 0, str(r.actor, 'unknown'), str(r.client), r.action, target,
      typeof r.before === 'string' ? r.before : null, typeof r.after === 'string' ? r.after : null).changes
  }
  const insMeta = db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)')
  for (const r of s.tables.get('meta')?.rows ?? []) {
    if (typeof r.key === 'string' && typeof r.value === 'string') insMeta.run(r.key, r.value)
  }
  raiseSequence(db, 'rules', Math.max(s.tables.get('rules')?.maxId ?? 0, ruleIdInAudit))
  raiseSequence(db, 'audit', s.tables.get('audit')?.maxId ?? 0)
  return { rules, overrides, audit }
}

/** Makes the next AUTOINCREMENT id of `table` larger than `atLeast` (never lowers it). */
function raiseSequence (db: Db, table: string, atLeast: number): void {
  if (atLeast <= 0) return
  const cur = db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table) as { seq: number } | undefined
  if (cur === undefined) db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)').run(table, atLeast)
  else if (cur.seq < atLeast) db.prepare('UPDATE sqlite_sequence SET seq = ? WHERE name = ?').run(atLeast, table)
}

interface MoveDeps {
  readonly log: Logger
  readonly at: () => string
  readonly busyTimeoutMs?: number
}

/**
 * Copies the rows of the block log's old policy tables here (committed first, with a move record
 * saying their delete there is pending), then deletes them there. Rows that could not be read there
 * are recorded as lost, and the block log file is copied aside before the delete so nothing a
 * forensic tool could still read is gone. Once this file records the move, rows found there again
 * are never merged: a pending delete is retried, and anything else is stale (a block log restored
 * from a backup made before the move) and is renamed aside, the policy left as it is.
 */
function moveOldTables (db: Db, blockLogPath: string, policyExisted: boolean, d: MoveDeps): void {
  const { log, at } = d
  const record = readMoveRecord(db)
  // Nothing to move (a new install, or a block log past its migration 5): the policy lives here from
  // now on, and old tables that turn up later are stale, not moved.
  const nothingToMove = (): void => {
    if (record === undefined) setMeta(db, MOVED_KEY, JSON.stringify({ from: blockLogPath, at: at(), rules: 0, overrides: 0, audit: 0, deletePending: false }))
  }
  if (!existsSync(blockLogPath)) { nothingToMove(); return }
  const s = salvageFile(blockLogPath, OLD_POLICY_TABLES)
  if (!s.schemaReadable) {
    // A block log that cannot be read at all may have held the policy (before this file existed).
    if (!policyExisted) {
      const loss = `${at()}: ${blockLogPath} could not be read, so the custom rules, category overrides and audit rows it may hold ` +
        `were not moved to ${db.name} (${s.problems.join('; ')})`
      addLosses(db, [loss])
      log.error({ path: blockLogPath }, `POLICY INCOMPLETE: ${loss}`)
    }
    return
  }
  const rows = [...s.tables.values()].reduce((n, t) => n + t.rows.length, 0)
  if (record !== undefined) {
    if (s.tables.size === 0 || (rows === 0 && s.problems.length === 0)) {
      // Nothing (left) there: the delete, or the block log's migration 5, is done.
      if (record.deletePending === true) setMeta(db, MOVED_KEY, JSON.stringify({ ...record, deletePending: false }))
      return
    }
    if (record.deletePending === true && resolve(record.from) === resolve(blockLogPath)) {
      // The rows were copied by an earlier start whose delete there failed: delete them now, no merge
      // (rules deleted here since must not come back).
      deleteOld(db, blockLogPath, s, record, d)
      return
    }
    setAsideStale(db, blockLogPath, s, rows, record, d)
    return
  }
  if (s.tables.size === 0) { nothingToMove(); return }
  const losses = s.problems.map(p => `${at()}: moving the policy out of the block log: ${p}`)
  const moved: MoveRecord & Record<string, unknown> = db.transaction(() => {
    const n = restoreRows(db, s)
    if (losses.length > 0) addLosses(db, losses)
    const r = { from: blockLogPath, at: at(), ...n, deletePending: true }
    setMeta(db, MOVED_KEY, JSON.stringify(r))
    return r
  })()
  if (losses.length > 0) {
    const copy = `${blockLogPath}.before-policy-move-${at().replace(/[:.]/g, '-')}`
    try { copyFileSync(blockLogPath, copy) } catch (err) { log.warn({ err, copy }, 'could not copy the damaged block log aside before the move') }
    log.error({ from: blockLogPath, lost: s.problems, copy }, 'POLICY INCOMPLETE: some custom rules, category overrides or audit rows of the block log could not be read when they were moved to the policy file')
  }
  if (rows > 0) log.info({ ...moved, to: db.name }, 'custom rules, category overrides and audit log moved from the block log to their own file')
  deleteOld(db, blockLogPath, s, moved, d)
}

/**
 * Deletes the moved rows from the block log (its migration 5 then drops the tables) and clears the
 * pending delete in the move record. The rows are safe here by now: a delete that fails for want of
 * space or a lock is a warning and is retried at the next start (the block log's migration 5 may
 * drop them meanwhile, seeing the record); a block log damaged where they were is moved aside.
 */
function deleteOld (db: Db, blockLogPath: string, s: Salvage, record: MoveRecord, d: MoveDeps): void {
  let old: Database.Database | undefined
  let done = false
  try {
    old = new Database(blockLogPath, { fileMustExist: true })
    old.pragma(`busy_timeout = ${d.busyTimeoutMs ?? 2000}`)
    const o = old
    o.transaction(() => { for (const t of s.tables.keys()) o.exec(`DELETE FROM "${t}"`) })()
    done = true
  } catch (err) {
    old?.close()
    old = undefined
    if (isBrokenFile(err)) {
      // The rows are copied; the block log is damaged where they were: start a fresh log.
      const to = moveAside(blockLogPath, () => Date.parse(d.at()))
      done = true
      d.log.error({ from: blockLogPath, to, reason: (err as Error).message }, 'STORE DAMAGED: the block log could not be written after its policy rows were moved out; it was moved aside and a fresh one will be created')
    } else {
      d.log.warn({ err, from: blockLogPath, to: db.name }, 'the custom rules, category overrides and audit rows are in the policy file, but deleting them from the block log failed; ' +
        'the next start retries the delete (nothing is merged again), and the block log drops them meanwhile')
    }
  } finally {
    old?.close()
  }
  if (done) setMeta(db, MOVED_KEY, JSON.stringify({ ...record, deletePending: false }))
}

/** Table names for stale copies of the old tables: `stale_rules_20300102T030405Z`. */
const staleName = (table: string, at: string): string => `stale_${table}_${at.replace(/[-:]/g, '').replace(/\.\d+/, '')}`

/**
 * The block log holds policy rows although this file records their move: a backup from before the
 * move was restored. Merging them would bring back rules deleted since (allow rules included) with
 * no audit row, so the policy is left as it is; their tables are renamed aside in the block log (its
 * migration 5 drops only the old names) and an admin is told, in the log and in the status.
 */
function setAsideStale (db: Db, blockLogPath: string, s: Salvage, rows: number, record: MoveRecord, d: MoveDeps): void {
  const stamp = d.at()
  const renames = [...s.tables.keys()].map(t => [t, staleName(t, stamp)] as const)
  const names = renames.map(([, to]) => to).join(', ')
  let old: Database.Database | undefined
  let error: Error | undefined
  try {
    old = new Database(blockLogPath, { fileMustExist: true })
    old.pragma(`busy_timeout = ${d.busyTimeoutMs ?? 2000}`)
    const o = old
    o.transaction(() => { for (const [from, to] of renames) o.exec(`ALTER TABLE "${from}" RENAME TO "${to}"`) })()
  } catch (err) {
    error = err as Error
  } finally {
    old?.close()
  }
  const what = `${blockLogPath} holds ${rows} custom rule, category override or audit row(s) although they were moved to ${db.name}` +
    `${record.at !== '' ? ` at ${record.at}` : ''}: the block log was probably restored from a backup made before the move`
  if (error === undefined) {
    const note = `${stamp}: ${what}. They were not merged (rules deleted since would come back); the policy is unchanged. ` +
      `The stale tables are kept in the block log as ${names}; acknowledge once checked`
    addLosses(db, [note])
    d.log.warn({ from: blockLogPath, tables: renames.map(([, to]) => to), rows }, `STALE POLICY TABLES: ${note}`)
    return
  }
  const note = `${stamp}: ${what}. They were not merged; renaming their tables aside failed (${error.message}), so the block log stays closed until it can be done`
  if (!readLosses(db).some(l => l.includes(what.slice(what.indexOf(' holds '))) && l.includes('renaming their tables aside failed'))) addLosses(db, [note])
  d.log.warn({ err: error, from: blockLogPath, rows }, `STALE POLICY TABLES: ${note}`)
}
