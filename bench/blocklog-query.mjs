#!/usr/bin/env node
// Times the block-log queries on a database filled by bench/blocklog-fill.mjs (median of 5 runs,
// after one warm-up), and the writer's throughput through the real writer thread (BlockLog:
// queue → worker → batched transactions) into a fresh file. Build first (npm run build).
//
//   taskset -c 1 node bench/blocklog-query.mjs [FILE=/tmp/egressd-bench.sqlite] [WRITER_EVENTS=1000000]

import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { openDatabase } from '../dist/store/db.js'
import { BlockLog } from '../dist/store/block-log.js'
import { parseFilter } from '../dist/store/block-filter.js'
import { blockStats, bypassClients, categoryCounts, searchBlocks } from '../dist/store/block-search.js'

const file = process.argv[2] ?? '/tmp/egressd-bench.sqlite'
const writerEvents = Number(process.argv[3] ?? 1_000_000)
const db = openDatabase(file, { readonly: true })
const now = (db.prepare('SELECT max(ts) AS m FROM events').get()).m + 1
const rows = db.prepare('SELECT count(*) AS n FROM events').get().n
// The busiest client of the last day (a worst case for "one client over 24 h").
const client = db.prepare('SELECT c.addr AS a FROM events e JOIN clients c ON c.id = e.client WHERE e.ts >= ? GROUP BY e.client ORDER BY count(*) DESC LIMIT 1').get(now - 86_400_000).a

function time (fn) {
  fn()
  const runs = []
  let out
  for (let i = 0; i < 5; i++) { const t = performance.now(); out = fn(); runs.push(performance.now() - t) }
  runs.sort((a, b) => a - b)
  return { ms: Math.round(runs[2] * 10) / 10, out }
}

const results = {}
let r = time(() => searchBlocks(db, parseFilter({ client, from: '-24h' }, now), { limit: 10_000 }))
results['one client over 24 h (first 10,000 rows)'] = `${r.ms} ms, ${r.out.rows.length} rows`
r = time(() => { let n = 0; let cursor; do { const p = searchBlocks(db, parseFilter({ client, from: '-24h' }, now), { limit: 10_000, cursor }); n += p.rows.length; cursor = p.next } while (cursor); return n })
results['one client over 24 h (all pages)'] = `${r.ms} ms, ${r.out} rows`
r = time(() => categoryCounts(db, now - 30 * 86_400_000 - 1234, now))
results['category count over 30 days (unaligned range: roll-up + raw edges)'] = `${r.ms} ms, ${r.out.length} category/action pairs`
r = time(() => blockStats(db, { from: now - 30 * 86_400_000, to: now, top: 10 }))
results['stats over 30 days (category counts, top 10 domains and clients, daily series)'] = `${r.ms} ms, total ${r.out.total}`
r = time(() => blockStats(db, { from: now - 30 * 86_400_000, to: now, category: 'telegram', top: 10, bucket: '1d' }))
results['stats over 30 days, one category'] = `${r.ms} ms, total ${r.out.total}`
r = time(() => blockStats(db, { from: now - 86_400_000, to: now, top: 10 }))
results['stats over 24 h'] = `${r.ms} ms, total ${r.out.total}`
r = time(() => searchBlocks(db, parseFilter({ domain: 'telegram-cdn3.example', suffix: true, from: '-7d' }, now), { limit: 100 }))
results['domain suffix over 7 days (first 100)'] = `${r.ms} ms`
r = time(() => bypassClients(db, { from: now - 7 * 86_400_000, to: now }))
results['bypass report over 7 days'] = `${r.ms} ms, ${r.out.length} clients`
db.close()

// Writer throughput through the real writer thread.
const dir = mkdtempSync(join(tmpdir(), 'egressd-writer-'))
const path = join(dir, 'w.sqlite')
openDatabase(path).close()
const log = pino({ level: 'warn' })
const bl = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 1000, queueMax: 200_000, batchMs: 1000, retention: { days: 90, maxRows: 0, maxBytes: 0 }, log })
const categories = ['telegram', 'whatsapp', 'viber', 'discord', 'doh-bypass']
const t0 = performance.now()
let pushed = 0
while (pushed < writerEvents) {
  // Offer events as fast as the queue takes them (a bounded queue: back off when it is full).
  if (bl.stats.depth >= 150_000) { await new Promise(resolve => setTimeout(resolve, 5)); continue }
  for (let i = 0; i < 5000 && pushed < writerEvents; i++, pushed++) {
    const c = categories[pushed % 5]
    bl.push({ ts: Date.now(), client: `10.1.${(pushed >> 8) & 63}.${pushed & 255}`, group: 'default', qname: `h${pushed % 2000}.${c}.example`, qtype: 1, matched: 'qname', value: `h${pushed % 2000}.${c}.example`, category: c, action: 'nxdomain', list: `blocklists/${c}/domains.txt`, line: pushed % 400, rule: `${c}.example`, listHash: '3f2a9c0d11e4b7a8' })
  }
  await new Promise(resolve => setImmediate(resolve))
}
await bl.flush(600_000)
const secs = (performance.now() - t0) / 1000
await bl.close()
results['writer thread (BlockLog → worker → batched transactions)'] = `${Math.round(writerEvents / secs)} events/s (${writerEvents} events, dropped ${bl.stats.dropped})`
rmSync(dir, { recursive: true, force: true })

results['database'] = `${rows} events, ${Math.round(statSync(file).size / 1048576)} MiB` + (existsSync(file + '-wal') ? ` (+ WAL ${Math.round(statSync(file + '-wal').size / 1048576)} MiB)` : '')
for (const [k, v] of Object.entries(results)) console.log(`| ${k} | ${v} |`)
