// Opens an SQLite file under the data dir: WAL, bounded busy wait and journal, migrations applied
// in one transaction each. For the block log (egressd.sqlite), a file that is not a readable
// database is moved aside (renamed with a timestamp) and a fresh one created, so DNS never waits on
// a broken log; the policy file (policy.sqlite) is opened by policy-db.ts, which salvages its rows
// first. A file written by a newer egressd is refused, since downgrading its schema would lose data.

import Database from 'better-sqlite3'
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { StoreError } from '../errors.js'
import { MIGRATIONS, SCHEMA_VERSION, type Migration, type MigrationContext } from './migrations.js'

export type Db = Database.Database

export interface OpenOptions {
  /** NORMAL (default): a process crash loses nothing committed, a power cut may lose the last commits. FULL: fsync on every commit. */
  readonly synchronous?: 'NORMAL' | 'FULL'
  /** How long a statement waits for a lock held by another connection before SQLITE_BUSY. */
  readonly busyTimeoutMs?: number
  readonly readonly?: boolean
  readonly migrations?: readonly Migration[]
  /** Called when a broken file was moved aside (the daemon logs it loudly). */
  readonly onMovedAside?: (from: string, to: string, reason: string) => void
  readonly now?: () => number
  /** Run quick_check at open (default true); a second connection to a file just checked skips it. */
  readonly check?: boolean
  /**
   * The policy file (policy.sqlite) of the same data dir, for the block log's migration 5: rows left
   * in its old tables may be dropped when that file records them as moved (see policy-db.ts).
   */
  readonly policyPath?: string
}

/** Opens (creating and migrating when needed) the database at `path`. */
export function openDatabase (path: string, opts: OpenOptions = {}): Db {
  if (opts.readonly === true) return configure(new Database(path, { readonly: true, fileMustExist: true }), opts)
  mkdirSync(dirname(path), { recursive: true })
  let db: Db
  try {
    db = configure(new Database(path), opts)
    if (opts.check !== false) probe(db)
  } catch (err) {
    if (!isBrokenFile(err)) throw err
    const to = moveAside(path, opts.now ?? Date.now)
    opts.onMovedAside?.(path, to, (err as Error).message)
    db = configure(new Database(path), opts)
  }
  migrate(db, opts.migrations ?? MIGRATIONS, { policyPath: opts.policyPath })
  return db
}

/** Files up to this size get a full quick_check at open (about 100 ms); bigger ones a schema read. */
const FULL_CHECK_MAX_BYTES = 64 * 1024 * 1024

/**
 * Throws SQLITE_CORRUPT/NOTADB for a file that is not a readable database. A full quick_check of a
 * multi-GB log takes seconds (7 s for 13M events here) and start-up must not wait on it: files over
 * `fullCheckMaxBytes` get a read of the header and the schema; damage deeper in the file then shows
 * as write errors, which the block log counts, logs and retries.
 */
export function probe (db: Db, fullCheckMaxBytes = FULL_CHECK_MAX_BYTES): void {
  let size = 0
  try { size = statSync(db.name).size } catch { /* a new file, or :memory: */ }
  db.prepare('SELECT count(*) FROM sqlite_master').get()
  if (size > fullCheckMaxBytes) return
  const check = db.pragma('quick_check', { simple: true })
  if (check !== 'ok') throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: 'SQLITE_CORRUPT' })
}

/**
 * Probes the file at `path` on a read-only connection, so a damaged file is not written to (no WAL
 * switch, no checkpoint at close) before it is kept aside: why it is damaged, or undefined when it
 * reads whole. Errors that do not mean damage (EACCES, SQLITE_BUSY ...) are thrown.
 */
export function damageOf (path: string, fullCheckMaxBytes = FULL_CHECK_MAX_BYTES): string | undefined {
  let db: Db | undefined
  try {
    db = new Database(path, { readonly: true, fileMustExist: true })
    probe(db, fullCheckMaxBytes)
    return undefined
  } catch (err) {
    if (!isBrokenFile(err)) throw err
    return (err as Error).message
  } finally {
    db?.close()
  }
}

export function configure (db: Db, opts: Pick<OpenOptions, 'readonly' | 'busyTimeoutMs' | 'synchronous'>): Db {
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 2000}`)
  if (opts.readonly !== true) {
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`)
    // Bound the WAL file after checkpoints (64 MiB) and checkpoint every ~4 MiB of pages.
    db.pragma('journal_size_limit = 67108864')
    db.pragma('wal_autocheckpoint = 1000')
  }
  return db
}

/** Applies every migration above the recorded version; refuses a database from a newer egressd. */
export function migrate (db: Db, migrations: readonly Migration[] = MIGRATIONS, ctx: MigrationContext = {}): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)')
  const current = schemaVersion(db)
  const latest = migrations[migrations.length - 1]?.version ?? 0
  if (current > latest) {
    throw new StoreError('EGRESSD_ERR_STORE_NEWER_SCHEMA',
      `${db.name}: schema version ${current} is newer than this egressd understands (${latest}); ` +
      'run the egressd release that wrote it, or move the file aside to start a new log')
  }
  for (const m of migrations) {
    if (m.version <= current) continue
    db.transaction(() => {
      m.check?.(db, ctx)
      db.exec(m.sql)
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now())
    })()
  }
  return latest
}

export function schemaVersion (db: Db): number {
  const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null } | undefined
  return row?.v ?? 0
}

export function isBrokenFile (err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT_VTAB'
}

/** Renames the file (and its -wal/-shm) to `<path>.corrupt-<ISO time>`; returns the new name. */
export function moveAside (path: string, now: () => number): string {
  const to = `${path}.corrupt-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(path + suffix)) renameSync(path + suffix, to + suffix)
  }
  return to
}

export { SCHEMA_VERSION }
