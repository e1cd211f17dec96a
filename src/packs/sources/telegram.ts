// Telegram's published address ranges: https://core.telegram.org/resources/cidr.txt, one IPv4 or
// IPv6 CIDR per line. Blank lines and `#` comments (none in Telegram's file) are skipped.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseCidr } from '../../policy/names.js'
import type { SourceEntry, SourceIssue, SourceList } from './types.js'

/** Telegram's file in an upstream copy laid out like sources/ (`lists extract --from DIR`; not kept in the repository). */
export const TELEGRAM_CIDR_FILE = 'telegram/cidr.txt'

/** The ranges of one cidr.txt text (`file`: its path relative to the sources folder). Never throws. */
export function parseTelegramCidr (text: string, file: string): SourceList {
  const entries: SourceEntry[] = []
  const issues: SourceIssue[] = []
  const lines = text.split('\n')
  lines.forEach((raw, i) => {
    const s = raw.replace(/^\ufeff/, '').trim()
    if (s === '' || s.startsWith('#')) return
    const c = parseCidr(s)
    if ('error' in c) issues.push({ file, line: i + 1, message: c.error })
    else entries.push({ kind: 'cidr', value: c.value, file, line: i + 1, attrs: [] })
  })
  return { entries, dropped: [], issues }
}

/** The ranges of a saved copy of Telegram's file (`<sourcesDir>/telegram/cidr.txt`). */
export function readTelegramCidr (sourcesDir: string): SourceList {
  let text: string
  try {
    text = readFileSync(join(sourcesDir, TELEGRAM_CIDR_FILE), 'utf8')
  } catch (err) {
    return { entries: [], dropped: [], issues: [{ file: TELEGRAM_CIDR_FILE, line: 0, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] }
  }
  return parseTelegramCidr(text, TELEGRAM_CIDR_FILE)
}
