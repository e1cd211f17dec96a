#!/usr/bin/env node
// Policy engine at scale: a 1,000,000-domain plain list (generated, fixed seed) is compiled by the
// real buildEngine, then non-matching 5-label names are looked up. Prints load time, resident
// memory added, and the median lookup time (median of per-batch averages, 1,000 lookups a batch).
//   node --expose-gc bench/policy-scale.mjs [COUNT=1000000]       (after npm run build)
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildEngine } from '../dist/policy/build.js'

const COUNT = Number(process.argv[2] ?? 1_000_000)
const gc = globalThis.gc ?? (() => {})
let seed = 42
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
const word = (n) => { let s = ''; for (let i = 0; i < n; i++) s += String.fromCharCode(97 + rnd() % 26); return s }
const tlds = ['com', 'net', 'org', 'ru', 'io', 'info', 'de', 'cn']

const dir = mkdtempSync(join(tmpdir(), 'egressd-scale-'))
const file = join(dir, 'big.txt')
const lines = []
for (let i = 0; i < COUNT; i++) lines.push(`${word(4 + rnd() % 8)}${i}.${word(3 + rnd() % 6)}.${tlds[rnd() % tlds.length]}`)
writeFileSync(file, '# generated\n' + lines.join('\n') + '\n')
lines.length = 0
const emptyDir = join(dir, 'categories')
import('node:fs').then(fs => fs.mkdirSync(emptyDir))
await new Promise(resolve => setTimeout(resolve, 10))

gc(); gc()
const rss0 = process.memoryUsage().rss
const t0 = performance.now()
const cfg = {
  dir: emptyDir, action: 'nxdomain', blockTtl: 60, sinkhole: { ipv4: '0.0.0.0', ipv6: '::' },
  categories: {}, sources: [{ name: 'big', path: file, format: 'plain' }], rules: { block: [], allow: [] }, groups: []
}
const { engine, warnings } = buildEngine(cfg, 1)
const loadMs = performance.now() - t0
gc(); gc()
const rssMb = (process.memoryUsage().rss - rss0) / 1e6

const group = engine.groupOf('127.0.0.1')
const probes = []
for (let i = 0; i < 1000; i++) probes.push(`${word(5)}.${word(6)}.${word(4)}.${word(7)}.${tlds[rnd() % tlds.length]}`)
const hit = engine.decideName(`x.${cfg.sources[0] && 'a'}`, group) // warm-up, result unused
let matched = 0
for (let r = 0; r < 200; r++) for (const p of probes) if (engine.decideName(p, group) !== undefined) matched++
const batches = []
for (let r = 0; r < 2000; r++) {
  const t = process.hrtime.bigint()
  for (const p of probes) if (engine.decideName(p, group) !== undefined) matched++
  batches.push(Number(process.hrtime.bigint() - t) / probes.length)
}
batches.sort((a, b) => a - b)
const median = batches[batches.length >> 1]
const p99 = batches[Math.floor(batches.length * 0.99)]
rmSync(dir, { recursive: true, force: true })
console.log(JSON.stringify({
  domains: COUNT, rules: engine.stats().names, skipped: warnings.length,
  loadMs: Math.round(loadMs), rssAddedMb: Math.round(rssMb), lookupMedianNs: Math.round(median), lookupP99BatchNs: Math.round(p99),
  nonMatchingHits: matched, unused: hit === undefined
}))
