// Measures what each bundled category's recipe (blocklists/<category>/recipe.yaml) makes of its
// sources, straight from upstream copies of the source lists (not from the extracts under sources/,
// so it works before they exist): per category, the union of host names the recipe's sources offer,
// how many of them the pack would block (an entry covers a name if it is equal to it or a parent on
// label boundaries; `*.x` covers names under x; a pack exception lifts what lies under it), the
// excluded entries with their reasons, the hand-added entries, and for address ranges the same
// counts. It also lists every pack entry that would block a mustNotBlock name of any category or a
// name of the collateral corpus (sources/collateral/*.txt, our own list of everyday services).
//
// Usage (from the repository root; the upstream copies are never committed, see sources/README.md):
//   node --import=@tapjs/typescript/import scripts/recipe-coverage.ts \
//     [--upstream DIR] [--ms365 FILE-DIR] [--json] [CATEGORY...]
// --upstream: a folder with v2fly/data/<file>, adguard/services/<id>.yml, nextdns/services/<id>
//   (default /work/staging/issue23-sources); --ms365: a folder with ms365/worldwide.json and
//   telegram/cidr.txt (default: the --upstream folder; the repository keeps no copy of them).

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { parseList } from '../src/policy/parsers.js'
import type { Rule } from '../src/policy/rule.js'
import { parseCidr } from '../src/policy/names.js'
import { readAdguardService } from '../src/packs/sources/adguard.js'
import { readMs365 } from '../src/packs/sources/ms365.js'
import { readNextdnsService } from '../src/packs/sources/nextdns.js'
import { readTelegramCidr } from '../src/packs/sources/telegram.js'
import type { SourceEntry, SourceList } from '../src/packs/sources/types.js'
import { readV2fly } from '../src/packs/sources/v2fly.js'

const args = process.argv.slice(2)
const opt = (k: string, d: string): string => { const i = args.indexOf(k); if (i < 0) return d; const v = args[i + 1]; args.splice(i, 2); return v }
const upstream = opt('--upstream', '/work/staging/issue23-sources')
const root = process.cwd()
const localSources = opt('--ms365', upstream)
const asJson = args.includes('--json')
const only = args.filter(a => a !== '--json')

/** The extract name (docs/packs.md) -> the entries its upstream list offers. */
function readSource (name: string): SourceList {
  const [kind, id] = name.split('/')
  if (kind === 'v2fly') return readV2fly(upstream, id)
  if (kind === 'adguard') return readAdguardService(upstream, id)
  if (kind === 'nextdns') return readNextdnsService(upstream, id)
  if (kind === 'telegram' && id === 'cidr') return readTelegramCidr(localSources)
  const m = /^set-(\d+)$/.exec(id ?? '')
  if (kind === 'ms365' && m !== null) return readMs365(localSources, { ids: [Number(m[1])] })
  throw new Error(`unknown source ${name}`)
}

/** An entry in plain-list syntax, as the extracts write it. */
const textOf = (e: SourceEntry): string => e.kind === 'full' ? `=${e.value}` : e.kind === 'wildcard' ? `*.${e.value}` : e.value

function ruleOf (text: string): Rule {
  const p = parseList(text, 'plain')
  const r = p.rules[0]
  if (p.issues.length > 0 || r === undefined) throw new Error(`cannot read ${JSON.stringify(text)}: ${p.issues[0]?.message ?? '?'}`)
  return r
}
/** Plain-list text of a rule without its modifiers (how exclusions and adds are matched). */
const keyOf = (r: Rule): string => r.kind === 'exact' ? `=${r.value}` : r.kind === 'wildcard' ? `*.${r.value}` : r.value

function coversName (r: Rule, n: string): boolean {
  if (r.kind === 'exact') return n === r.value
  const under = n.length > r.value.length && n.endsWith(r.value) && n.charCodeAt(n.length - r.value.length - 1) === 0x2e
  return r.kind === 'suffix' ? n === r.value || under : r.kind === 'wildcard' ? under : false
}

function inCidr (inner: string, outer: string): boolean {
  const a = parseCidr(inner)
  const b = parseCidr(outer)
  if ('error' in a || 'error' in b || a.family !== b.family) return false
  return a.start >= b.start && a.end <= b.end
}

interface Hand { entry: string, evidence?: string, reason?: string }
interface RecipeFile { sources?: string[], add?: Hand[], exceptions?: Hand[], exclude?: Hand[] }

const packsDir = join(root, 'blocklists')
const categories = readdirSync(packsDir, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name).sort()
const metas = new Map(categories.map(c => [c, parseYaml(readFileSync(join(packsDir, c, 'meta.yaml'), 'utf8')) as { mustNotBlock?: string[] }]))
const corpusDir = join(root, 'sources', 'collateral')
const corpus = readdirSync(corpusDir).filter(f => f.endsWith('.txt')).sort()
  .flatMap(f => readFileSync(join(corpusDir, f), 'utf8').split('\n').map(l => l.replace(/#.*/, '').trim()).filter(Boolean))
const protectedNames: Array<{ rule: Rule, from: string }> = []
for (const [c, m] of metas) for (const item of m.mustNotBlock ?? []) protectedNames.push({ rule: ruleOf(item), from: `${c}/meta.yaml` })

const report: unknown[] = []
for (const category of categories) {
  if (only.length > 0 && !only.includes(category)) continue
  let recipe: RecipeFile
  try { recipe = parseYaml(readFileSync(join(packsDir, category, 'recipe.yaml'), 'utf8')) as RecipeFile } catch { console.log(`${category}: no recipe`); continue }
  const offered = new Map<string, { rule: Rule, sources: string[] }>()
  const problems: string[] = []
  for (const s of recipe.sources ?? []) {
    const list = readSource(s)
    for (const i of list.issues) problems.push(`${s}: ${i.file}:${i.line}: ${i.message}`)
    for (const e of list.entries) {
      const t = textOf(e)
      const known = offered.get(t)
      if (known === undefined) offered.set(t, { rule: ruleOf(t), sources: [s] })
      else if (!known.sources.includes(s)) known.sources.push(s)
    }
  }
  const excluded = new Map<string, string>()
  for (const x of recipe.exclude ?? []) {
    const k = keyOf(ruleOf(x.entry))
    if (!offered.has(k)) problems.push(`exclude ${x.entry}: no source offers it (stale)`)
    excluded.set(k, x.reason ?? '')
  }
  const entries: Rule[] = [...offered].filter(([k]) => !excluded.has(k)).map(([, v]) => v.rule)
  for (const a of recipe.add ?? []) {
    const r = ruleOf(a.entry)
    if (offered.has(keyOf(r))) problems.push(`add ${a.entry}: already offered by ${offered.get(keyOf(r))?.sources.join(', ')}`)
    if (a.evidence === undefined || a.evidence.trim() === '') problems.push(`add ${a.entry}: no evidence`)
    entries.push(r)
  }
  const exceptions = (recipe.exceptions ?? []).map(x => ruleOf(x.entry))
  const nameEntries = entries.filter(r => r.kind !== 'cidr')
  const blocks = (n: string): Rule | undefined => exceptions.some(x => coversName(x, n)) ? undefined : nameEntries.find(r => coversName(r, n))

  // Host names the sources offer, by name: a wildcard-only offer counts as covered if a name under it is.
  const names = new Map<string, { wildOnly: boolean, sources: Set<string> }>()
  const ranges = new Map<string, Set<string>>()
  for (const [, v] of offered) {
    if (v.rule.kind === 'cidr') { ranges.set(v.rule.value, new Set(v.sources)); continue }
    const n = names.get(v.rule.value) ?? { wildOnly: true, sources: new Set<string>() }
    if (v.rule.kind !== 'wildcard') n.wildOnly = false
    v.sources.forEach(s => n.sources.add(s))
    names.set(v.rule.value, n)
  }
  const notBlocked: string[] = []
  let blocked = 0
  let partial = 0
  for (const [n, v] of names) {
    const probe = v.wildOnly ? `probe.${n}` : n
    const r = blocks(probe)
    if (r === undefined) { notBlocked.push(n); continue }
    blocked++
    if (r.types !== undefined) partial++
  }
  const rangeEntries = entries.filter(r => r.kind === 'cidr')
  const rangesBlocked = [...ranges.keys()].filter(c => rangeEntries.some(r => inCidr(c, r.value)))
  const collateral: string[] = []
  for (const p of protectedNames) {
    if (exceptions.some(x => coversName(x, p.rule.value))) continue
    for (const r of nameEntries) {
      if (!coversName(r, p.rule.value)) continue
      // Both limited to query types: the entry spares what the protected item needs if its types are excluded.
      if (p.rule.types !== undefined && r.types !== undefined && r.types.except && !p.rule.types.except &&
        p.rule.types.types.every(t => r.types?.types.includes(t))) continue
      collateral.push(`${r.text} blocks ${p.rule.text} (${p.from})`)
    }
  }
  const corpusHits = corpus.filter(n => blocks(n) !== undefined)
  const out = {
    category,
    sources: recipe.sources ?? [],
    namesOffered: names.size,
    namesBlocked: blocked,
    namesBlockedForSomeTypesOnly: partial,
    coverage: names.size === 0 ? null : Math.round(1000 * blocked / names.size) / 10,
    notBlocked: notBlocked.map(n => ({ name: n, reason: excluded.get(n) ?? excluded.get(`=${n}`) ?? excluded.get(`*.${n}`) ?? '(not excluded: covered by nothing?)' })),
    rangesOffered: ranges.size,
    rangesBlocked: rangesBlocked.length,
    rangesNotBlocked: [...ranges.keys()].filter(c => !rangesBlocked.includes(c)).map(c => ({ range: c, reason: excluded.get(c) ?? '(not excluded)' })),
    excluded: excluded.size,
    added: (recipe.add ?? []).length,
    addedNames: (recipe.add ?? []).filter(a => ruleOf(a.entry).kind !== 'cidr').length,
    addedRanges: (recipe.add ?? []).filter(a => ruleOf(a.entry).kind === 'cidr').length,
    exceptions: exceptions.map(x => x.text),
    packNameEntries: nameEntries.length,
    packRangeEntries: rangeEntries.length,
    collateral,
    corpusBlocked: corpusHits,
    problems
  }
  report.push(out)
  if (asJson) continue
  console.log(`== ${category}: sources ${out.sources.join(', ') || '(none)'}`)
  console.log(`   names offered ${out.namesOffered}, blocked ${out.namesBlocked}${partial > 0 ? ` (${partial} for some query types only)` : ''}${out.coverage === null ? '' : ` = ${out.coverage} %`}; ranges offered ${out.rangesOffered}, blocked ${out.rangesBlocked}`)
  console.log(`   excluded ${out.excluded}, added ${out.added} (${out.addedNames} names, ${out.addedRanges} ranges), exceptions ${exceptions.length}; pack: ${out.packNameEntries} name entries (before merging covered ones), ${out.packRangeEntries} ranges`)
  for (const n of out.notBlocked) console.log(`   not blocked: ${n.name}: ${n.reason}`)
  for (const n of out.rangesNotBlocked) console.log(`   range not blocked: ${n.range}: ${n.reason}`)
  for (const c of collateral) console.log(`   COLLATERAL: ${c}`)
  if (corpusHits.length > 0) console.log(`   collateral corpus names blocked: ${corpusHits.join(' ')}`)
  for (const p of problems) console.log(`   PROBLEM: ${p}`)
}
if (asJson) console.log(JSON.stringify(report, null, 2))
