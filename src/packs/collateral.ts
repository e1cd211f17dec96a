// The collateral corpus: names a custom block rule must not catch by accident. It is a public
// top-sites ranking (sources/tranco/top-10k.txt) minus the banned services' own domains (every name
// a bundled category's domains.txt blocks: blocking telegram.org is the point, not collateral), plus
// every category's mustNotBlock (look-alikes such as telegram.com). The rule guard (policy/guard.ts)
// refuses a block rule that would block any of these names. A pure function over files: the
// folders are arguments, nothing is cached here.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BlocklistsConfig } from '../config/types.js'
import { readMeta } from '../policy/build.js'
import { createRuleGuard, type RuleGuard } from '../policy/guard.js'
import { toName } from '../policy/names.js'
import { parseList } from '../policy/parsers.js'

/** Where egressd is installed (holds sources/ and blocklists/): src/packs/ or dist/packs/, two up. */
export const INSTALLATION_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The ranking, relative to the installation root. */
export const RANKING_FILE = join('sources', 'tranco', 'top-10k.txt')

/** A ranking name left out because a bundled category blocks it. */
export interface CollateralRemoval {
  readonly name: string
  /** The category folder whose domains.txt blocks it. */
  readonly category: string
  /** The entry that covers it, as the list writes it (`telegram.org`, `*.example.com`, `=a.b`). */
  readonly entry: string
}

export interface Collateral {
  /** Ranking names (rank order) minus the removed ones, then mustNotBlock names; each once. */
  readonly names: readonly string[]
  /** Ranking names a bundled category blocks, in rank order: `telegram.org (telegram)`. */
  readonly removed: readonly CollateralRemoval[]
  /** Names read from the ranking file. */
  readonly ranked: number
  /** mustNotBlock names by category (as normalized; invalid ones are in `problems`). */
  readonly mustNotBlock: ReadonlyMap<string, readonly string[]>
  /** Files that could not be read and lines that are not names, as `FILE[:LINE]: message`. */
  readonly problems: readonly string[]
}

/** `telegram.org (telegram)` for reviewers and logs. */
export function formatRemoval (r: CollateralRemoval): string {
  return r.entry === r.name ? `${r.name} (${r.category})` : `${r.name} (${r.category}: ${r.entry})`
}

interface Cover { readonly category: string, readonly entry: string }

/**
 * Reads the corpus: `root`/sources/tranco/top-10k.txt, and every category folder of `packs` (a
 * blocklists dir: <name>/domains.txt and <name>/meta.yaml). Never throws: a file that cannot be read
 * is a problem and contributes nothing.
 */
export function loadCollateral (root: string, packs: string): Collateral {
  const problems: string[] = []
  // What the bundled categories block, by kind; the first category to list an entry is named.
  const suffix = new Map<string, Cover>()
  const exact = new Map<string, Cover>()
  const wildcard = new Map<string, Cover>()
  const mustNotBlock = new Map<string, string[]>()
  for (const category of categoryFolders(packs, problems)) {
    const dir = join(packs, category)
    const text = readText(join(dir, 'domains.txt'), problems)
    if (text !== undefined) {
      for (const r of parseList(text, 'plain').rules) {
        if (r.allow) continue
        const cover = { category, entry: r.text }
        const into = r.kind === 'suffix' ? suffix : r.kind === 'exact' ? exact : r.kind === 'wildcard' ? wildcard : undefined
        if (into !== undefined && !into.has(r.value)) into.set(r.value, cover)
      }
    }
    const meta = readMeta(join(dir, 'meta.yaml'), problems)
    const keep: string[] = []
    for (const n of meta?.mustNotBlock ?? []) {
      const name = toName(n.trim())
      if (typeof name === 'string') keep.push(name)
      else problems.push(`${join(dir, 'meta.yaml')}: mustNotBlock ${JSON.stringify(n)}: ${name.error}`)
    }
    if (keep.length > 0) mustNotBlock.set(category, keep)
  }

  const covered = (name: string): Cover | undefined => {
    const e = exact.get(name)
    if (e !== undefined) return e
    let at = 0
    for (;;) {
      const s = suffix.get(at === 0 ? name : name.slice(at))
      if (s !== undefined) return s
      if (at > 0) { const w = wildcard.get(name.slice(at)); if (w !== undefined) return w }
      const dot = name.indexOf('.', at)
      if (dot < 0) return undefined
      at = dot + 1
    }
  }

  const names: string[] = []
  const removed: CollateralRemoval[] = []
  const seen = new Set<string>()
  let ranked = 0
  const file = join(root, RANKING_FILE)
  const ranking = readText(file, problems)
  if (ranking !== undefined) {
    let line = 0
    for (const raw of ranking.split('\n')) {
      line++
      const s = raw.trim()
      if (s === '' || s.startsWith('#')) continue
      const name = toName(s)
      if (typeof name !== 'string') { problems.push(`${file}:${line}: ${name.error}`); continue }
      ranked++
      if (seen.has(name)) continue
      seen.add(name)
      const c = covered(name)
      if (c === undefined) names.push(name)
      else removed.push({ name, category: c.category, entry: c.entry })
    }
  }
  // mustNotBlock names join even when a category's entry covers them: the category says they must
  // keep working (the bundled-lists test holds the lists to that).
  const inNames = new Set(names)
  for (const list of mustNotBlock.values()) {
    for (const name of list) {
      if (!inNames.has(name)) { inNames.add(name); names.push(name) }
    }
  }
  return { names, removed, ranked, mustNotBlock, problems }
}

/**
 * The rule guard for a config: the corpus of `root`'s ranking and cfg.dir's categories, the limits
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
