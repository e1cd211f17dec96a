// The collateral corpus: names a custom block rule must not catch by accident. It is our own list
// of everyday services (every sources/collateral/*.txt: the parent companies' other services, CDNs,
// Russian government and everyday sites; no third-party ranking copied), plus every category's
// mustNotBlock (look-alikes such as telegram.com, shared hosts such as googleapis.com). The rule
// guard (policy/guard.ts) refuses a block rule that would block any of these names. Nothing is
// taken out because a bundled category blocks it: the corpus never lists a banned service, and a
// pack that blocked a corpus name should show up, not hide it. A pure function over files: the
// folders are arguments, nothing is cached here.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BlocklistsConfig } from '../config/types.js'
import { readMeta } from '../policy/build.js'
import { createRuleGuard, type RuleGuard } from '../policy/guard.js'
import { parseList } from '../policy/parsers.js'
import type { TypeFilter } from '../policy/rule.js'

/** Where egressd is installed (holds sources/ and blocklists/): src/packs/ or dist/packs/, two up. */
export const INSTALLATION_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The corpus folder, relative to the installation root: every `*.txt` in it is read. */
export const CORPUS_DIR = join('sources', 'collateral')

export interface Collateral {
  /** Corpus names (files in name order, lines in order), then mustNotBlock names; each once. */
  readonly names: readonly string[]
  /** Names read from the corpus files (before duplicates were dropped), by file name. */
  readonly files: ReadonlyMap<string, number>
  /** mustNotBlock names by category (the name part, normalized; invalid ones are in `problems`). */
  readonly mustNotBlock: ReadonlyMap<string, readonly string[]>
  /** Files that could not be read and lines that are not names, as `FILE[:LINE]: message`. */
  readonly problems: readonly string[]
}

/** A name that must stay answered (for `types` only, when given), and where it is written. */
export interface ProtectedName {
  readonly name: string
  readonly types: TypeFilter | undefined
  /** `sources/collateral/FILE:LINE` or `<category>/meta.yaml mustNotBlock`. */
  readonly from: string
}

/**
 * The corpus names: every `root`/sources/collateral/*.txt (one host name a line, `#` comments), in
 * file-name order. Problems (a file that cannot be read, a line that is not a host name) are pushed
 * as `FILE[:LINE]: message`.
 */
export function readCorpus (root: string, problems: string[]): ProtectedName[] {
  const out: ProtectedName[] = []
  const dir = join(root, CORPUS_DIR)
  for (const file of corpusFiles(dir, problems)) {
    const path = join(dir, file)
    const text = readText(path, problems)
    if (text === undefined) continue
    const parsed = parseList(text, 'plain')
    for (const i of parsed.issues) problems.push(`${path}:${i.line}: ${i.message}`)
    for (const r of parsed.rules) {
      if (r.kind !== 'suffix' || r.allow || r.types !== undefined) problems.push(`${path}:${r.line}: ${JSON.stringify(r.text)}: expected a host name`)
      else out.push({ name: r.value, types: undefined, from: `${CORPUS_DIR}/${file}:${r.line}` })
    }
  }
  return out
}

/**
 * A category's mustNotBlock items (from its meta.yaml, `file`): names, each optionally with a
 * `$dnstype=` filter (`gmail.com $dnstype=MX|TXT`: must stay answered for those types).
 */
export function mustNotBlockOf (items: readonly string[], category: string, file: string, problems: string[]): ProtectedName[] {
  const out: ProtectedName[] = []
  for (const item of items) {
    const parsed = parseList(item, 'plain')
    const r = parsed.rules[0]
    if (parsed.issues.length > 0 || parsed.rules.length !== 1 || r.kind !== 'suffix' || r.allow) {
      problems.push(`${file}: mustNotBlock ${JSON.stringify(item)}: ${parsed.issues[0]?.message ?? 'expected a name, optionally with $dnstype='}`)
    } else out.push({ name: r.value, types: r.types, from: `${category}/meta.yaml mustNotBlock` })
  }
  return out
}

/**
 * Reads the corpus (readCorpus) and the mustNotBlock of every category folder of `packs` (a
 * blocklists dir). A mustNotBlock item's name is taken whatever its `$dnstype=`, since a custom rule
 * on that name would block those types too. Never throws: a file that cannot be read is a problem
 * and contributes nothing.
 */
export function loadCollateral (root: string, packs: string): Collateral {
  const problems: string[] = []
  const names: string[] = []
  const seen = new Set<string>()
  const add = (name: string): void => { if (!seen.has(name)) { seen.add(name); names.push(name) } }
  const files = new Map<string, number>()
  for (const p of readCorpus(root, problems)) {
    const file = p.from.slice(CORPUS_DIR.length + 1, p.from.lastIndexOf(':'))
    files.set(file, (files.get(file) ?? 0) + 1)
    add(p.name)
  }
  const mustNotBlock = new Map<string, string[]>()
  for (const category of categoryFolders(packs, problems)) {
    const file = join(packs, category, 'meta.yaml')
    const keep = mustNotBlockOf(readMeta(file, problems)?.mustNotBlock ?? [], category, file, problems).map(p => p.name)
    if (keep.length > 0) mustNotBlock.set(category, keep)
  }
  for (const list of mustNotBlock.values()) for (const name of list) add(name)
  return { names, files, mustNotBlock, problems }
}

/**
 * The rule guard for a config: the corpus of `root`'s sources/collateral/ and cfg.dir's categories, the limits
 * and force list of cfg.guard. Reads the files each call (~0.1 s): callers keep it per config.
 */
export function loadRuleGuard (cfg: Pick<BlocklistsConfig, 'dir' | 'guard'>, root: string = INSTALLATION_ROOT): { readonly guard: RuleGuard, readonly collateral: Collateral } {
  const collateral = loadCollateral(root, cfg.dir)
  return { guard: createRuleGuard(collateral.names, cfg.guard), collateral }
}

/** The category folders of a blocklists dir, sorted; an unreadable dir is a problem. */
export function categoryFolders (packs: string, problems: string[]): string[] {
  try {
    return readdirSync(packs).filter(n => statSync(join(packs, n)).isDirectory()).sort()
  } catch (err) {
    problems.push(`${packs}: cannot read the blocklists folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return []
  }
}

function readText (file: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return undefined
  }
}

function corpusFiles (dir: string, problems: string[]): string[] {
  try {
    return readdirSync(dir).filter(n => n.endsWith('.txt')).sort()
  } catch (err) {
    problems.push(`${dir}: cannot read the collateral corpus folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return []
  }
}
