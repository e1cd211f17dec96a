// The shipped packs against their recipes and the collateral corpus: they regenerate from the
// recipes and extracts to exactly the checked-in files; with every category on, no name of the
// corpus or of any mustNotBlock is blocked, and no pack range overlaps the published addresses of
// the parent companies' mail, sign-in and collaboration services. Also the maintainer commands
// through the real CLI (needs dist/).

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { readExtract } from '../../src/packs/extract.js'
import { changedFiles, planPacks } from '../../src/packs/generate.js'
import { buildEngine, readMeta } from '../../src/policy/build.js'
import { parseCidr } from '../../src/policy/names.js'
import { parseList } from '../../src/policy/parsers.js'
import { testConfig } from '../helpers/daemon.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const CLI = join(ROOT, 'dist', 'cli.js')
const CATEGORIES = readdirSync(join(ROOT, 'blocklists'), { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name)

t.test('every pack regenerates from its recipe and the extracts to the checked-in files', async t => {
  const g = planPacks(ROOT)
  t.same(g.problems, [], 'no problem: no collateral, no stale exclusion')
  t.same(g.plans.map(p => p.category).sort(), [...CATEGORIES].sort(), 'every category has a recipe')
  t.same([...changedFiles(ROOT, g.plans).keys()], [], 'the checked-in domains.txt and cidrs.txt are what the recipes give')
  t.ok(g.protectedNames > 500, `${g.protectedNames} names checked`)
})

t.test('with every category on, no corpus or mustNotBlock name is blocked, and no pack range overlaps a protected address', async t => {
  const all = Object.fromEntries(CATEGORIES.map(c => [c, { enabled: true }]))
  const { engine, addresses } = buildEngine(testConfig({ blocklists: { categories: all } }).blocklists, 1)
  const group = engine.groupOf('192.0.2.1')
  const names = new Set<string>()
  for (const file of readdirSync(join(ROOT, 'sources', 'collateral')).filter(f => f.endsWith('.txt'))) {
    for (const r of parseList(readFileSync(join(ROOT, 'sources', 'collateral', file), 'utf8'), 'plain').rules) names.add(r.value)
  }
  for (const cat of CATEGORIES) {
    for (const item of readMeta(join(ROOT, 'blocklists', cat, 'meta.yaml'), [])?.mustNotBlock ?? []) {
      const r = parseList(item, 'plain').rules[0]
      if (r.types === undefined) names.add(r.value)
    }
  }
  const blocked = [...names].filter(n => engine.decideName(n, group, 1) !== undefined || engine.decideName(n, group, 28) !== undefined)
  t.same(blocked, [], `none of ${names.size} names is blocked for A or AAAA`)
  t.ok(names.size > 500)

  const known = parseYaml(readFileSync(join(ROOT, 'sources', 'collateral', 'addresses.yaml'), 'utf8')) as Array<{ extract: string, what: string }>
  const problems: string[] = []
  const protectedRanges = known.flatMap(k => (readExtract(join(ROOT, 'sources', `${k.extract}.txt`), k.extract, problems)?.entries ?? [])
    .filter(e => e.rule.kind === 'cidr').map(e => ({ range: e.rule.value, what: k.what })))
  t.same(problems, [])
  t.ok(protectedRanges.length > 50, `${protectedRanges.length} published ranges of mail, sign-in and collaboration`)
  const packRanges = [...addresses.block].flatMap(([cat, r]) => [...r.v4, ...r.v6].map(range => ({ cat, range })))
  t.ok(packRanges.length >= 17, `${packRanges.length} pack ranges`)
  const overlaps: string[] = []
  for (const p of packRanges) {
    const a = parseCidr(p.range)
    for (const k of protectedRanges) {
      const b = parseCidr(k.range)
      if ('error' in a || 'error' in b || a.family !== b.family) continue
      if (a.start <= b.end && b.start <= a.end) overlaps.push(`${p.cat} ${p.range} overlaps ${k.range} (${k.what})`)
    }
  }
  t.same(overlaps, [])
})

t.test('the CLI: lists generate --check, lists coverage', async t => {
  const check = spawnSync(process.execPath, [CLI, 'lists', 'generate', '--check'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(check.status, 0, check.stderr)
  t.match(check.stderr, /13 packs match their recipes/)
  const cov = spawnSync(process.execPath, [CLI, 'lists', 'coverage', 'telegram', '--json'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(cov.status, 0, cov.stderr)
  const report = JSON.parse(cov.stdout) as { category: string, sources: Array<{ source: string, offered: number, taken: number, excluded: number }>, excluded: Array<{ entry: string, reason: string }>, added: Array<{ entry: string, evidence: string }>, lastReviewed: string }
  t.equal(report.category, 'telegram')
  t.match(report.sources, [{ source: 'v2fly/telegram' }])
  for (const s of report.sources) t.equal(s.taken + s.excluded, s.offered, `${s.source}: every offered entry is taken or excluded`)
  t.ok(report.excluded.every(x => x.reason.length > 10), 'every exclusion says why')
  t.ok(report.added.some(a => a.entry === 'dns-telegram.appspot.com'), 'the hand-added fallback host is listed with its evidence')
  t.match(report.lastReviewed, /^\d{4}-\d{2}-\d{2}$/)
  const table = spawnSync(process.execPath, [CLI, 'lists', 'coverage', 'skype', '--table'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(table.status, 0, table.stderr)
  t.match(table.stdout, /^skype \(Skype and Skype for Business\): \d+ names, \d+ ranges; last reviewed/)
  t.match(table.stdout, /exceptions \(stay answered\) \(\d+\):\n\s+config\.skype\.com: /)
  const unknown = spawnSync(process.execPath, [CLI, 'lists', 'coverage', 'telegarm'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /no category "telegarm" \(known: discord, doh-bypass/)
})

t.test('check and check-config say what else a category cuts off (meta.yaml alsoAffects); query shows the $dnstype restriction', async t => {
  const env: NodeJS.ProcessEnv = { ...process.env, EGRESSD_ETC_DIR: join(ROOT, 'test', 'fixtures', 'no-etc') }
  delete env.EGRESSD_CONFIG
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env })
  const a = run(['query', 'gmail.com', '--type', 'A', '--json'])
  t.equal(a.status, 3, 'gmail.com A is blocked: ' + a.stderr)
  const blocked = JSON.parse(a.stdout) as { verdict: string, rule: string, alsoAffects?: string[] }
  t.equal(blocked.rule, 'gmail.com $dnstype=~MX|~TXT', 'the rule shows its query types')
  t.match(blocked.alsoAffects, [/mail delivery to and from Gmail addresses is not affected/])
  const mx = run(['query', 'gmail.com', '--type', 'MX', '--json'])
  t.equal(mx.status, 0, 'gmail.com MX is allowed')
  t.equal((JSON.parse(mx.stdout) as { verdict: string }).verdict, 'allow')
  const bad = run(['query', 'gmail.com', '--type', 'BOGUS'])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--type must be a DNS record type/)
  const cc = run(['check-config'])
  t.equal(cc.status, 0, cc.stderr)
  t.match(cc.stdout, /note: teams is on: it also affects Azure Communication Services calls/)
})
