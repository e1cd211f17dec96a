// bench/soak.sh's sampler: every INTERVAL seconds for SECONDS seconds (from its start, sample 0
// included), one CSV row of the daemon's memory, event-loop lag, block log and query counters.
// Each row is appended as it is taken, so a crash of the daemon (or of this script) leaves the
// rows up to it. Only scrape of /metrics during the run: the daemon resets its lag histogram at
// each scrape, so a row's lag figures describe the interval since the previous row.
//
//   SOAK_TOKEN=... node bench/soak-sample.mjs URL PID INTERVAL SECONDS CSV DB ROOT DNS_PORT
// URL: the daemon's /metrics; PID: the daemon's process (RSS and CPU from /proc); DB: its SQLite
// file (events written are read from it, as max(events.id), when /metrics has no such counter);
// ROOT: the checkout whose node_modules has better-sqlite3; DNS_PORT: its UDP listener on
// 127.0.0.1, whose datagrams dropped by the kernel (receive buffer full) are read from /proc/net/udp.

import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { eventsInDb, figures, kernelUdpDrops, scrape } from './soak-metrics.mjs'

const [url, pidArg, intervalArg, secondsArg, csv, dbPath, root, portArg] = process.argv.slice(2)
const token = process.env.SOAK_TOKEN ?? ''
const pid = Number(pidArg), interval = Number(intervalArg), seconds = Number(secondsArg)
if (portArg === undefined || !(pid > 0) || !(interval > 0) || !(seconds >= 0)) {
  console.error('usage: SOAK_TOKEN=... soak-sample.mjs URL PID INTERVAL SECONDS CSV DB ROOT DNS_PORT'); process.exit(2)
}
const HZ = 100 // USER_HZ: /proc/PID/stat counts in 1/100 s on Linux

const COLUMNS = ['t_s', 'time', 'alive', 'rss_mb', 'heap_used_mb', 'external_mb', 'lag_p50_ms', 'lag_p99_ms', 'lag_max_ms',
  'blocklog_queue', 'events_written', 'events_dropped', 'queries_answered', 'answered_qps',
  'blocked', 'cached', 'resolved', 'servfail', 'cache_entries', 'cpu_pct', 'udp_kernel_drops']

function procStatus () {
  try {
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // f[0] is field 3 (state)
    return { rssBytes: rss === null ? undefined : Number(rss[1]) * 1024, cpuTicks: Number(f[11]) + Number(f[12]), zombie: f[0] === 'Z' }
  } catch {
    return undefined
  }
}

const fmt = (v, digits = 1) => v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits)
const mb = v => v === undefined ? undefined : v / 1048576

// One scrape first, thrown away: it resets the lag histogram, which until then held the daemon's
// start-up (list load) and the cache warm-up.
await scrape(url, token)
writeFileSync(csv, COLUMNS.join(',') + '\n')
const t0 = Date.now()
let prev // { t, answered, cpuTicks }
const steps = Math.floor(seconds / interval + 1e-9)
for (let k = 0; k <= steps; k++) {
  const wait = t0 + k * interval * 1000 - Date.now()
  if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
  const t = (Date.now() - t0) / 1000
  const proc = procStatus()
  const { metrics, err } = await scrape(url, token)
  const f = metrics === undefined ? {} : figures(metrics)
  const written = f.written ?? eventsInDb(dbPath, root)
  const alive = proc !== undefined && !proc.zombie && metrics !== undefined ? 1 : 0
  const dt = prev === undefined ? undefined : t - prev.t
  const qps = dt !== undefined && f.answered !== undefined && prev.answered !== undefined ? (f.answered - prev.answered) / dt : undefined
  const cpu = dt !== undefined && proc !== undefined && prev.cpuTicks !== undefined ? (proc.cpuTicks - prev.cpuTicks) / HZ / dt * 100 : undefined
  prev = { t, answered: f.answered, cpuTicks: proc?.cpuTicks }
  const row = [fmt(t, 1), new Date().toISOString(), String(alive), fmt(mb(proc?.rssBytes ?? f.rssBytes)), fmt(mb(f.heapUsedBytes)), fmt(mb(f.externalBytes)),
    fmt(f.lagP50Ms, 2), fmt(f.lagP99Ms, 2), fmt(f.lagMaxMs, 2), fmt(f.queueDepth, 0), fmt(written, 0), fmt(f.dropped, 0),
    fmt(f.answered, 0), fmt(qps, 0), fmt(f.blocked, 0), fmt(f.cached, 0), fmt(f.resolved, 0), fmt(f.servfail, 0),
    fmt(f.cacheEntries, 0), fmt(cpu, 1), fmt(kernelUdpDrops(Number(portArg)), 0)]
  appendFileSync(csv, row.join(',') + '\n')
  console.error(`soak: t=${row[0]}s rss=${row[3]}MB heap=${row[4]}MB ext=${row[5]}MB lag_p99=${row[7]}ms queue=${row[9]} written=${row[10]} dropped=${row[11]} qps=${row[13]} cpu=${row[19]}% udp_drops=${row[20]}` +
    (alive ? '' : ` DAEMON NOT ANSWERING (${proc === undefined ? 'process gone' : err ?? 'zombie'})`))
}
