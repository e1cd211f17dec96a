// A category's recipe (blocklists/<category>/recipe.yaml): which source extracts its pack takes,
// the entries added by hand with their evidence, the pack exceptions, and the source entries left
// out with the reason. See docs/packs.md. Read and checked here; every problem names the file and
// the field.

import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { parseList } from '../policy/parsers.js'
import type { Rule } from '../policy/rule.js'

export interface HandEntry {
  readonly rule: Rule
  /** The entry as written in the recipe. */
  readonly entry: string
  /** add/exceptions: the evidence; exclude: the reason. */
  readonly why: string
}

export interface Recipe {
  readonly file: string
  /** Extract names (`v2fly/telegram`). */
  readonly sources: readonly string[]
  readonly add: readonly HandEntry[]
  readonly exceptions: readonly HandEntry[]
  readonly exclude: readonly HandEntry[]
}

const KEYS = ['sources', 'add', 'exceptions', 'exclude'] as const

/** Reads a recipe; problems are pushed as `FILE: field: message`. */
export function readRecipe (file: string, problems: string[]): Recipe | undefined {
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(file, 'utf8'))
  } catch (err) {
    problems.push(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no recipe' : (err as Error).message.split('\n')[0]}`)
    return undefined
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { problems.push(`${file}: expected a mapping with ${KEYS.join(', ')}`); return undefined }
  const m = raw as Record<string, unknown>
  const before = problems.length
  for (const k of Object.keys(m)) if (!(KEYS as readonly string[]).includes(k)) problems.push(`${file}: ${k}: unknown key (known: ${KEYS.join(', ')})`)
  const sources: string[] = []
  if (!Array.isArray(m.sources)) problems.push(`${file}: sources: expected a list of extract names (may be [])`)
  else {
    m.sources.forEach((s, i) => {
      if (typeof s === 'string' && /^[a-z0-9_-]+\/[a-z0-9_.-]+$/.test(s)) sources.push(s)
      else problems.push(`${file}: sources.${i}: expected an extract name such as v2fly/telegram, got ${JSON.stringify(s)}`)
    })
  }
  const hand = (key: 'add' | 'exceptions' | 'exclude', whyKey: 'evidence' | 'reason'): HandEntry[] => {
    const v = m[key]
    if (v === undefined || v === null) return []
    if (!Array.isArray(v)) { problems.push(`${file}: ${key}: expected a list of {entry, ${whyKey}}`); return [] }
    const out: HandEntry[] = []
    v.forEach((item: unknown, i) => {
      const where = `${file}: ${key}.${i}`
      const o = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>
      const entry = o.entry
      const why = o[whyKey]
      if (typeof entry !== 'string' || entry.trim() === '') { problems.push(`${where}.entry: expected a rule`); return }
      if (typeof why !== 'string' || why.trim() === '') { problems.push(`${where}.${whyKey}: expected a non-empty string (${whyKey === 'evidence' ? 'where someone can check the entry' : 'why the entry is left out'})`); return }
      for (const k of Object.keys(o)) if (k !== 'entry' && k !== whyKey) problems.push(`${where}.${k}: unknown key (known: entry, ${whyKey})`)
      const parsed = parseList(entry, 'plain')
      if (parsed.issues.length > 0) { problems.push(`${where}.entry: ${parsed.issues[0].message}`); return }
      const rule = parsed.rules[0]
      if (rule === undefined || parsed.rules.length !== 1) { problems.push(`${where}.entry: expected one rule`); return }
      if (rule.allow) { problems.push(`${where}.entry: write the entry without '@@' (${key === 'exceptions' ? 'exceptions are allow entries already' : 'allow entries go under exceptions'})`); return }
      if (rule.kind === 'regex') { problems.push(`${where}.entry: a pack takes no regular expressions (a name, =name, *.name or a CIDR)`); return }
      if (key === 'exceptions' && rule.kind === 'cidr') { problems.push(`${where}.entry: an exception is a name`); return }
      out.push({ rule, entry: entry.trim(), why: why.trim() })
    })
    return out
  }
  const recipe: Recipe = { file, sources, add: hand('add', 'evidence'), exceptions: hand('exceptions', 'evidence'), exclude: hand('exclude', 'reason') }
  return problems.length > before ? undefined : recipe
}
