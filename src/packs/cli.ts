// `egressd lists generate|coverage|extract`: the pack maintainers' commands (docs/packs.md).
// generate rewrites the bundled packs from their recipes and the source extracts (or, with
// --check, says which differ); coverage prints per category what the pack takes from each source,
// what it leaves out and why, and what was added by hand; extract turns an upstream copy of a
// source list into its extract under sources/.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { parseCliArgs } from '../cli-args.js'
import { formatTable, json, OUTPUT_OPTIONS, outputMode } from '../cli/output.js'
import type { CliIo } from '../cli/io.js'
import { EgressdError } from '../errors.js'
import { extractText, type ExtractOrigin } from './extract.js'
import { changedFiles, planPacks, writePacks, type PackPlan } from './generate.js'
import { readAdguardService } from './sources/adguard.js'
import { readMs365 } from './sources/ms365.js'
import { readNextdnsService } from './sources/nextdns.js'
import { readTelegramCidr } from './sources/telegram.js'
import type { SourceList } from './sources/types.js'
import { readV2fly } from './sources/v2fly.js'

export const PACKS_USAGE = `  egressd lists generate [--check] [--root DIR]
      Regenerates every bundled pack (blocklists/<category>/domains.txt, cidrs.txt) from its
      recipe.yaml and the source extracts under sources/; fails, writing nothing, when an entry
      would block a mustNotBlock name or a name of the collateral corpus. --check writes nothing
      and exits 1 if a pack differs from what its recipe gives. DIR: the tree holding blocklists/
      and sources/ (default: the installation).
  egressd lists coverage [CATEGORY] [--root DIR] [--json | --table]
      Per category: entries by source, what each source offers that the recipe excludes (and why)
      or another entry covers, entries and exceptions added by hand, the last review date.
  egressd lists extract --from UPSTREAM NAME... [--root DIR]
      Writes sources/NAME.txt for each NAME (v2fly/<list>, adguard/<id>, nextdns/<id>,
      ms365/set-<id>, telegram/ranges) from UPSTREAM, a folder laid out like sources/ holding the
      upstream files (v2fly/data/, adguard/services/, nextdns/services/, ms365/worldwide.json,
      telegram/cidr.txt); origins from sources/origins.yaml.`

const usage = (message: string): never => { throw new EgressdError('EGRESSD_ERR_USAGE', `${message}\nusage:\n${PACKS_USAGE}`) }

export function packsCommand (sub: 'generate' | 'coverage' | 'extract', argv: string[], io: Pick<CliIo, 'out' | 'err' | 'isTTY'>, installation: string): number {
  if (sub === 'generate') return generate(argv, io, installation)
  if (sub === 'coverage') return coverage(argv, io, installation)
  return extract(argv, io, installation)
}

function generate (argv: string[], io: Pick<CliIo, 'out' | 'err'>, installation: string): number {
  const { values } = parseCliArgs({ args: argv, options: { check: { type: 'boolean' }, root: { type: 'string' } }, strict: true })
  const root = values.root ?? installation
  const g = planPacks(root)
  if (g.problems.length > 0) {
    io.err(`egressd: the packs cannot be generated (${g.problems.length} problems):\n${g.problems.map(p => `  ${p}`).join('\n')}\n`)
    return 1
  }
  if (values.check === true) {
    const changed = [...changedFiles(root, g.plans).keys()]
    for (const f of changed) io.out(`differs: ${relative(root, f)}\n`)
    io.err(changed.length === 0 ? `${g.plans.length} packs match their recipes\n` : `${changed.length} files differ from their recipes: run egressd lists generate\n`)
    return changed.length === 0 ? 0 : 1
  }
  const written = writePacks(root, g.plans)
  for (const f of written) io.out(`wrote ${relative(root, f)}\n`)
  io.err(`${g.plans.length} packs, ${g.plans.reduce((n, p) => n + p.entries.length, 0)} entries, checked against ${g.protectedNames} names that must stay answered; ${written.length} files changed\n`)
  return 0
}

/** One category's coverage, as JSON prints it. */
export interface CoverageReport {
  readonly category: string
  readonly title: string
  readonly lastReviewed: string
  readonly entries: number
  readonly ranges: number
  /** Per extract: entries offered, taken (listed or covered by another entry), excluded, dropped by its parser. */
  readonly sources: ReadonlyArray<{ readonly source: string, readonly offered: number, readonly taken: number, readonly excluded: number, readonly droppedByParser: number, readonly origin: string }>
  readonly excluded: ReadonlyArray<{ readonly entry: string, readonly sources: readonly string[], readonly reason: string }>
  readonly covered: ReadonlyArray<{ readonly entry: string, readonly sources: readonly string[], readonly by: string }>
  readonly droppedByParser: ReadonlyArray<{ readonly source: string, readonly text: string, readonly reason: string }>
  readonly added: ReadonlyArray<{ readonly entry: string, readonly evidence: string }>
  readonly exceptions: ReadonlyArray<{ readonly entry: string, readonly evidence: string }>
}

export function coverageReport (p: PackPlan): CoverageReport {
  const excluded = p.leftOut.filter(l => l.why.startsWith('excluded: ')).map(l => ({ entry: l.text, sources: l.sources, reason: l.why.slice('excluded: '.length) }))
  const covered = p.leftOut.filter(l => l.why.startsWith('covered by ')).map(l => ({ entry: l.text, sources: l.sources, by: l.why.slice('covered by '.length) }))
  const count = (source: string, list: ReadonlyArray<{ sources: readonly string[] }>): number => list.filter(x => x.sources.includes(source)).length
  return {
    category: p.category,
    title: p.meta.title,
    lastReviewed: p.meta.lastReviewed,
    entries: p.entries.filter(e => e.rule.kind !== 'cidr').length,
    ranges: p.entries.filter(e => e.rule.kind === 'cidr').length,
    sources: [...p.offered].map(([source, o]) => {
      const ex = count(source, excluded)
      return { source, offered: o.entries, taken: o.entries - ex, excluded: ex, droppedByParser: o.dropped.length, origin: o.header[0] ?? '' }
    }),
    excluded,
    covered,
    droppedByParser: [...p.offered].flatMap(([source, o]) => o.dropped.map(d => ({ source, text: d.text, reason: d.reason }))),
    added: p.entries.filter(e => e.sources.length === 0).map(e => ({ entry: e.text, evidence: e.evidence ?? '' })),
    exceptions: p.exceptions.map(x => ({ entry: x.text, evidence: x.evidence ?? '' }))
  }
}

function coverage (argv: string[], io: Pick<CliIo, 'out' | 'err' | 'isTTY'>, installation: string): number {
  const { values, positionals } = parseCliArgs({ args: argv, options: { root: { type: 'string' }, ...OUTPUT_OPTIONS }, allowPositionals: true, strict: true })
  if (positionals.length > 1) usage('coverage takes at most one CATEGORY')
  const mode = outputMode(values, io.isTTY)
  const g = planPacks(values.root ?? installation)
  const plans = positionals.length === 0 ? g.plans : g.plans.filter(p => p.category === positionals[0])
  if (plans.length === 0) usage(`no category "${positionals[0]}" (known: ${g.plans.map(p => p.category).join(', ')})`)
  for (const p of g.problems) io.err(`warning: ${p}\n`)
  const reports = plans.map(coverageReport)
  if (mode === 'json') { io.out(json(positionals.length === 0 ? reports : reports[0])); return 0 }
  for (const r of reports) {
    io.out(`${r.category} (${r.title}): ${r.entries} names, ${r.ranges} ranges; last reviewed ${r.lastReviewed || 'never'}\n`)
    io.out(formatTable(r.sources, [
      { title: 'SOURCE', value: s => s.source }, { title: 'OFFERED', value: s => s.offered }, { title: 'TAKEN', value: s => s.taken },
      { title: 'EXCLUDED', value: s => s.excluded }, { title: 'PARSER-DROPPED', value: s => s.droppedByParser }
    ], '  (no sources: hand entries only)'))
    const section = <T>(title: string, rows: readonly T[], line: (x: T) => string): void => {
      if (rows.length === 0) return
      io.out(`  ${title} (${rows.length}):\n${rows.map(x => `    ${line(x)}`).join('\n')}\n`)
    }
    section('excluded', r.excluded, x => `${x.entry} [${x.sources.join(' ')}]: ${x.reason}`)
    section('dropped by the source parser', r.droppedByParser, x => `${x.text} [${x.source}]: ${x.reason}`)
    section('covered by another entry', r.covered, x => `${x.entry} [${x.sources.join(' ')}] by ${x.by}`)
    section('added by hand', r.added, x => `${x.entry}: ${x.evidence}`)
    section('exceptions (stay answered)', r.exceptions, x => `${x.entry}: ${x.evidence}`)
    io.out('\n')
  }
  return 0
}

/** The origins of the source kinds (sources/origins.yaml): repository or URL, version, licence. */
function readOrigins (root: string): Record<string, { origin: string, version: string, licence: string }> {
  const file = join(root, 'sources', 'origins.yaml')
  let raw: unknown
  try { raw = parseYaml(readFileSync(file, 'utf8')) } catch (err) { return usage(`cannot read ${file}: ${(err as Error).message.split('\n')[0]}`) }
  const out: Record<string, { origin: string, version: string, licence: string }> = {}
  for (const [k, v] of Object.entries((raw ?? {}) as Record<string, Record<string, unknown>>)) {
    const s = (f: string): string => typeof v?.[f] === 'string' ? v[f] : usage(`${file}: ${k}.${f}: expected a string`)
    out[k] = { origin: s('origin'), version: s('version'), licence: s('licence') }
  }
  return out
}

/** The entries of one extract name from the upstream folder. */
export function readUpstream (upstream: string, name: string): SourceList {
  const [kind, list] = name.split('/', 2)
  if (kind === 'v2fly') return readV2fly(upstream, list)
  if (kind === 'adguard') return readAdguardService(upstream, list)
  if (kind === 'nextdns') return readNextdnsService(upstream, list)
  if (kind === 'telegram' && list === 'ranges') return readTelegramCidr(upstream)
  const set = /^set-(\d+)$/.exec(list ?? '')
  if (kind === 'ms365' && set !== null) return readMs365(upstream, { ids: [Number(set[1])] })
  return usage(`not an extract name: ${name} (v2fly/<list>, adguard/<id>, nextdns/<id>, ms365/set-<id>, telegram/ranges)`)
}

function extract (argv: string[], io: Pick<CliIo, 'out' | 'err'>, installation: string): number {
  const { values, positionals } = parseCliArgs({ args: argv, options: { from: { type: 'string' }, root: { type: 'string' } }, allowPositionals: true, strict: true })
  if (values.from === undefined || positionals.length === 0) usage('extract needs --from UPSTREAM and at least one NAME')
  const root = values.root ?? installation
  const origins = readOrigins(root)
  let failed = 0
  for (const name of positionals) {
    const kind = name.split('/')[0]
    const o = origins[kind]
    if (o === undefined) usage(`sources/origins.yaml has no entry "${kind}"`)
    const origin: ExtractOrigin = { name, ...o }
    try {
      const text = extractText(origin, readUpstream(values.from as string, name))
      const file = join(root, 'sources', `${name}.txt`)
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, text)
      io.out(`wrote ${relative(root, file)}\n`)
    } catch (err) {
      failed++
      io.err(`egressd: ${(err as Error).message}\n`)
    }
  }
  return failed === 0 ? 0 : 1
}
