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

/**
 * Reads the corpus: every `root`/sources/collateral/*.txt (one name a line, `#` comments), and the
 * mustNotBlock of every category folder of `packs` (a blocklists dir: <name>/meta.yaml). An item
 * may carry a `$dnstype=` filter (`gmail.com $dnstype=MX|TXT`): its name is taken, since a custom
 * rule on that name would block those types too. Never throws: a file that cannot be read is a
 * problem and contributes nothing.
 */
export function loadCollateral (root: string, packs: string): Collateral {
  const problems: string[] = []
  const names: string[] = []
  const seen = new Set<string>()
  const add = (name: string): void => { if (!seen.has(name)) { seen.add(name); names.push(name) } }

  const files = new Map<string, number>()
  const dir = join(root, CORPUS_DIR)
  for (const file of corpusFiles(dir, problems)) {
    const path = join(dir, file)
    const text = readText(path, problems)
    if (text === undefined) continue
    const parsed = parseList(text, 'plain')
    for (const i of parsed.issues) problems.push(`${path}:${i.line}: ${i.message}`)
    let count = 0
    for (const r of parsed.rules) {
      if (r.kind !== 'suffix' || r.allow || r.types !== undefined) { problems.push(`${path}:${r.line}: ${JSON.stringify(r.text)}: expected a host name`); continue }
      count++
      add(r.value)
    }
    files.set(file, count)
  }

  const mustNotBlock = new Map<string, string[]>()
  for (const category of categoryFolders(packs, problems)) {
    const file = join(packs, category, 'meta.yaml')
    const keep: string[] = []
    for (const item of readMeta(file, problems)?.mustNotBlock ?? []) {
      const parsed = parseList(item, 'plain')
      const r = parsed.rules[0]
      if (parsed.issues.length > 0 || parsed.rules.length !== 1 || r.kind !== 'suffix' || r.allow) {
        problems.push(`${file}: mustNotBlock ${JSON.stringify(item)}: ${parsed.issues[0]?.message ?? 'expected a name, optionally with $dnstype='}`)
      } else keep.push(r.value)
    }
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

function categoryFolders (packs: string, problems: string[]): string[] {
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
