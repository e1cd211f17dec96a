// How CLI commands print results: JSON for scripts, plain-text tables for a person at a terminal.
// The choice: --json forces JSON, --table forces a table; without either, a table when stdout is a
// terminal and JSON when it is a pipe or a file (so scripts that parsed the JSON keep working).

import { EgressdError } from '../errors.js'

export type OutputMode = 'json' | 'table'

export const OUTPUT_OPTIONS = {
  json: { type: 'boolean' },
  table: { type: 'boolean' }
} as const

export function outputMode (flags: { json?: boolean, table?: boolean }, isTTY: boolean): OutputMode {
  if (flags.json === true && flags.table === true) throw new EgressdError('EGRESSD_ERR_USAGE', 'give --json or --table, not both')
  if (flags.json === true) return 'json'
  if (flags.table === true) return 'table'
  return isTTY ? 'table' : 'json'
}

export type Cell = string | number | boolean | null | undefined

export interface Column<T> {
  readonly title: string
  readonly value: (row: T) => Cell
  /** Numbers are right-aligned by default. */
  readonly align?: 'left' | 'right'
}

const text = (c: Cell): string => c === null || c === undefined || c === '' ? '-' : String(c).replace(/[\r\n\t]+/g, ' ')

/** Rows as columns padded to their widest cell, a header line first; `none` when there are no rows. */
export function formatTable<T> (rows: readonly T[], columns: ReadonlyArray<Column<T>>, none = '(none)'): string {
  if (rows.length === 0) return `${none}\n`
  const cells = rows.map(r => columns.map(c => c.value(r)))
  const numeric = (i: number): boolean => cells.some(row => typeof row[i] === 'number') && cells.every(row => typeof row[i] === 'number' || row[i] === null || row[i] === undefined)
  const right = columns.map((c, i) => c.align === 'right' || (c.align === undefined && numeric(i)))
  const strings = [columns.map(c => c.title), ...cells.map(row => row.map(text))]
  const widths = columns.map((_, i) => Math.max(...strings.map(row => row[i].length)))
  return strings.map(row => row.map((s, i) => {
    if (i === row.length - 1 && !right[i]) return s
    return right[i] ? s.padStart(widths[i]) : s.padEnd(widths[i])
  }).join('  ').trimEnd()).join('\n') + '\n'
}

/** `key  value` lines, keys padded; nested values as compact JSON. */
export function formatPairs (pairs: Record<string, unknown>): string {
  const entries = Object.entries(pairs).filter(([, v]) => v !== undefined)
  const width = Math.max(0, ...entries.map(([k]) => k.length))
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${typeof v === 'object' && v !== null ? JSON.stringify(v) : text(v as Cell)}`).join('\n') + '\n'
}

export const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n'
