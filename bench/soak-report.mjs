// bench/soak.sh's verdict: reads the sampler's CSV and dnsperf's output, waits for the block log
// to write what is still queued, and prints each pass criterion with PASS or FAIL (also into
// SUMMARY). Exit 1 if any criterion failed.
//
//   node bench/soak-report.mjs CSV DNSPERF_OUT METRICS_URL SUMMARY DB ROOT DNS_PORT
// (DB, ROOT, DNS_PORT as for soak-sample.mjs)
// env: SOAK_TOKEN, SOAK_QPS, SOAK_BASELINE (s), SOAK_MAX_GROWTH (%), SOAK_MAX_LAG (ms),
//      SOAK_MAX_LOST (%), SOAK_MIN_RATE (% of SOAK_QPS), SOAK_ALIVE (1 when the end-of-run DNS and
//      /readyz checks passed), SOAK_ALIVE_DETAIL (what they saw), SOAK_HEADER (lines printed first)

import { readFileSync, writeFileSync } from 'node:fs'
import { eventsInDb, figures, kernelUdpDrops, scrape } from './soak-metrics.mjs'

const [csvPath, dnsperfPath, url, summaryPath, dbPath, root, portArg] = process.argv.slice(2)
if (portArg === undefined) { console.error('usage: soak-report.mjs CSV DNSPERF_OUT METRICS_URL SUMMARY DB ROOT DNS_PORT'); process.exit(2) }
const env = (k, d) => process.env[k] === undefined || process.env[k] === '' ? d : Number(process.env[k])
const token = process.env.SOAK_TOKEN ?? ''
const qpsTarget = env('SOAK_QPS', 10000), baselineS = env('SOAK_BASELINE', 60)
const maxGrowth = env('SOAK_MAX_GROWTH', 10), maxLag = env('SOAK_MAX_LAG', 50), maxLost = env('SOAK_MAX_LOST', 0.1), minRate = env('SOAK_MIN_RATE', 95)

const [head, ...lines] = readFileSync(csvPath, 'utf8').trim().split('\n')
const cols = head.split(',')
const num = v => v === undefined || v === 'n/a' || v === '' ? undefined : Number(v)
const rows = lines.map(l => { const v = l.split(','); return Object.fromEntries(cols.map((c, i) => [c, c === 'time' ? v[i] : num(v[i])])) })

const out = []
const say = s => { out.push(s); console.log(s) }
let failed = false
const verdict = (ok, name, detail) => {
  if (!ok) failed = true
  say(`${ok ? 'PASS' : 'FAIL'}  ${name.padEnd(36)} ${detail}`)
}
const f1 = v => v === undefined ? 'n/a' : v.toFixed(1)

// The block log writes what is still queued (batches every store.batchMs): wait up to 30 s.
let end
for (let i = 0; i < 60; i++) {
  const { metrics } = await scrape(url, token)
  end = metrics === undefined ? undefined : figures(metrics)
  if (end === undefined || end.queueDepth === undefined || end.queueDepth === 0) break
  await new Promise(resolve => setTimeout(resolve, 500))
}

const dp = (() => { try { return readFileSync(dnsperfPath, 'utf8') } catch { return '' } })()
const grab = re => { const m = re.exec(dp); return m === null ? undefined : Number(m[1]) }
const sent = grab(/Queries sent:\s+(\d+)/), completed = grab(/Queries completed:\s+(\d+)/)
const lostPct = grab(/Queries lost:\s+\d+ \(([\d.]+)%\)/), lost = grab(/Queries lost:\s+(\d+)/)
const dqps = grab(/Queries per second:\s+([\d.]+)/), avgLat = grab(/Average Latency \(s\):\s+([\d.]+)/)
const runTime = grab(/Run time \(s\):\s+([\d.]+)/)
const rcodes = (/Response codes:\s+(.*)/.exec(dp) ?? [])[1] ?? 'n/a'

for (const l of (process.env.SOAK_HEADER ?? '').split('\n')) if (l !== '') say(l)
say(`dnsperf: sent ${sent ?? 'n/a'}, completed ${completed ?? 'n/a'}, lost ${lost ?? 'n/a'} (${lostPct ?? 'n/a'} %), ` +
  `${dqps === undefined ? 'n/a' : dqps.toFixed(0)} qps over ${runTime ?? 'n/a'} s, average latency ${avgLat === undefined ? 'n/a' : (avgLat * 1000).toFixed(3)} ms`)
say(`dnsperf response codes: ${rcodes}`)
const last = rows[rows.length - 1]
const cpu = rows.map(r => r.cpu_pct).filter(v => v !== undefined)
say(`samples: ${rows.length}; daemon CPU mean ${cpu.length ? f1(cpu.reduce((a, b) => a + b, 0) / cpu.length) : 'n/a'} % of a core; ` +
  `answered ${last?.queries_answered ?? 'n/a'} (blocked ${last?.blocked ?? 'n/a'}, cached ${last?.cached ?? 'n/a'}, resolved ${last?.resolved ?? 'n/a'}, servfail ${last?.servfail ?? 'n/a'})`)
const written = end?.written ?? eventsInDb(dbPath, root)
const writtenSrc = end?.written !== undefined ? '/metrics' : 'SQLite max(events.id)'
const accounted = end?.blocked !== undefined && written !== undefined && end.dropped !== undefined
  ? (end.blocked === written + end.dropped ? ' = written + dropped' : ` != written + dropped (${end.blocked - written - end.dropped} unaccounted)`)
  : ''
say(`block log after the run (queue ${end?.queueDepth === 0 ? 'drained' : `not drained: ${end?.queueDepth ?? 'n/a'} left`}): ` +
  `blocked answers ${end?.blocked ?? 'n/a'}${accounted}; events written ${written ?? 'n/a'} (from ${writtenSrc}), dropped ${end?.dropped ?? 'n/a'}`)
const udpDrops = kernelUdpDrops(Number(portArg))
say('')

// 1. No crash
const deadRows = rows.filter(r => r.alive !== 1).map(r => r.t_s)
const aliveEnd = process.env.SOAK_ALIVE === '1'
verdict(aliveEnd && deadRows.length === 0 && rows.length > 0, 'no crash (alive, answering at end)',
  `${process.env.SOAK_ALIVE_DETAIL ?? ''}${deadRows.length ? `; not answering at t=${deadRows.join(', ')} s` : ''}`)

// 2. RSS growth after the first minute
const base = rows.find(r => r.t_s >= baselineS - 0.5)
if (base === undefined || last === undefined || base === last || base.rss_mb === undefined || last.rss_mb === undefined) {
  verdict(false, `RSS growth after ${baselineS} s < ${maxGrowth} %`, 'not measurable: no RSS reading at the baseline and a later one at the end (run too short, or the daemon gone?)')
} else {
  const g = (last.rss_mb - base.rss_mb) / base.rss_mb * 100
  verdict(g < maxGrowth, `RSS growth after ${baselineS} s < ${maxGrowth} %`,
    `${f1(g)} % (${f1(base.rss_mb)} MB at t=${base.t_s} s -> ${f1(last.rss_mb)} MB at t=${last.t_s} s; peak ${f1(Math.max(...rows.map(r => r.rss_mb ?? 0)))} MB; ` +
    `heap used ${f1(base.heap_used_mb)} -> ${f1(last.heap_used_mb)} MB, external ${f1(base.external_mb)} -> ${f1(last.external_mb)} MB)`)
}

// 3. Event-loop lag p99, the worst interval
const lags = rows.filter(r => r.lag_p99_ms !== undefined)
if (lags.length === 0) {
  verdict(false, `event-loop lag p99 < ${maxLag} ms`, 'n/a: the daemon exposes no lag figures')
} else {
  const worst = lags.reduce((a, b) => b.lag_p99_ms > a.lag_p99_ms ? b : a)
  const p50s = lags.map(r => r.lag_p50_ms).filter(v => v !== undefined).sort((a, b) => a - b)
  verdict(worst.lag_p99_ms < maxLag, `event-loop lag p99 < ${maxLag} ms`,
    `max ${worst.lag_p99_ms.toFixed(2)} ms (at t=${worst.t_s} s); median p50 ${p50s.length ? p50s[p50s.length >> 1].toFixed(2) : 'n/a'} ms`)
}

// 4. Block log drops
const dropped = end?.dropped ?? last?.events_dropped
verdict(dropped === 0, 'zero block-log drops', dropped === undefined ? 'could not be read (no egressd_blocklog_dropped_total)' : `${dropped} dropped`)

// 5. dnsperf lost queries, and whether the load held its rate
verdict(lostPct !== undefined && lostPct < maxLost, `dnsperf lost queries < ${maxLost} %`, lostPct === undefined ? 'no dnsperf summary' : `${lost} lost (${lostPct} %); kernel drops on the daemon's UDP socket: ${udpDrops ?? 'n/a'}`)
verdict(dqps !== undefined && dqps >= qpsTarget * minRate / 100, `load held >= ${minRate} % of ${qpsTarget} qps`,
  dqps === undefined ? 'no dnsperf summary' : `${dqps.toFixed(0)} qps`)

say('')
say(failed ? 'soak: FAIL' : 'soak: PASS')
writeFileSync(summaryPath, out.join('\n') + '\n')
process.exit(failed ? 1 : 0)
