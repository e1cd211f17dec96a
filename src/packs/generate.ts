// The pack generator (`egressd lists generate`, `npm run packs`): each bundled category's
// domains.txt and cidrs.txt made from its recipe.yaml and the source extracts under sources/,
// every entry followed by where it came from. Refuses (problems, nothing written) when a recipe or
// extract cannot be read, an exclusion names nothing a source offers, or an entry of any pack would
// block a mustNotBlock name or a name of the collateral corpus. See docs/packs.md.

import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readMeta, type CategoryMeta } from '../policy/build.js'
import { ruleText, typeFilterText } from '../policy/engine.js'
import { parseCidr } from '../policy/names.js'
import { typeApplies, type Rule, type TypeFilter } from '../policy/rule.js'
import { categoryFolders, mustNotBlockOf, readCorpus, type ProtectedName } from './collateral.js'
import { readExtract, type Extract, type ExtractDrop } from './extract.js'
import { readRecipe, type Recipe } from './recipe.js'

/** One entry of a generated pack. */
export interface PackEntry {
  readonly rule: Rule
  /** The entry in plain-list syntax (without '@@'). */
  readonly text: string
  /** The extracts that offer it (empty for a hand entry). */
  readonly sources: readonly string[]
  /** A hand entry's or exception's evidence. */
  readonly evidence?: string
}

/** A source entry the pack does not list itself, and why. */
export interface LeftOut {
  readonly text: string
  readonly sources: readonly string[]
  /** `excluded: <reason>`, or `covered by <entry>`. */
  readonly why: string
}

export interface PackPlan {
  readonly category: string
  readonly meta: CategoryMeta
  readonly recipe: Recipe
  /** Block entries as written (names first, then ranges), after dropping covered ones. */
  readonly entries: readonly PackEntry[]
  readonly exceptions: readonly PackEntry[]
  readonly leftOut: readonly LeftOut[]
  /** Per extract the recipe takes: entries it offers, and what its parser dropped. */
  readonly offered: ReadonlyMap<string, { readonly entries: number, readonly dropped: readonly ExtractDrop[], readonly header: readonly string[] }>
  readonly domainsText: string
  readonly cidrsText: string
}

export interface Generation {
  readonly plans: readonly PackPlan[]
  /** Names the packs must leave answered: every mustNotBlock, then the collateral corpus. */
  readonly protectedNames: number
  readonly problems: readonly string[]
}

/** The order entries are written in: by their labels from the right, so a domain's names stand together. */
const nameKey = (value: string): string => value.split('.').reverse().join('.')

/** Plans every pack under `root` (blocklists/, sources/); writes nothing. */
export function planPacks (root: string): Generation {
  const problems: string[] = []
  const packsDir = join(root, 'blocklists')
  const extracts = new Map<string, Extract | undefined>()
  const extract = (name: string): Extract | undefined => {
    if (!extracts.has(name)) extracts.set(name, readExtract(join(root, 'sources', `${name}.txt`), name, problems))
    return extracts.get(name)
  }
  const plans: PackPlan[] = []
  const protectedNames: ProtectedName[] = []
  for (const category of categoryFolders(packsDir, problems)) {
    const dir = join(packsDir, category)
    const meta = readMeta(join(dir, 'meta.yaml'), problems)
    const recipe = readRecipe(join(dir, 'recipe.yaml'), problems)
    if (meta === undefined || recipe === undefined) continue
    protectedNames.push(...mustNotBlockOf(meta.mustNotBlock, category, join(dir, 'meta.yaml'), problems))
    const plan = planPack(category, meta, recipe, extract, problems)
    if (plan !== undefined) plans.push(plan)
  }
  protectedNames.push(...readCorpus(root, problems))
  for (const plan of plans) checkCollateral(plan, protectedNames, problems)
  return { plans, protectedNames: protectedNames.length, problems }
}

function planPack (category: string, meta: CategoryMeta, recipe: Recipe, extract: (name: string) => Extract | undefined, problems: string[]): PackPlan | undefined {
  const before = problems.length
  const offered = new Map<string, { entries: number, dropped: readonly ExtractDrop[], header: readonly string[] }>()
  /** Entry text -> the entry and its sources, in first-seen order. */
  const byText = new Map<string, { rule: Rule, sources: string[] }>()
  for (const name of recipe.sources) {
    const x = extract(name)
    if (x === undefined) continue
    offered.set(name, { entries: x.entries.length, dropped: x.dropped, header: x.header })
    for (const e of x.entries) {
      const text = ruleText(e.rule.kind, e.rule.value, false, e.rule.types)
      const known = byText.get(text)
      if (known === undefined) byText.set(text, { rule: e.rule, sources: [name] })
      else if (!known.sources.includes(name)) known.sources.push(name)
    }
  }
  const leftOut: LeftOut[] = []
  for (const x of recipe.exclude) {
    const text = ruleText(x.rule.kind, x.rule.value, false, x.rule.types)
    const known = byText.get(text)
    if (known === undefined) { problems.push(`${recipe.file}: exclude ${JSON.stringify(x.entry)}: no source of the recipe offers it (a stale exclusion?)`); continue }
    byText.delete(text)
    leftOut.push({ text, sources: known.sources, why: `excluded: ${x.why}` })
  }
  const candidates: PackEntry[] = [...byText].map(([text, e]) => ({ rule: e.rule, text, sources: e.sources }))
  for (const a of recipe.add) {
    const text = ruleText(a.rule.kind, a.rule.value, false, a.rule.types)
    const known = byText.get(text)
    if (known !== undefined) { problems.push(`${recipe.file}: add ${JSON.stringify(a.entry)}: already offered by ${known.sources.join(', ')} (take it from there)`); continue }
    candidates.push({ rule: a.rule, text, sources: [], evidence: a.why })
  }
  const exceptions: PackEntry[] = recipe.exceptions.map(x => ({ rule: x.rule, text: ruleText(x.rule.kind, x.rule.value, false, x.rule.types), sources: [], evidence: x.why }))
  // Entries another entry of the pack already covers add nothing: left out, saying which covers them.
  const entries = candidates.filter(c => !candidates.some(o => o !== c && coversEntry(o, c)))
  for (const c of candidates) {
    if (entries.includes(c)) continue
    const by = entries.find(o => coversEntry(o, c))
    leftOut.push({ text: c.text, sources: c.sources.length > 0 ? c.sources : ['added'], why: `covered by ${by?.text ?? '?'}` })
  }
  for (const x of exceptions) {
    if (!entries.some(e => e.rule.kind !== 'cidr' && coversName(e.rule, x.rule.value))) problems.push(`${recipe.file}: exception ${JSON.stringify(x.text)}: no entry of the pack blocks it`)
  }
  const names = entries.filter(e => e.rule.kind !== 'cidr').sort((a, b) => cmp(nameKey(a.rule.value), nameKey(b.rule.value)) || cmp(a.text, b.text))
  const ranges = entries.filter(e => e.rule.kind === 'cidr').sort(cidrOrder)
  if (names.length === 0) problems.push(`${recipe.file}: the pack would have no name entry (domains.txt needs at least one)`)
  if (problems.length > before) return undefined
  const sorted = [...names, ...ranges]
  return {
    category,
    meta,
    recipe,
    entries: sorted,
    exceptions: exceptions.sort((a, b) => cmp(nameKey(a.rule.value), nameKey(b.rule.value))),
    leftOut,
    offered,
    domainsText: domainsText(meta, recipe, names, exceptions),
    cidrsText: cidrsText(meta, recipe, ranges)
  }
}

const cmp = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

function cidrOrder (a: PackEntry, b: PackEntry): number {
  const x = parseCidr(a.rule.value)
  const y = parseCidr(b.rule.value)
  if ('error' in x || 'error' in y) return cmp(a.text, b.text)
  return x.family - y.family || (x.start < y.start ? -1 : x.start > y.start ? 1 : 0)
}

/** Whether a name rule blocks the name `n`. */
export function coversName (r: Rule, n: string): boolean {
  const v = r.value
  if (r.kind === 'exact') return n === v
  const under = n.length > v.length && n.endsWith(v) && n.charCodeAt(n.length - v.length - 1) === 0x2e
  return r.kind === 'suffix' ? n === v || under : r.kind === 'wildcard' ? under : false
}

/** Whether entry `a` blocks everything `b` blocks (same query types, or `a` for every type). */
function coversEntry (a: PackEntry, b: PackEntry): boolean {
  if (a.rule.types !== undefined && (b.rule.types === undefined || typeFilterText(a.rule.types) !== typeFilterText(b.rule.types))) return false
  if (a.rule.kind === 'cidr' || b.rule.kind === 'cidr') {
    if (a.rule.kind !== 'cidr' || b.rule.kind !== 'cidr') return false
    const x = parseCidr(a.rule.value)
    const y = parseCidr(b.rule.value)
    return !('error' in x) && !('error' in y) && x.family === y.family && x.start <= y.start && y.end <= x.end
  }
  if (b.rule.kind === 'exact') return coversName(a.rule, b.rule.value)
  if (b.rule.kind === 'wildcard') return a.rule.kind !== 'exact' && (a.rule.value === b.rule.value || coversName(a.rule, b.rule.value))
  // b is a suffix entry: a must cover b's name and all under it.
  return a.rule.kind === 'suffix' && coversName(a.rule, b.rule.value)
}

/** Pushes a problem for every protected name an entry of the pack blocks (past the pack's exceptions). */
function checkCollateral (plan: PackPlan, names: readonly ProtectedName[], problems: string[]): void {
  for (const p of names) {
    if (plan.exceptions.some(x => coversName(x.rule, p.name))) continue
    for (const e of plan.entries) {
      if (e.rule.kind === 'cidr' || !coversName(e.rule, p.name)) continue
      if (e.rule.types !== undefined && p.types !== undefined && !p.types.types.some(t => typeApplies(e.rule.types as TypeFilter, t))) continue
      const origin = e.sources.length > 0 ? `from ${e.sources.join(', ')}` : 'added by hand'
      problems.push(`${plan.recipe.file}: ${plan.category} entry ${JSON.stringify(e.text)} (${origin}) would block ${p.name}${p.types === undefined ? '' : ` (${typeFilterText(p.types)})`}, which must stay answered (${p.from})`)
    }
  }
}

const provenance = (e: PackEntry): string => e.sources.length > 0 ? e.sources.join(' ') : `added: ${oneLine(e.evidence ?? '')}`
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim()

function header (meta: CategoryMeta, recipe: Recipe, what: string): string[] {
  return [
    `# ${meta.title}: ${what}. Generated by \`npm run packs\` from recipe.yaml and the source`,
    '# extracts under sources/ (docs/packs.md); edit the recipe, not this file. After each entry: the',
    '# extracts that offer it, or the evidence for an entry added by hand. Reasoning: meta.yaml.',
    `# Sources: ${recipe.sources.length > 0 ? recipe.sources.join(', ') : 'none (hand entries only)'}.`,
    ''
  ]
}

function domainsText (meta: CategoryMeta, recipe: Recipe, names: readonly PackEntry[], exceptions: readonly PackEntry[]): string {
  const lines = header(meta, recipe, 'names to block')
  for (const e of names) lines.push(`${e.text}  # ${provenance(e)}`)
  if (exceptions.length > 0) {
    lines.push('', '# Pack exceptions: names under the entries above that stay answered (shared with other services).')
    for (const x of exceptions) lines.push(`@@${x.text}  # exception: ${oneLine(x.evidence ?? '')}`)
  }
  return lines.join('\n') + '\n'
}

function cidrsText (meta: CategoryMeta, recipe: Recipe, ranges: readonly PackEntry[]): string {
  const lines = header(meta, recipe, 'address ranges')
  if (ranges.length === 0) lines.push(`# No ranges: ${meta.title} publishes none used by it alone (meta.yaml notes say why).`)
  for (const e of ranges) lines.push(`${e.text}  # ${provenance(e)}`)
  return lines.join('\n') + '\n'
}

/** The packs' files whose text differs from the plan: path -> the generated text. */
export function changedFiles (root: string, plans: readonly PackPlan[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const p of plans) {
    for (const [file, text] of [['domains.txt', p.domainsText], ['cidrs.txt', p.cidrsText]] as const) {
      const path = join(root, 'blocklists', p.category, file)
      let current: string | undefined
      try { current = readFileSync(path, 'utf8') } catch { current = undefined }
      if (current !== text) out.set(path, text)
    }
  }
  return out
}

/** Writes the changed files; returns their paths. */
export function writePacks (root: string, plans: readonly PackPlan[]): string[] {
  const changed = changedFiles(root, plans)
  for (const [path, text] of changed) writeFileSync(path, text)
  return [...changed.keys()]
}
