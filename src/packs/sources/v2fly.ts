// v2fly domain-list-community data files (`sources/v2fly/data/<list>`), read as v2fly's own
// generator (main.go, loadData/parseEntry/parseInclusion/resolveList) reads them:
//
// - `#` starts a comment anywhere on a line; blank lines are skipped;
// - `type:value` splits at the first `:`; no `:` means `domain:`; the type is case-insensitive;
// - `domain:x` -> kind `domain`, `full:x` -> kind `full`; `keyword:` and `regexp:` rules are
//   dropped (they match substrings and patterns, not names);
// - after the value, whitespace-separated fields: `@attr` (an attribute, kept in `attrs` as `@attr`)
//   and `&list` (an affiliation: the rule also belongs to `list`); any other field is an issue;
// - `include:list @a @-b` adds the rules of `list` that carry every `@a` and none of the `@-b`
//   attributes (a rule without attributes passes only when the include names no `@a`); includes
//   resolve recursively in the same data folder; a cycle is an issue at the include line;
// - rules of other files in the data folder that name this list with `&list` belong to it too.
//
// Entries keep the file and line they were written on (an included rule names the included
// file). A line reached twice (an include diamond) gives one entry.

import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { toName } from '../../policy/names.js'
import { isSourceId, readSourceText, sourceLines } from './read-text.js'
import { type SourceDrop, type SourceEntry, type SourceIssue, type SourceList } from './types.js'

const DATA_DIR = 'v2fly/data'

/** One rule line of a data file, before includes are resolved. */
interface Rule {
  readonly entry: SourceEntry | null // null for a dropped rule
  readonly drop: SourceDrop | null
  readonly attrs: readonly string[] // bare attribute names (`cn`), for include filters
  readonly affiliations: readonly string[] // lower-case list names
}

interface Inclusion {
  readonly list: string // lower-case
  readonly must: readonly string[]
  readonly ban: readonly string[]
  readonly line: number
}

interface ParsedFile {
  readonly file: string
  readonly rules: Rule[]
  readonly inclusions: Inclusion[]
  readonly issues: SourceIssue[]
}

/** Attribute names: what v2fly's validateAttrChars accepts (after lower-casing). */
function isAttr (s: string): boolean {
  return /^[a-z0-9!]+$/.test(s)
}

/** List names as v2fly's validateSiteName accepts them (case-insensitive), lower-cased. */
function listName (s: string): string | null {
  return /^[A-Za-z0-9!-]+$/.test(s) ? s.toLowerCase() : null
}

function parseInclusion (file: string, line: number, rest: string, issues: SourceIssue[]): Inclusion | null {
  const parts = rest.split(/\s+/).filter((p) => p !== '')
  if (parts.length === 0) {
    issues.push({ file, line, message: 'include: names no list' })
    return null
  }
  const list = listName(parts[0])
  if (list === null) {
    issues.push({ file, line, message: `include: ${JSON.stringify(parts[0])} is not a list name` })
    return null
  }
  const must: string[] = []
  const ban: string[] = []
  for (const part of parts.slice(1)) {
    if (part.startsWith('@')) {
      const attr = part.slice(1).toLowerCase()
      const banned = attr.startsWith('-')
      const name = banned ? attr.slice(1) : attr
      if (!isAttr(name)) {
        issues.push({ file, line, message: `include: bad attribute filter ${JSON.stringify(part)}` })
        return null
      }
      ;(banned ? ban : must).push(name)
    } else if (part.startsWith('&')) {
      issues.push({ file, line, message: 'include: an include cannot have an affiliation (&)' })
      return null
    } else {
      issues.push({ file, line, message: `include: unknown field ${JSON.stringify(part)}` })
      return null
    }
  }
  return { list, must, ban, line }
}

function parseRule (file: string, line: number, type: string, rest: string, text: string, issues: SourceIssue[]): Rule | null {
  const parts = rest.split(/\s+/).filter((p) => p !== '')
  if (parts.length === 0) {
    issues.push({ file, line, message: `${type}: rule has no value` })
    return null
  }
  const attrs: string[] = []
  const affiliations: string[] = []
  for (const part of parts.slice(1)) {
    if (part.startsWith('@')) {
      const attr = part.slice(1).toLowerCase()
      if (!isAttr(attr)) {
        issues.push({ file, line, message: `bad attribute ${JSON.stringify(part)}` })
        return null
      }
      if (!attrs.includes(attr)) attrs.push(attr)
    } else if (part.startsWith('&')) {
      const aff = listName(part.slice(1))
      if (aff === null) {
        issues.push({ file, line, message: `bad affiliation ${JSON.stringify(part)}` })
        return null
      }
      affiliations.push(aff)
    } else {
      issues.push({ file, line, message: `unknown field ${JSON.stringify(part)}` })
      return null
    }
  }
  attrs.sort()
  const value = parts[0]
  if (type === 'keyword' || type === 'regexp') {
    const drop = { file, line, text, reason: `v2fly ${type}: rule: not a name` }
    return { entry: null, drop, attrs, affiliations }
  }
  const name = toName(value)
  if (typeof name !== 'string') {
    issues.push({ file, line, message: `${type}: ${JSON.stringify(value)}: ${name.error}` })
    return null
  }
  const entry: SourceEntry = { kind: type === 'full' ? 'full' : 'domain', value: name, file, line, attrs: attrs.map((a) => '@' + a) }
  return { entry, drop: null, attrs, affiliations }
}

function parseFile (sourcesDir: string, list: string): ParsedFile {
  const file = `${DATA_DIR}/${list}`
  const rules: Rule[] = []
  const inclusions: Inclusion[] = []
  const issues: SourceIssue[] = []
  const read = readSourceText(sourcesDir, file)
  if ('issue' in read) {
    issues.push(read.issue)
    return { file, rules, inclusions, issues }
  }
  const lines = sourceLines(read.text)
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1
    const hash = lines[i].indexOf('#')
    const text = (hash < 0 ? lines[i] : lines[i].slice(0, hash)).trim()
    if (text === '') continue
    const colon = text.indexOf(':')
    const type = colon < 0 ? 'domain' : text.slice(0, colon).toLowerCase()
    const rest = colon < 0 ? text : text.slice(colon + 1)
    switch (type) {
      case 'include': {
        const inc = parseInclusion(file, line, rest, issues)
        if (inc !== null) inclusions.push(inc)
        break
      }
      case 'domain':
      case 'full':
      case 'keyword':
      case 'regexp': {
        const rule = parseRule(file, line, type, rest, text, issues)
        if (rule !== null) rules.push(rule)
        break
      }
      default:
        issues.push({ file, line, message: `unknown rule type ${JSON.stringify(type + ':')}` })
    }
  }
  return { file, rules, inclusions, issues }
}

/** v2fly's isMatchAttrFilters. */
function passes (attrs: readonly string[], inc: Inclusion): boolean {
  if (attrs.length === 0) return inc.must.length === 0
  return inc.must.every((m) => attrs.includes(m)) && !inc.ban.some((b) => attrs.includes(b))
}

/**
 * The rules of v2fly list `list` (a file name under `sourcesDir/v2fly/data`), includes and
 * affiliations resolved. A missing list file is an issue at line 0; a missing included list or an
 * include cycle is an issue at the include line.
 */
export function readV2fly (sourcesDir: string, list: string): SourceList {
  const parsed = new Map<string, ParsedFile>()
  const parse = (name: string): ParsedFile => {
    let p = parsed.get(name)
    if (p === undefined) {
      p = parseFile(sourcesDir, name)
      parsed.set(name, p)
    }
    return p
  }

  // Rules other files affiliate (`&name`) with a list, found once per call over the data folder.
  let affiliated: Map<string, Rule[]> | null = null
  const affiliatedTo = (name: string): Rule[] => {
    if (affiliated === null) {
      affiliated = new Map()
      let files: string[] = []
      try {
        files = readdirSync(join(sourcesDir, ...DATA_DIR.split('/')))
      } catch {
        files = []
      }
      for (const f of files.filter(isSourceId).sort()) {
        for (const rule of parse(f).rules) {
          for (const aff of rule.affiliations) {
            if (aff === f) continue
            const into = affiliated.get(aff) ?? []
            into.push(rule)
            affiliated.set(aff, into)
          }
        }
      }
    }
    return affiliated.get(name) ?? []
  }

  const issues: SourceIssue[] = []
  const issueFiles = new Set<string>()
  // The rules of a list with its includes resolved (before any filter of the list that includes it).
  const resolved = new Map<string, Rule[]>()
  const resolve = (name: string, stack: string[]): Rule[] => {
    const done = resolved.get(name)
    if (done !== undefined) return done
    const p = parse(name)
    if (!issueFiles.has(p.file)) {
      issueFiles.add(p.file)
      issues.push(...p.issues)
    }
    const rules: Rule[] = [...p.rules, ...affiliatedTo(name)]
    for (const inc of p.inclusions) {
      if (stack.includes(inc.list)) {
        issues.push({ file: p.file, line: inc.line, message: `include cycle: ${[...stack, inc.list].join(' -> ')}` })
        continue
      }
      if (!isSourceId(inc.list)) {
        issues.push({ file: p.file, line: inc.line, message: `include: ${JSON.stringify(inc.list)} is not a list file name` })
        continue
      }
      const sub = parse(inc.list)
      if (sub.issues.length > 0 && sub.issues[0].line === 0) {
        issues.push({ file: p.file, line: inc.line, message: `include:${inc.list}: ${sub.issues[0].message} (${sub.file})` })
        issueFiles.add(sub.file)
        continue
      }
      for (const rule of resolve(inc.list, [...stack, inc.list])) {
        if (passes(rule.attrs, inc)) rules.push(rule)
      }
    }
    resolved.set(name, rules)
    return rules
  }

  if (!isSourceId(list)) {
    return { entries: [], dropped: [], issues: [{ file: `${DATA_DIR}/${list}`, line: 0, message: 'not a list file name' }] }
  }
  const entries: SourceEntry[] = []
  const dropped: SourceDrop[] = []
  const seen = new Set<string>()
  for (const rule of resolve(list, [list])) {
    const at = rule.entry ?? rule.drop
    if (at === null) continue
    const key = `${at.file}:${at.line}`
    if (seen.has(key)) continue
    seen.add(key)
    if (rule.entry !== null) entries.push(rule.entry)
    if (rule.drop !== null) dropped.push(rule.drop)
  }
  return { entries, dropped, issues }
}
