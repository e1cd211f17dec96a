#!/usr/bin/env node
// Fills a block-log database with N synthetic events (default 10,000,000) spread over the last
// DAYS days (default 30), through the real write path (EventWriter: interning, row insert,
// roll-ups, one transaction per batch), and prints the writer's events/s and the file size.
// Build first (npm run build). Not part of npm test or npm run bench: it takes minutes.
//
//   taskset -c 1 node bench/blocklog-fill.mjs [FILE=/tmp/egressd-bench.sqlite] [N=10000000] [DAYS=30]

import { existsSync, rmSync, statSync } from 'node:fs'
import { openDatabase } from '../dist/store/db.js'
import { EventWriter } from '../dist/store/block-writer.js'
import { categories, clients, names, skewed } from './blocklog-data.mjs'

const file = process.argv[2] ?? '/tmp/egressd-bench.sqlite'
const total = Number(process.argv[3] ?? 10_000_000)
const days = Number(process.argv[4] ?? 30)
const BATCH = Number(process.env.BATCH ?? 20_000)

for (const s of ['', '-wal', '-shm']) if (existsSync(file + s)) rmSync(file + s)
const db = openDatabase(file)
db.pragma('cache_size = -65536')
db.pragma('wal_autocheckpoint = 10000') // as the writer worker does
const writer = new EventWriter(db)

const groups = ['default', 'staff', 'guests']
const qtypes = [1, 28, 65, 1, 1, 28]
const actions = ['nxdomain', 'nxdomain', 'nxdomain', 'monitor', 'refused']

const end = Date.now()
const start = end - days * 86_400_000
const step = (end - start) / total
const t0 = performance.now()
let written = 0
let last = t0
while (written < total) {
  const n = Math.min(BATCH, total - written)
  const batch = new Array(n)
  for (let i = 0; i < n; i++) {
    const k = written + i
    const c = skewed(categories.length)
    const qname = names[c][skewed(400)]
    batch[i] = {
      ts: Math.floor(start + k * step),
      client: clients[skewed(clients.length)],
      group: groups[k % 3],
      qname,
      qtype: qtypes[k % qtypes.length],
      matched: 'qname',
      value: qname,
      category: categories[c],
      action: actions[k % actions.length],
      list: `blocklists/${categories[c]}/domains.txt`,
      line: 1 + skewed(400),
      rule: qname.replace(/^www\./, ''),
      listHash: '3f2a9c0d11e4b7a8'
    }
  }
  writer.write(batch)
  written += n
  const now = performance.now()
  if (now - last > 10_000) { last = now; console.error(`${written} events, ${Math.round(written / ((now - t0) / 1000))}/s`) }
}
const secs = (performance.now() - t0) / 1000
db.pragma('wal_checkpoint(TRUNCATE)')
db.pragma('optimize')
db.close()
const size = statSync(file).size
console.log(JSON.stringify({ file, events: total, days, seconds: Math.round(secs), eventsPerSecond: Math.round(total / secs), bytes: size, mib: Math.round(size / 1048576) }))
