// Builds an Engine from the blocklists config: the bundled categories (one folder each, with
// meta.yaml, domains.txt and an optional cidrs.txt), extra list files, inline rules and client
// groups. Reports every skipped line as FILE:LINE: message, and refuses to build (an error, not a
// half-loaded engine) when a list cannot be read, has no valid entry, or the config names a
// category that does not exist.

import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import type { BlockAction, BlocklistsConfig, CategoryOverride, InlineRules } from '../config/types.js'
import { PolicyError } from '../errors.js'
import { DomainIndex } from './domain-index.js'
import { Engine, listOfRule, type CategoryInfo, type GroupPlan } from './engine.js'
import { IpIndex } from './ip-index.js'
import { parseCidr } from './names.js'
import { parseSource, sourceFormat, type SourceFormat } from '../lists/source-format.js'
import { typeApplies, type ParseIssue, type ParsedList, type Rule, type RuleKind, type TypeFilter } from './rule.js'
import { compileSafeRegex } from './safe-regex.js'
import { guardConfigRules, guardListRule, type RuleGuard } from './guard.js'
import { readPackExtras, type PackExtras } from './pack-extras.js'

/** A category's meta.yaml, as far as the engine and status need it. */
export interface CategoryMeta {
  readonly title: string
  readonly description: string
  readonly legalBasis: string
  readonly policyRef: string
  readonly enabled: boolean
  readonly lastReviewed: string
  readonly mustNotBlock: readonly string[]
  /** What else stops working with this category on (shared infrastructure): shown by check and check-config. */
  readonly alsoAffects: readonly string[]
  /** false: the service's names resolve to shared front ends, so their addresses are never learned (default true). */
  readonly learnAddresses: boolean
}

export interface ListReport {
  readonly category: string
  readonly list: string
  readonly rules: number
  readonly skipped: number
}

/** CIDR rules by category, normalized, as the firewall export needs them. */
export interface AddressRules { readonly v4: string[], readonly v6: string[] }

export interface EngineBuild {
  readonly engine: Engine
  /** Block CIDRs by category name, and allow CIDRs of every category. */
  readonly addresses: { readonly block: ReadonlyMap<string, AddressRules>, readonly allow: AddressRules }
  readonly lists: readonly ListReport[]
  /** Per list name (as in Verdict.list): the first 16 hex digits of the SHA-256 of its text, the list version block events record. */
  readonly listHashes: ReadonlyMap<string, string>
  /** Skipped lines and other warnings, as `FILE:LINE: message`. */
  readonly warnings: readonly string[]
  readonly ms: number
  /**
   * The packs' probes.txt and shared-ranges.txt (policy/pack-extras.ts): probe names of the enabled
   * categories, for the learner; the shared ranges turned on by firewall.sharedRanges, for the
   * firewall only (never in the engine's address matching).
   */
  readonly extras: PackExtras
}

/** Reads and checks a category's meta.yaml; problems are pushed as `FILE: field: message`. */
export function readMeta (file: string, problems: string[]): CategoryMeta | undefined {
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(file, 'utf8'))
  } catch (err) {
    problems.push(`${file}: ${(err as Error).message.split('\n')[0]}`)
    return undefined
  }
  if (typeof raw !== 'object' || raw === null) { problems.push(`${file}: expected a mapping`); return undefined }
  const m = raw as Record<string, unknown>
  const str = (k: string, required = true): string => {
    const v = m[k]
    if (typeof v === 'string' && v.trim() !== '') return v.trim()
    if (v instanceof Date) return v.toISOString().slice(0, 10)
    if (required) problems.push(`${file}: ${k}: expected a non-empty string`)
    return ''
  }
  if (typeof m.enabled !== 'boolean') problems.push(`${file}: enabled: expected true or false`)
  const mustNotBlock = Array.isArray(m.mustNotBlock) ? m.mustNotBlock.filter((x): x is string => typeof x === 'string') : []
  if (m.alsoAffects !== undefined && (!Array.isArray(m.alsoAffects) || m.alsoAffects.some(x => typeof x !== 'string'))) problems.push(`${file}: alsoAffects: expected a list of strings`)
  const alsoAffects = Array.isArray(m.alsoAffects) ? m.alsoAffects.filter((x): x is string => typeof x === 'string') : []
  if (m.learnAddresses !== undefined && typeof m.learnAddresses !== 'boolean') problems.push(`${file}: learnAddresses: expected true or false`)
  return {
    title: str('title'),
    description: str('description', false),
    legalBasis: str('legalBasis', false),
    policyRef: str('policyRef'),
    enabled: m.enabled === true,
    lastReviewed: str('lastReviewed', false),
    mustNotBlock,
    alsoAffects,
    learnAddresses: m.learnAddresses !== false
  }
}

interface CategoryDraft {
  name: string
  title: string
  policyRef: string
  enabledByDefault: boolean
  alsoAffects?: readonly string[]
  /** Only for one group's own rules. */
  onlyGroup?: number
}

const readText = (file: string, problems: string[]): string | undefined => {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return undefined
  }
}

/**
 * What the running daemon adds to the config's lists, set at run time: custom rules kept in the
 * store (management API) and the downloaded copies of URL sources (list updates).
 */
export interface PolicyInputs {
  /** Custom rules in the syntax of a plain list line; they join the `custom` category. */
  readonly rules?: InlineRules
  /** URL sources by name: the local file holding their last accepted version. */
  readonly sourceFiles?: ReadonlyMap<string, string>
  /**
   * Category overrides set at run time (management API), by client group name ('*': every group),
   * merged over the config's per category and field. Names that do not exist (any more) are warnings.
   */
  readonly categories?: Readonly<Record<string, Readonly<Record<string, CategoryOverride>>>>
  /**
   * The rule guard (policy/guard.ts; loadRuleGuard in packs/collateral.ts makes it per config): a
   * too-broad block rule of the config is a problem naming its path, a too-broad line of an extra list
   * is skipped and reported as FILE:LINE. Absent: nothing is guarded. The store's custom rules are
   * not guarded here: the API checked them (or an admin forced them) when they were added.
   */
  readonly guard?: RuleGuard
  /**
   * firewall.sharedRanges: categories whose shared-ranges.txt is turned on. A name that is no
   * category, or one without shared-ranges.txt, is a problem naming `config firewall.sharedRanges.N`.
   */
  readonly sharedRanges?: readonly string[]
}

/**
 * Whether the config has rules the rule guard checks (block rules of its own, per-group rules, extra
 * lists): without them a caller need not load the guard's corpus at all.
 */
export function hasGuardedRules (cfg: BlocklistsConfig): boolean {
  return cfg.rules.block.length > 0 || cfg.sources.length > 0 || cfg.groups.some(g => g.rules.block.length > 0)
}

/** Builds the engine, or throws a PolicyError listing every problem. Synchronous. */
export function buildEngine (cfg: BlocklistsConfig, generation: number, inputs: PolicyInputs = {}): EngineBuild {
  const started = performance.now()
  const problems: string[] = []
  const warnings: string[] = []
  const reports: ListReport[] = []
  const categories: CategoryDraft[] = []
  const catIndex = new Map<string, number>()
  const lists: string[] = []

  const kind: RuleKind[] = []
  const value: string[] = []
  const line = new Numbers()
  /** Per list: its first rule id, and its category. */
  const listStart = new Numbers()
  const listCategory = new Numbers()
  const types = new Map<number, TypeFilter>()
  const blockNames = new DomainIndex()
  const allowNames = new DomainIndex()
  const exceptNames = new DomainIndex()
  const excepting: number[] = []
  const blockAddresses = new IpIndex()
  const allowAddresses = new IpIndex()
  const blockCidrs = new Map<string, AddressRules>()
  const allowCidrs: AddressRules = { v4: [], v6: [] }

  const addCategory = (d: CategoryDraft): number => {
    const existing = catIndex.get(d.name)
    if (existing !== undefined) return existing
    categories.push(d)
    catIndex.set(d.name, categories.length - 1)
    return categories.length - 1
  }

  /**
   * Adds one rule of the list being read; false when it is unusable (reported as a warning). In a
   * bundled category (`pack`), an allow rule is an exception of that category only.
   */
  const addRule = (r: Rule, cat: number, listName: string, pack: boolean): boolean => {
      const id = kind.length
      const names = !r.allow ? blockNames : pack ? exceptNames : allowNames
      if (pack && r.allow) {
        if (r.kind === 'cidr' || r.kind === 'regex') { warnings.push(`${listName}:${r.line}: a pack exception must be a name (@@name or @@=name)`); return false }
        excepting[cat] = 1
      }
      if (r.kind === 'cidr') {
        const c = parseCidr(r.value)
        if ('error' in c) { warnings.push(`${listName}:${r.line}: ${c.error}`); return false }
        (r.allow ? allowAddresses : blockAddresses).add(c.family, c.start, c.end, id)
        let rules = allowCidrs
        if (!r.allow) {
          const name = categories[cat].name
          rules = blockCidrs.get(name) ?? { v4: [], v6: [] }
          blockCidrs.set(name, rules)
        }
        (c.family === 4 ? rules.v4 : rules.v6).push(c.value)
      } else if (r.kind === 'regex') {
        const re = compileSafeRegex(r.value)
        if ('error' in re) { warnings.push(`${listName}:${r.line}: ${re.error}`); return false }
        names.addRegex(re.re, id)
      } else {
        names.add(r.kind, r.value, id)
      }
      if (r.types !== undefined) types.set(id, r.types)
      kind.push(r.kind)
      value.push(r.value)
      line.push(r.line)
      return true
  }

  /** Parses `text` and adds its rules as they are read; returns the count added and the parse. */
  const listHashes = new Map<string, string>()
  const addList = (text: string, format: SourceFormat, cat: number, listName: string, onIssue: (i: ParseIssue) => void, pack = false, guard?: RuleGuard): { added: number, parsed: ParsedList } => {
    lists.push(listName)
    listHashes.set(listName, createHash('sha256').update(text).digest('hex').slice(0, 16))
    // Its rules take the next ids, all of them before the next list's (RuleTable.listStart).
    listStart.push(kind.length)
    listCategory.push(cat)
    let added = 0
    const refused: ParseIssue[] = []
    const parsed = parseSource(text, format, r => {
      const issue = guard === undefined ? undefined : guardListRule(guard, r)
      if (issue !== undefined) refused.push(issue)
      else if (addRule(r, cat, listName, pack)) added++
    })
    if (refused.length > 0) { parsed.issues.push(...refused); parsed.issues.sort((a, b) => a.line - b.line) }
    for (const i of parsed.issues) onIssue(i)
    return { added, parsed }
  }

  const loadFile = (file: string, format: SourceFormat, cat: number, required: boolean, pack = false, guard?: RuleGuard): void => {
    const text = readText(file, problems)
    if (text === undefined) return
    const { added, parsed } = addList(text, format, cat, file, i => warnings.push(`${file}:${i.line}: ${i.message}`), pack, guard)
    if (added === 0 && required) problems.push(`${file}: no valid entry (${parsed.lines} lines, ${parsed.issues.length} skipped)`)
    reports.push({ category: categories[cat].name, list: file, rules: added, skipped: parsed.issues.length })
  }

  // 1. Bundled categories: blocklists/<name>/{meta.yaml, domains.txt, cidrs.txt}.
  let folders: string[] = []
  try {
    folders = readdirSync(cfg.dir).filter(n => statSync(join(cfg.dir, n)).isDirectory()).sort()
  } catch (err) {
    problems.push(`${cfg.dir}: cannot read the blocklists folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const unlearned = new Set<string>()
  for (const name of folders) {
    const dir = join(cfg.dir, name)
    const meta = readMeta(join(dir, 'meta.yaml'), problems)
    if (meta === undefined) continue
    const cat = addCategory({ name, title: meta.title, policyRef: meta.policyRef, enabledByDefault: meta.enabled, alsoAffects: meta.alsoAffects })
    if (!meta.learnAddresses) unlearned.add(name)
    loadFile(join(dir, 'domains.txt'), 'plain', cat, true, true)
    const cidrs = join(dir, 'cidrs.txt')
    if (exists(cidrs)) loadFile(cidrs, 'cidr', cat, false, true)
  }
  const bundled = new Set(catIndex.keys())

  // 2. Extra lists from the config (local files; downloads come with list updates).
  for (const [i, s] of cfg.sources.entries()) {
    const catName = s.category ?? s.name
    const cat = addCategory({ name: catName, title: catName, policyRef: catName, enabledByDefault: true })
    const file = s.path ?? inputs.sourceFiles?.get(s.name)
    if (file !== undefined) loadFile(file, sourceFormat(s), cat, true, false, inputs.guard)
    else warnings.push(`blocklists.sources.${i} (${s.name}): ${s.url ?? ''} has no downloaded copy yet`)
  }

  // 3. Inline rules: config-wide, then each group's own.
  const inline = (texts: readonly string[], allowRules: boolean, cat: number, where: string): void => {
    if (texts.length === 0) return
    const text = texts.map(t => (allowRules ? `@@${t.replace(/^@@/, '')}` : t)).join('\n')
    addList(text, 'plain', cat, `config ${where}`, i => problems.push(`config ${where}.${i.line - 1}: ${i.message}`))
  }
  const custom = addCategory({ name: 'custom', title: 'Custom rules', policyRef: 'local policy', enabledByDefault: true })
  inline(cfg.rules.block, false, custom, 'blocklists.rules.block')
  inline(cfg.rules.allow, true, custom, 'blocklists.rules.allow')
  inline(inputs.rules?.block ?? [], false, custom, 'custom rules (store).block')
  inline(inputs.rules?.allow ?? [], true, custom, 'custom rules (store).allow')
  cfg.groups.forEach((g, gi) => {
    const cat = addCategory({ name: `custom:${g.name}`, title: `Custom rules of group ${g.name}`, policyRef: 'local policy', enabledByDefault: false, onlyGroup: gi + 1 })
    inline(g.rules.block, false, cat, `blocklists.groups.${gi}.rules.block`)
    inline(g.rules.allow, true, cat, `blocklists.groups.${gi}.rules.allow`)
  })
  if (inputs.guard !== undefined) for (const i of guardConfigRules(cfg, inputs.guard)) problems.push(`config ${i.path}: ${i.message}`)

  // 4. Category overrides must name real categories (a typo would silently block nothing).
  const checkOverrides = (o: Readonly<Record<string, CategoryOverride>>, where: string): void => {
    for (const name of Object.keys(o)) {
      if (!catIndex.has(name)) problems.push(`config ${where}.${name}: no such category (known: ${[...bundled].join(', ')})`)
    }
  }
  checkOverrides(cfg.categories, 'blocklists.categories')
  cfg.groups.forEach((g, gi) => checkOverrides(g.categories, `blocklists.groups.${gi}.categories`))
  if (problems.length > 0) throw new PolicyError(problems, warnings)
  const runtime = inputs.categories ?? {}
  const groupNames = new Set(['*', 'default', ...cfg.groups.map(g => g.name)])
  for (const [g, o] of Object.entries(runtime)) {
    if (!groupNames.has(g)) warnings.push(`category overrides (store): no client group "${g}"; ignored`)
    for (const name of Object.keys(o)) if (!catIndex.has(name)) warnings.push(`category overrides (store): no category "${name}"; ignored`)
  }

  // 5. Resolve categories and groups.
  const infos: CategoryInfo[] = categories.map(c => {
    const o = { ...cfg.categories[c.name], ...runtime['*']?.[c.name] }
    return { name: c.name, title: c.title, policyRef: c.policyRef, enabled: o.enabled ?? c.enabledByDefault, action: o.action ?? cfg.action, alsoAffects: c.alsoAffects ?? [] }
  })
  listStart.push(kind.length)
  const starts = listStart.done()
  const listCats = listCategory.done()
  const rules = { kind, value, line: line.done(), listStart: starts, listCategory: listCats, types }
  const plan = (index: number, name: string, exempt: boolean, overrides: Readonly<Record<string, CategoryOverride>>): GroupPlan => {
    const enabled = new Uint8Array(infos.length)
    const actions: BlockAction[] = []
    infos.forEach((c, i) => {
      const o = overrides[c.name] ?? {}
      const own = categories[i].onlyGroup
      enabled[i] = own !== undefined ? (own === index ? 1 : 0) : (o.enabled ?? c.enabled) ? 1 : 0
      actions.push(o.action ?? c.action)
    })
    return { index, name, exempt, enabled, actions, accepts: (id: number) => enabled[listCats[listOfRule(starts, id)]] === 1 }
  }
  const withRuntime = (group: string, o: Readonly<Record<string, CategoryOverride>>): Record<string, CategoryOverride> => {
    const out: Record<string, CategoryOverride> = { ...o }
    for (const [name, r] of Object.entries(runtime[group] ?? {})) out[name] = { ...o[name], ...r }
    return out
  }
  const groups = [plan(0, 'default', false, withRuntime('default', {})), ...cfg.groups.map((g, i) => plan(i + 1, g.name, g.exempt, withRuntime(g.name, g.categories)))]
  let clients: IpIndex | undefined
  if (cfg.groups.length > 0) {
    clients = new IpIndex()
    cfg.groups.forEach((g, i) => {
      for (const c of g.clients) {
        const r = parseCidr(c)
        if (!('error' in r)) clients?.add(r.family, r.start, r.end, i + 1)
      }
    })
    clients.build()
  }
  blockAddresses.build()
  allowAddresses.build()
  blockNames.seal()
  allowNames.seal()
  exceptNames.seal()

  // 6. The packs' probe names (each must be blocked by its own pack, for A queries) and shared ranges.
  const ownRule = (cat: number) => (id: number): boolean => {
    if (listCats[listOfRule(starts, id)] !== cat) return false
    const f = types.get(id)
    return f === undefined || typeApplies(f, 1)
  }
  const extras = readPackExtras({
    dir: cfg.dir,
    categories: [...bundled].map(name => {
      const i = catIndex.get(name) ?? -1
      return { name, enabled: groups.some(g => !g.exempt && g.enabled[i] === 1), learnAddresses: !unlearned.has(name) }
    }),
    optedIn: inputs.sharedRanges ?? [],
    blocks: (name, qname) => {
      const cat = catIndex.get(name)
      if (cat === undefined || blockNames.match(qname, ownRule(cat)) < 0) return false
      return excepting[cat] !== 1 || exceptNames.match(qname, id => listCats[listOfRule(starts, id)] === cat) < 0
    }
  }, problems, warnings)
  if (problems.length > 0) throw new PolicyError(problems, warnings)

  const engine = new Engine({
    generation,
    categories: infos,
    lists,
    rules,
    blockNames,
    allowNames,
    exceptNames,
    excepting: Uint8Array.from(infos, (_, i) => excepting[i] ?? 0),
    blockAddresses,
    allowAddresses,
    groups,
    clients
  })
  return { engine, addresses: { block: blockCidrs, allow: allowCidrs }, lists: reports, listHashes, warnings, ms: Math.round(performance.now() - started), extras }
}

function exists (file: string): boolean {
  try { return statSync(file).isFile() } catch { return false }
}

/** A growable Uint32Array (RuleTable's columns): 4 MB per million rules. */
class Numbers {
  #data = new Uint32Array(1024)
  #length = 0

  push (n: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Uint32Array(this.#data.length * 2)
      bigger.set(this.#data)
      this.#data = bigger
    }
    this.#data[this.#length++] = n
  }

  done (): Uint32Array {
    return this.#data.slice(0, this.#length)
  }
}
