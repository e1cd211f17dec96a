// The `ms365` list format: a source whose file is the answer of Microsoft's endpoints web service
// (https://endpoints.office.com/endpoints/worldwide?clientrequestid=GUID), of which the config's
// selection (service areas and/or endpoint set ids) becomes rules through the same parser as the
// extracts (src/packs/sources/ms365.ts): `*.x` a wildcard rule, exact names exact rules,
// ranges cidr rules, each on the JSON line where it stands. Every other format goes to the line
// parsers unchanged. The version check before a download is in ms365-version.ts.

import type { Ms365SourceSettings } from '../config/types.js'
import { entryRule } from '../packs/extract.js'
import { parseMs365 } from '../packs/sources/ms365.js'
import { parseList } from '../policy/parsers.js'
import type { ListFormat, ParsedList, Rule, RuleKind } from '../policy/rule.js'

/** How a source's text is read: a line format, or Microsoft 365 endpoints with a selection. */
export type SourceFormat = ListFormat | { readonly ms365: Ms365SourceSettings }

/** The SourceFormat of a configured source. */
export function sourceFormat (s: { readonly format: ListFormat | 'ms365', readonly ms365?: Ms365SourceSettings }): SourceFormat {
  return s.format === 'ms365' ? { ms365: s.ms365 ?? {} } : s.format
}

/** A SourceFormat's name, for messages. */
export const formatName = (f: SourceFormat): string => typeof f === 'string' ? f : 'ms365'

const RULE_KIND: Readonly<Record<string, RuleKind>> = { full: 'exact', wildcard: 'wildcard', domain: 'suffix', cidr: 'cidr' }

/**
 * Parses a source's text into rules (handed to `sink` as read, like parseList). ms365: malformed
 * values (and a body that is not JSON) are issues with their line; a name with a wildcard inside
 * is left out without an issue (it is Microsoft's pattern, not an error of the file); a name or
 * range that appears in several selected sets is one rule. `lines` is the line count of the text.
 */
export function parseSource (text: string, format: SourceFormat, sink?: (rule: Rule) => void): ParsedList {
  if (typeof format === 'string') return parseList(text, format, sink)
  const list = parseMs365(text, 'ms365', format.ms365)
  const rules: Rule[] = []
  const seen = new Set<string>()
  for (const e of list.entries) {
    const key = `${e.kind} ${e.value}`
    if (seen.has(key)) continue
    seen.add(key)
    const rule: Rule = { kind: RULE_KIND[e.kind], value: e.value, allow: false, line: e.line, text: entryRule(e), types: undefined }
    if (sink === undefined) rules.push(rule)
    else sink(rule)
  }
  let lines = 1
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++
  return { rules, issues: list.issues.map(i => ({ line: i.line, message: i.message, text: '' })), lines }
}

/** The rules a source's text yields (for the shrink guard against the accepted copy). */
export function countEntries (text: string, format: SourceFormat): number {
  let n = 0
  parseSource(text, format, () => { n++ })
  return n
}
