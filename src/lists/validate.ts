// Checks a downloaded list before it may replace the copy in use: it must parse with at most
// `maxBadLineShare` of its rule lines skipped, hold at least `minEntries` entries, and not have
// shrunk by more than `maxShrink` against the last accepted version (unless forced).

import { ListUpdateError } from '../errors.js'
import { formatName, parseSource, type SourceFormat } from './source-format.js'

export interface ListLimits {
  readonly minEntries: number
  readonly maxBadLineShare: number
  readonly maxShrink: number
}

export interface ListCheck { readonly entries: number, readonly badLines: number, readonly lines: number }

/** Throws a ListUpdateError (reason bad-lines, too-few or shrink) or returns the counts. */
export function checkList (source: string, data: Buffer, format: SourceFormat, limits: ListLimits, previousEntries: number | undefined, force: boolean): ListCheck {
  const text = data.toString('utf8')
  let entries = 0
  const parsed = parseSource(text, format, () => { entries++ })
  const badLines = parsed.issues.length
  const ruleLines = entries + badLines
  const reject = (reason: string, message: string): ListUpdateError => new ListUpdateError('EGRESSD_ERR_LIST_REJECTED', source, reason, message)
  if (text.includes('\u0000') || text.includes('\ufffd')) throw reject('bad-lines', 'not a text list (NUL bytes or invalid UTF-8)')
  if (ruleLines > 0 && badLines / ruleLines > limits.maxBadLineShare) {
    const first = parsed.issues[0]
    throw reject('bad-lines', `${badLines} of ${ruleLines} lines cannot be parsed as ${formatName(format)} (more than maxBadLineShare ${limits.maxBadLineShare}); line ${first.line}: ${first.message}`)
  }
  if (entries < limits.minEntries) throw reject('too-few', `${entries} entries, fewer than minEntries ${limits.minEntries}`)
  if (!force && previousEntries !== undefined && previousEntries > 0) {
    const shrink = (previousEntries - entries) / previousEntries
    if (shrink > limits.maxShrink) {
      throw reject('shrink', `${entries} entries, down from ${previousEntries} (-${Math.round(shrink * 100)}%, more than maxShrink ${limits.maxShrink}); force the update if this is intended`)
    }
  }
  return { entries, badLines, lines: parsed.lines }
}
