#!/usr/bin/env node
// Writer throughput through the real block-log path (BlockLog.push on this thread -> writer worker
// -> batched transactions), not pinned: the DNS thread and the writer thread each have a core, as on
// a gateway. Optional FILE: write into a copy-free existing database (e.g. the 10M-event one from
// blocklog-fill.mjs) to measure with full indexes; default a fresh file.
//
//   [SHAPE=skewed|uniform] node bench/blocklog-writer.mjs [EVENTS=1000000] [FILE]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { openDatabase } from '../dist/store/db.js'
import { BlockLog } from '../dist/store/block-log.js'
import { categories, clients, names, skewed } from './blocklog-data.mjs'
const N = Number(process.argv[2] ?? 1_000_000)
const dir = mkdtempSync(join(tmpdir(), 'egressd-writer-'))
const path = process.argv[3] ?? join(dir, 'w.sqlite')
openDatabase(path).close()
const bl = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 1000, queueMax: 200_000, batchMs: 1000, retention: { days: 90, maxRows: 0, maxBytes: 0 }, log: pino({ level: 'warn' }) })
// Two traffic shapes: `skewed` as bench/blocklog-fill.mjs (5,000 clients and 400 names per category,
// a few of each much more frequent than the rest, as on a real LAN) and `uniform` (16,384 clients,
// 10,000 names, every event from a different client in turn: the worst case for the roll-ups).
const shape = process.env.SHAPE ?? 'skewed'
const event = shape === 'uniform'
  ? k => {
    const c = categories[k % 5]
    return { ts: Date.now(), client: `10.1.${(k >> 8) & 63}.${k & 255}`, group: 'default', qname: `h${k % 2000}.${c}.example`, qtype: 1, matched: 'qname', value: `h${k % 2000}.${c}.example`, category: c, action: 'nxdomain', list: `blocklists/${c}/domains.txt`, line: k % 400, rule: `${c}.example`, listHash: '3f2a9c0d11e4b7a8' }
  }
  : () => {
    const c = skewed(categories.length)
    const qname = names[c][skewed(400)]
    return { ts: Date.now(), client: clients[skewed(clients.length)], group: 'default', qname, qtype: 1, matched: 'qname', value: qname, category: categories[c], action: 'nxdomain', list: `blocklists/${categories[c]}/domains.txt`, line: 1 + skewed(400), rule: qname.replace(/^www\./, ''), listHash: '3f2a9c0d11e4b7a8' }
  }
const t0 = performance.now()
let pushed = 0
while (pushed < N) {
  // Offer events as fast as the bounded queue takes them (back off while it is nearly full).
  if (bl.stats.depth >= 150_000) { await new Promise(resolve => setTimeout(resolve, 5)); continue }
  for (let i = 0; i < 5000 && pushed < N; i++, pushed++) bl.push(event(pushed))
  await new Promise(resolve => setImmediate(resolve))
}
await bl.flush(600_000)
const secs = (performance.now() - t0) / 1000
await bl.close()
console.log(`${shape}: ${Math.round(N / secs)} events/s (${N} events, dropped ${bl.stats.dropped})`)
rmSync(dir, { recursive: true, force: true })
