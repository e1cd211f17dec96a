// AdGuard HostlistsRegistry service definitions (`sources/adguard/services/<id>.yml`: `id`, `name`,
// `rules` (adblock-style rules as AdGuard Home's blocked services apply them), `icon_svg`, `group`).
// Only the plain host rules are names:
//
// - `||x^` -> kind `domain` (x and every name under it);
// - `|x^` -> kind `full` (x only);
// - `||x` / `|x` without the closing `^` -> the same kinds with attribute `no-caret`: AdGuard
//   matches such a rule as a prefix, so it also blocks longer names (`||snapkit.co` blocks
//   `snapkit.com`); the entry is the name the rule was written for;
// - exception rules (`@@`), rules with `$` modifiers, regular expressions (`/.../`), wildcards
//   (`*`), paths and other patterns, comments (`!`, `#`) and bare names without `|` anchors are
//   dropped with the reason;
// - a rule that looks like a host rule but whose name is not a host name is an issue.
//
// Line numbers are those of the rule's scalar in the YAML file.

import { LineCounter, isNode, isScalar, isSeq, parseDocument } from 'yaml'
import { toName } from '../../policy/names.js'
import { isSourceId, readSourceText } from './read-text.js'
import { type SourceDrop, type SourceEntry, type SourceIssue, type SourceList } from './types.js'

const SERVICES_DIR = 'adguard/services'

type RuleResult =
  | { readonly entry: Omit<SourceEntry, 'file' | 'line'> }
  | { readonly drop: string }
  | { readonly issue: string }

/** What one AdGuard rule string is, in egressd's terms. */
export function adguardRule (raw: string): RuleResult {
  const rule = raw.trim()
  if (rule === '') return { issue: 'empty rule' }
  if (rule.startsWith('!') || rule.startsWith('#')) return { drop: 'comment' }
  if (rule.startsWith('@@')) return { drop: 'exception rule (@@): unblocks, does not block' }
  if (rule.length > 1 && rule.startsWith('/') && rule.endsWith('/')) return { drop: 'regular expression rule: not a name' }
  if (rule.includes('$')) return { drop: 'rule with $ modifiers: applies only to some clients, types or answers' }
  let kind: 'domain' | 'full'
  let body: string
  if (rule.startsWith('||')) {
    kind = 'domain'
    body = rule.slice(2)
  } else if (rule.startsWith('|')) {
    kind = 'full'
    body = rule.slice(1)
  } else {
    return { drop: 'rule without | or || anchor: matches anywhere in a name, not a name' }
  }
  const attrs: string[] = []
  if (body.endsWith('^')) {
    body = body.slice(0, -1)
  } else if (body.endsWith('|')) {
    // `|x|` and `||x|`: anchored at both ends, the same names as with `^`.
    body = body.slice(0, -1)
  } else {
    attrs.push('no-caret')
  }
  if (body.includes('*')) return { drop: 'wildcard rule (*): a pattern, not a name' }
  if (body.includes('/')) return { drop: 'rule with a path: not a name' }
  if (body.includes('^') || body.includes('|')) return { drop: 'pattern rule (separator inside the rule): not a name' }
  const name = toName(body)
  if (typeof name !== 'string') return { issue: `${JSON.stringify(rule)}: ${name.error}` }
  return { entry: { kind, value: name, attrs } }
}

/**
 * The rules of AdGuard service `id` (`sourcesDir/adguard/services/<id>.yml`). A missing file, YAML
 * that does not parse, a file without a `rules` list or whose `id` differs are issues.
 */
export function readAdguardService (sourcesDir: string, id: string): SourceList {
  const file = `${SERVICES_DIR}/${id}.yml`
  const entries: SourceEntry[] = []
  const dropped: SourceDrop[] = []
  const issues: SourceIssue[] = []
  if (!isSourceId(id)) {
    issues.push({ file, line: 0, message: 'not a service id' })
    return { entries, dropped, issues }
  }
  const read = readSourceText(sourcesDir, file)
  if ('issue' in read) {
    issues.push(read.issue)
    return { entries, dropped, issues }
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(read.text, { lineCounter, prettyErrors: false })
  const lineAt = (offset: number | undefined): number => offset === undefined ? 0 : lineCounter.linePos(offset).line
  if (doc.errors.length > 0) {
    for (const err of doc.errors) issues.push({ file, line: lineAt(err.pos[0]), message: `YAML: ${err.message}` })
    return { entries, dropped, issues }
  }
  const idNode = doc.get('id', true)
  if (isScalar(idNode) && idNode.value !== id) {
    issues.push({ file, line: lineAt(idNode.range?.[0]), message: `id is ${JSON.stringify(idNode.value)}, the file name says ${JSON.stringify(id)}` })
  }
  const rules = doc.get('rules', true)
  if (!isSeq(rules)) {
    issues.push({ file, line: 0, message: 'no rules list' })
    return { entries, dropped, issues }
  }
  for (const item of rules.items) {
    const line = isNode(item) ? lineAt(item.range?.[0]) : 0
    if (!isScalar(item) || typeof item.value !== 'string') {
      issues.push({ file, line, message: 'rule is not a string' })
      continue
    }
    const r = adguardRule(item.value)
    if ('entry' in r) entries.push({ kind: r.entry.kind, value: r.entry.value, file, line, attrs: r.entry.attrs })
    else if ('drop' in r) dropped.push({ file, line, text: item.value, reason: r.drop })
    else issues.push({ file, line, message: r.issue })
  }
  return { entries, dropped, issues }
}
