// Block-log rows as CSV (RFC 4180), the same for the API's export (api/routes/blocks.ts) and for
// `egressd logs search --format csv` (logs-command.ts): one header, then one line per row, in
// ROW_COLUMNS order, CRLF line ends.

import { ROW_COLUMNS, type BlockRow } from './block-event.js'

/** RFC 4180: quote a field that has a comma, quote, CR or LF; double the quotes. Null is empty. */
function csvField (v: BlockRow[keyof BlockRow]): string {
  if (v === null) return ''
  const s = String(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export const CSV_HEADER = ROW_COLUMNS.join(',') + '\r\n'

export function csvLine (row: BlockRow): string {
  return ROW_COLUMNS.map(c => csvField(row[c])).join(',') + '\r\n'
}
