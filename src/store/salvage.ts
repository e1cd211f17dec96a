// Reads what is left of a damaged SQLite file, row by row, without writing to it (like the sqlite3
// shell's `.recover`, for the few small tables of the policy). A rowid table is read in rowid order
// one seek at a time; when a seek runs into an unreadable page, the next readable rowid is found by
// probing further ahead (doubling the step) and then bisecting back, so the rows after the damaged
// page are read too, and the stretch that could not be read is reported. What is reported missing
// is what the caller must treat as lost.

import Database from 'better-sqlite3'

export interface SalvagedTable {
  readonly table: string
  /** Every row that could be read, in rowid order, as `SELECT *` returns it. */
  readonly rows: Array<Record<string, unknown>>
  /** The largest rowid seen, or the table's AUTOINCREMENT counter when that is larger (0: none). */
  readonly maxId: number
}

export interface Salvage {
  readonly path: string
  /** Tables found (even when only some rows could be read). */
  readonly tables: ReadonlyMap<string, SalvagedTable>
  /** What could not be read, one sentence each; empty when every row of every table present was read. */
  readonly problems: readonly string[]
  /** False when the file's schema could not be read at all (then `tables` is empty). */
  readonly schemaReadable: boolean
}

const codeOf = (err: unknown): string => {
  const e = err as { code?: unknown, message?: unknown }
  return `${typeof e.code === 'string' ? `${e.code}: ` : ''}${String(e.message ?? err)}`
}

/**
 * Reads the rows of `tables` from the file at `path` (read-only). Tables absent from the file are
 * left out silently; a table whose rows could not all be read is named in `problems`.
 */
export function salvageFile (path: string, tables: readonly string[]): Salvage {
  const problems: string[] = []
  const found = new Map<string, SalvagedTable>()
  let db: Database.Database
  try {
    db = new Database(path, { readonly: true, fileMustExist: true })
  } catch (err) {
    return { path, tables: found, problems: [`${path}: cannot be opened (${codeOf(err)}); nothing could be read`], schemaReadable: false }
  }
  try {
    let schema: Array<{ name: string, sql: string | null }>
    try {
      schema = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all() as typeof schema
    } catch (err) {
      return { path, tables: found, problems: [`${path}: the schema cannot be read (${codeOf(err)}); nothing could be read`], schemaReadable: false }
    }
    const sequences = new Map<string, number>()
    try {
      if (schema.some(s => s.name === 'sqlite_sequence')) {
        for (const r of db.prepare('SELECT name, seq FROM sqlite_sequence').all() as Array<{ name: string, seq: number }>) sequences.set(r.name, r.seq)
      }
    } catch { /* the counters are rebuilt from the rows */ }
    for (const table of tables) {
      const entry = schema.find(s => s.name === table)
      if (entry === undefined) continue
      const withoutRowid = /\bWITHOUT\s+ROWID\b/i.test(entry.sql ?? '')
      const r = withoutRowid ? scanTable(db, table) : readByRowid(db, table)
      const maxId = Math.max(r.maxId, sequences.get(table) ?? 0)
      found.set(table, { table, rows: r.rows, maxId })
      for (const p of r.problems) problems.push(`${path}: ${table}: ${p}`)
    }
    return { path, tables: found, problems, schemaReadable: true }
  } finally {
    db.close()
  }
}

interface TableRead { rows: Array<Record<string, unknown>>, maxId: number, problems: string[] }

/** A WITHOUT ROWID table (the block log's old category_overrides): one scan, kept up to the first error. */
function scanTable (db: Database.Database, table: string): TableRead {
  const rows: Array<Record<string, unknown>> = []
  try {
    for (const r of db.prepare(`SELECT * FROM "${table}"`).iterate()) rows.push(r as Record<string, unknown>)
    return { rows, maxId: 0, problems: [] }
  } catch (err) {
    return { rows, maxId: 0, problems: [`rows after the first ${rows.length} could not be read (${codeOf(err)})`] }
  }
}

function readByRowid (db: Database.Database, table: string): TableRead {
  const next = db.prepare(`SELECT rowid AS "__salvage_rowid", * FROM "${table}" WHERE rowid > ? ORDER BY rowid LIMIT 1`)
  const rows: Array<Record<string, unknown>> = []
  const problems: string[] = []
  let upper = Number.MAX_SAFE_INTEGER
  try {
    const m = db.prepare(`SELECT max(rowid) AS m FROM "${table}"`).get() as { m: number | null }
    if (m.m !== null) upper = m.m
  } catch { /* the right edge of the tree is damaged: probe up to the largest safe integer */ }
  const readable = (after: number): boolean => {
    try { next.get(after); return true } catch { return false }
  }
  let after = Number.MIN_SAFE_INTEGER
  let maxId = 0
  for (;;) {
    let row: Record<string, unknown> | undefined
    try {
      row = next.get(after) as Record<string, unknown> | undefined
    } catch (err) {
      // Find the smallest rowid at or after which a seek works again: doubling steps ahead, then
      // bisecting between the last failing and the first working one.
      const from = after === Number.MIN_SAFE_INTEGER ? 'the first row' : `the row after id ${after}`
      const base = after === Number.MIN_SAFE_INTEGER ? 0 : after
      let lo = after
      let found: number | undefined
      for (let step = 1; base + step <= upper + 1; step *= 2) {
        if (readable(base + step)) { found = base + step; break }
        lo = base + step
      }
      if (found === undefined) {
        problems.push(`${from} and every row after it could not be read (${codeOf(err)})`)
        break
      }
      let hi: number = found
      while (hi - lo > 1) {
        const mid: number = lo + Math.floor((hi - lo) / 2)
        if (readable(mid)) hi = mid
        else lo = mid
      }
      problems.push(`rows from ${from} up to id ${hi} could not be read (${codeOf(err)})`)
      after = hi
      continue
    }
    if (row === undefined) break
    const id = row.__salvage_rowid as number
    delete row.__salvage_rowid
    rows.push(row)
    after = id
    if (id > maxId) maxId = id
  }
  return { rows, maxId, problems }
}
