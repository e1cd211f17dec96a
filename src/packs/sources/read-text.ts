// Reading one vendored source file for the source parsers: its text, or the issue that says why it
// cannot be read (a missing file is an issue of the list, not an exception: the generator reports
// every unreadable input at once). Line 0 in an issue means the file as a whole.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type SourceIssue } from './types.js'

/** The text of `sourcesDir/file` (`file` uses `/`), or an issue at line 0 naming the file. */
export function readSourceText (sourcesDir: string, file: string): { text: string } | { issue: SourceIssue } {
  try {
    const text = readFileSync(join(sourcesDir, ...file.split('/')), 'utf8')
    return { text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const message = code === 'ENOENT'
      ? 'no such file in the sources folder'
      : `cannot read the file: ${(err as Error).message}`
    return { issue: { file, line: 0, message } }
  }
}

/** Splits text into lines (LF or CRLF); a final newline does not make an extra empty line. */
export function sourceLines (text: string): string[] {
  const lines = text.split(/\r?\n/)
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  return lines
}

/** Service and list ids name a file: lower-case letters, digits, `-`, `_` and `!` only (no paths). */
export function isSourceId (id: string): boolean {
  return /^[a-z0-9_!-]+$/.test(id)
}
