// No import cycle anywhere under src/: follows every relative import and re-export (type-only ones
// too), as `madge --circular` would, and fails naming the cycle. In particular the DNS listener and
// pipeline meet only in dns/contract.ts, and the API's route modules import neither app.ts nor
// each other (app.ts registers them all; what they share is in api/context.ts).

import t from 'tap'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { importCycles, importsOf, sourceFiles } from './helpers/import-graph.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SRC = join(ROOT, 'src')
const API = join(SRC, 'api')

t.test('no import cycle under src/', async t => {
  const all = sourceFiles(SRC)
  t.ok(all.length > 100, `the walk found the files (${all.length})`)
  const found = importCycles(all, SRC).map(c => c.map(f => relative(SRC, f)).join(' -> '))
  t.same(found, [], found.join('\n'))
})

t.test('the DNS listener and pipeline do not import each other', async t => {
  const listener = join(SRC, 'dns/listener.ts')
  const pipeline = join(SRC, 'dns/pipeline.ts')
  t.notOk(importsOf(listener, SRC).includes(pipeline), 'listener.ts does not import pipeline.ts')
  t.notOk(importsOf(pipeline, SRC).includes(listener), 'pipeline.ts does not import listener.ts')
})

t.test('route modules import neither app.ts nor each other', async t => {
  const routes = sourceFiles(join(API, 'routes'))
  t.ok(routes.length >= 9, `${routes.length} route modules`)
  for (const r of routes) {
    const bad = importsOf(r, SRC).filter(f => f === join(API, 'app.ts') || f.startsWith(join(API, 'routes') + '/'))
    t.same(bad.map(f => relative(ROOT, f)), [], relative(ROOT, r))
  }
})

t.test('the walk does see cycles (listener and pipeline, app and routes, as they were)', async t => {
  // A cycle checker that never fires proves nothing: check it on imports that do cycle.
  const dir = mkdtempSync(join(tmpdir(), 'egressd-cycles-'))
  mkdirSync(join(dir, 'routes'))
  writeFileSync(join(dir, 'listener.ts'), "import type { Protocol } from './pipeline.js'\n")
  writeFileSync(join(dir, 'pipeline.ts'), "import { LATER, type Serve } from './listener.js'\nexport type Protocol = 'udp'\n")
  writeFileSync(join(dir, 'app.ts'), "import { adminRoutes } from './routes/admin.js'\nexport interface RouteContext { x: number }\n")
  writeFileSync(join(dir, 'routes', 'admin.ts'), "import type { RouteContext } from '../app.js'\nimport { notReady } from './health.js'\n")
  writeFileSync(join(dir, 'routes', 'health.ts'), 'export const notReady = 1\n')
  const found = importCycles([join(dir, 'listener.ts'), join(dir, 'app.ts')], dir).map(c => c.map(f => relative(dir, f)).join(' -> '))
  t.same(found, ['listener.ts -> pipeline.ts -> listener.ts', 'app.ts -> routes/admin.ts -> app.ts'])
})
