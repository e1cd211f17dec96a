// The relative imports between source files, as `madge --circular` follows them: every
// `import … from './x.js'` and `export … from './x.js'` (type-only ones too), for the import-cycle
// tests.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

/** Every .ts file under `dir`. */
export function sourceFiles (dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** The files under `within` that `file` imports or re-exports by a relative path. */
export function importsOf (file: string, within: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.[^'"]+)['"]/gm)) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'))
    if (target.startsWith(within + '/')) out.push(target)
  }
  return out
}

/** Every cycle a depth-first walk from `roots` meets (each once, from where the walk met it). */
export function importCycles (roots: readonly string[], within: string): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (f: string): void => {
    state.set(f, 'open')
    path.push(f)
    for (const g of importsOf(f, within)) {
      const s = state.get(g)
      if (s === 'open') found.push([...path.slice(path.indexOf(g)), g])
      else if (s === undefined) visit(g)
    }
    path.pop()
    state.set(f, 'done')
  }
  for (const r of roots) if (!state.has(r)) visit(r)
  return found
}
