// Reading egressd's /metrics for bench/soak.sh, tolerant of metric names: a family that is not
// there gives undefined (printed n/a), never an exception. Also two figures read around the
// daemon: rows of its SQLite block log, and the kernel's drops on its UDP socket.

import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

/** Prometheus text format -> Map(name -> [{ labels, value }]). Comments and bad lines are skipped. */
export function parseMetrics (text) {
  const out = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const labels = {}
    if (m[2] !== undefined) {
      for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3])
    let rows = out.get(m[1])
    if (rows === undefined) out.set(m[1], rows = [])
    rows.push({ labels, value })
  }
  return out
}

/** Sum of a family's samples whose labels match every entry of `where` (undefined: no such family). */
export function sum (metrics, name, where = {}, exclude = {}) {
  const rows = metrics?.get(name)
  if (rows === undefined) return undefined
  let s = 0
  for (const r of rows) {
    if (Object.entries(where).some(([k, v]) => r.labels[k] !== v)) continue
    if (Object.entries(exclude).some(([k, v]) => r.labels[k] === v)) continue
    s += r.value
  }
  return s
}

/** The first of several candidate names that exists (names may change while the daemon evolves). */
export function first (metrics, names, where = {}, exclude = {}) {
  for (const n of names) {
    const v = sum(metrics, n, where, exclude)
    if (v !== undefined) return v
  }
  return undefined
}

/** The first family whose name matches `re` (for counters whose exact name is not settled). */
export function matching (metrics, re) {
  if (metrics === undefined) return undefined
  for (const name of metrics.keys()) if (re.test(name)) return sum(metrics, name)
  return undefined
}

/** GET /metrics with the token; undefined (and the reason in `err`) when the daemon does not answer. */
export async function scrape (url, token, timeoutMs = 5000) {
  try {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) })
    if (res.status !== 200) return { err: `HTTP ${res.status}` }
    return { metrics: parseMetrics(await res.text()) }
  } catch (e) {
    return { err: e.cause?.code ?? e.name ?? String(e) }
  }
}

/** The figures soak.sh samples, from one scrape (undefined where the daemon has no such metric). */
export function figures (m) {
  const sec = v => v === undefined ? undefined : v * 1000
  return {
    rssBytes: first(m, ['process_resident_memory_bytes']),
    heapUsedBytes: first(m, ['nodejs_heap_used_bytes', 'nodejs_heap_size_used_bytes']),
    externalBytes: first(m, ['nodejs_external_memory_bytes']),
    lagP50Ms: sec(first(m, ['nodejs_eventloop_lag_p50_seconds']) ?? first(m, ['nodejs_eventloop_lag_seconds'], { stat: 'p50' })),
    lagP99Ms: sec(first(m, ['nodejs_eventloop_lag_p99_seconds']) ?? first(m, ['nodejs_eventloop_lag_seconds'], { stat: 'p99' })),
    lagMaxMs: sec(first(m, ['nodejs_eventloop_lag_max_seconds']) ?? first(m, ['nodejs_eventloop_lag_seconds'], { stat: 'max' })),
    queueDepth: first(m, ['egressd_blocklog_queue_depth']),
    dropped: first(m, ['egressd_blocklog_dropped_total']),
    written: first(m, ['egressd_blocklog_written_total', 'egressd_blocklog_events_written_total']) ??
      matching(m, /^egressd_blocklog_.*written.*_total$/),
    answered: first(m, ['egressd_dns_queries_total'], {}, { result: 'dropped' }),
    blocked: first(m, ['egressd_dns_queries_total'], { result: 'blocked' }),
    cached: first(m, ['egressd_dns_queries_total'], { result: 'cached' }),
    resolved: first(m, ['egressd_dns_queries_total'], { result: 'resolved' }),
    servfail: first(m, ['egressd_dns_queries_total'], { result: 'servfail' }),
    cacheEntries: first(m, ['egressd_cache_entries'])
  }
}

const dbs = new Map()
/** Block events in the SQLite file (max(events.id): rows ever written, O(log n)); undefined if unreadable. */
export function eventsInDb (dbPath, root) {
  try {
    let db = dbs.get(dbPath)
    if (db === undefined) {
      if (!existsSync(dbPath)) return undefined
      const Database = createRequire(join(root, 'package.json'))('better-sqlite3')
      db = new Database(dbPath, { readonly: true, fileMustExist: true })
      db.pragma('busy_timeout = 1000')
      dbs.set(dbPath, db)
    }
    return db.prepare('SELECT coalesce(max(id), 0) AS n FROM events').get().n
  } catch {
    return undefined
  }
}

/**
 * Datagrams the kernel dropped on the UDP sockets bound to 127.0.0.1:PORT (receive buffer full),
 * summed, from the `drops` column of /proc/net/udp; undefined where it cannot be read.
 */
export function kernelUdpDrops (port) {
  try {
    // 127.0.0.1 as /proc prints it: the 32-bit word in host byte order (x86: little-endian)
    const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
    let drops, seen = false
    for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/)
      if (f[1] !== local || f.length < 13) continue
      seen = true
      drops = (drops ?? 0) + Number(f[12])
    }
    return seen ? drops : undefined
  } catch {
    return undefined
  }
}
