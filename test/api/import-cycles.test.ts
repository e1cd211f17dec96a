// No import cycle under src/api, and the routes stand alone: follows every relative import (type-only
// ones too) between the files under src/api, as `madge --circular` would, and fails naming the
// cycle; a route module imports neither app.ts nor another route (app.ts registers them all, the
// context they share is in context.ts).

import t from 'tap'
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const API = join(ROOT, 'src/api')

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** The files under `within` that `file` imports or re-exports by a relative path (`import type` included). */
function importsOf (file: string, within: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.[^'"]+)['"]/gm)) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'))
    if (target.startsWith(within + '/')) out.push(target)
  }
  return out
}

/** Every cycle found by a depth-first walk (each reported once, from where the walk met it). */
function cycles (roots: readonly string[], within: string): string[][] {
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

t.test('no import cycle under src/api', async t => {
  const all = files(API)
  t.ok(all.length > 15, `the walk found the files (${all.length})`)
  const found = cycles(all, API).map(c => c.map(f => relative(ROOT, f)).join(' -> '))
  t.same(found, [], found.join('\n'))
})

t.test('route modules import neither app.ts nor each other', async t => {
  const routes = files(join(API, 'routes'))
  t.ok(routes.length >= 9, `${routes.length} route modules`)
  for (const r of routes) {
    const bad = importsOf(r, API).filter(f => f === join(API, 'app.ts') || f.startsWith(join(API, 'routes') + '/'))
    t.same(bad.map(f => relative(ROOT, f)), [], relative(ROOT, r))
  }
})

t.test('the walk does see a cycle (the routes as they were: each imported RouteContext from app.ts)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'egressd-api-cycles-'))
  mkdirSync(join(dir, 'routes'))
  writeFileSync(join(dir, 'app.ts'), "import { adminRoutes } from './routes/admin.js'\nexport interface RouteContext { x: number }\n")
  writeFileSync(join(dir, 'routes', 'admin.ts'), "import type { RouteContext } from '../app.js'\nimport { notReady } from './health.js'\n")
  writeFileSync(join(dir, 'routes', 'health.ts'), 'export const notReady = 1\n')
  const found = cycles([join(dir, 'app.ts')], dir).map(c => c.map(f => relative(dir, f)).join(' -> '))
  t.same(found, ['app.ts -> routes/admin.ts -> app.ts'])
})
