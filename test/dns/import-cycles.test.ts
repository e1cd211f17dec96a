// No import cycle under src/dns: follows every relative import (type-only ones too) from each
// file, as `madge --circular` would, and fails naming the cycle. The listener and the pipeline in
// particular meet only in contract.ts.

import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const DNS = join(ROOT, 'src/dns')

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** The files `file` imports or re-exports by a relative path (`import type` included). */
function importsOf (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.[^'"]+)['"]/gm)) {
    out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')))
  }
  return out
}

/** Every cycle found by a depth-first walk (each reported once, from where the walk met it). */
function cycles (roots: readonly string[]): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (f: string): void => {
    state.set(f, 'open')
    path.push(f)
    for (const g of importsOf(f)) {
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

t.test('no import cycle under src/dns', async t => {
  const all = files(DNS)
  t.ok(all.length > 10, 'the walk found the files')
  const found = cycles(all).map(c => c.map(f => relative(ROOT, f)).join(' -> '))
  t.same(found, [], found.join('\n'))
})

t.test('the walk does see a cycle (listener and pipeline as they were: each imported the other)', async t => {
  // A cycle checker that never fires proves nothing: check it on imports that do cycle.
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'egressd-cycles-'))
  writeFileSync(join(dir, 'listener.ts'), "import type { Protocol } from './pipeline.js'\n")
  writeFileSync(join(dir, 'pipeline.ts'), "import { LATER, type Serve } from './listener.js'\nexport type Protocol = 'udp'\n")
  const found = cycles([join(dir, 'listener.ts')]).map(c => c.map(f => relative(dir, f)).join(' -> '))
  t.same(found, ['listener.ts -> pipeline.ts -> listener.ts'])
})
