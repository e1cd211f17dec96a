// /metrics through prom-client: one Registry per API app (never prom-client's global `register`),
// so two daemons in one process never share a family. Holds:
// - prom-client's default process and Node.js metrics (CPU seconds, open and max fds, resident
//   memory, heap and heap spaces, GC durations, active handles, event-loop lag as prom-client
//   measures it: a perf_hooks monitorEventLoopDelay histogram at a 20 ms resolution, read and reset
//   at each scrape, and the delay of a setImmediate at scrape time);
// - egressd's own families, read at scrape time through collect callbacks from the daemon's plain
//   counters (DnsMetrics, the cache, the upstream pool, the block log, ...): nothing is counted
//   here, so a DNS query pays nothing for /metrics.
//
// Every read-at-scrape family starts from nothing at each scrape (reset, then set), so a label set
// that went away (an upstream replaced by a reload, a list source removed) goes with it.

import { stat } from 'node:fs/promises'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { RELOAD_OUTCOMES, RELOAD_TRIGGERS } from '../config/reload.js'
import { ANSWER_TIME_BUCKETS_S } from '../dns/answer-time.js'
import type { ListenerFigures } from '../dns/listener.js'
import type { ElementSyncState } from '../firewall/elements.js'
import type { EvidenceState } from '../firewall/evidence.js'
import { firewallCategories } from '../firewall/sync.js'
import { QUERY_RESULTS, type OutcomeKind } from '../dns/metrics.js'
import { LATENCY_BUCKETS_MS } from '../dns/upstream/pool.js'
import type { ListSourceStatus } from '../lists/updater.js'
import type { EngineBuild } from '../policy/build.js'
import type { ApiHost } from './host.js'
import type { ApiLimitCounters } from './rate-limit.js'

/** prom-client's event-loop delay sampler resolution (ms). */
export const EVENT_LOOP_RESOLUTION_MS = 20

type Labels = Readonly<Record<string, string>>
type Rows = Iterable<readonly [Labels, number]>

/** One series of a histogram counted elsewhere: counts per bucket (not cumulative, the last above every bound). */
interface HistogramSeries {
  readonly labels: Labels
  readonly counts: ArrayLike<number>
  /** Seconds. */
  readonly sum: number
}

type HistogramData = Awaited<ReturnType<Histogram<string>['get']>>

/**
 * A histogram whose buckets are plain counters kept by the DNS path (or the upstream pool) and
 * only read here, at scrape time: renders cumulative buckets, _sum and _count from them.
 */
class ReadAtScrapeHistogram extends Histogram<string> {
  readonly #name: string
  readonly #help: string
  readonly #le: readonly string[]
  readonly #read: () => Iterable<HistogramSeries>

  constructor (registry: Registry, name: string, help: string, labelNames: readonly string[], boundsS: readonly number[], read: () => Iterable<HistogramSeries>) {
    super({ name, help, labelNames, buckets: [...boundsS], registers: [registry] })
    this.#name = name
    this.#help = help
    this.#le = [...boundsS.map(String), '+Inf']
    this.#read = read
  }

  override async get (): Promise<HistogramData> {
    const values: Array<{ labels: Record<string, string>, value: number, metricName: string }> = []
    for (const s of this.#read()) {
      let cumulative = 0
      for (let i = 0; i < this.#le.length; i++) {
        cumulative += s.counts[i]
        values.push({ labels: { ...s.labels, le: this.#le[i] }, value: cumulative, metricName: `${this.#name}_bucket` })
      }
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.#name}_sum` })
      values.push({ labels: { ...s.labels }, value: cumulative, metricName: `${this.#name}_count` })
    }
    // prom-client's typings give `type` as a numeric enum and `collect` as required; at run time
    // the registry reads name, help, type ('histogram') and values, as Histogram itself returns them.
    return { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values } as unknown as HistogramData
  }

  /** What the registry renders the text format from (Histogram's own reads its observe() buckets). */
  async getForPromString (): Promise<HistogramData> { return await this.get() }
}

/** Registers read-at-scrape families on one registry. */
class Families {
  readonly #registry: Registry

  constructor (registry: Registry) { this.#registry = registry }

  /** A gauge without labels. */
  gauge (name: string, help: string, read: () => number): void {
    const g: Gauge = new Gauge({ name, help, registers: [this.#registry], collect: () => { g.set(read()) } })
  }

  /** A gauge with labels: one sample per row (sync or async: files are stat'ed at scrape). */
  gauges (name: string, help: string, labelNames: readonly string[], read: () => Rows | Promise<Rows>): void {
    const g: Gauge = new Gauge({
      name,
      help,
      labelNames,
      registers: [this.#registry],
      collect: async () => {
        const rows = await read()
        g.reset()
        for (const [labels, v] of rows) g.set(labels, v)
      }
    })
  }

  /** A counter without labels, read from a plain number that only grows. */
  counter (name: string, help: string, read: () => number): void {
    const c: Counter = new Counter({ name, help, registers: [this.#registry], collect: () => { c.reset(); c.inc(nonNegative(read())) } })
  }

  /** A counter with labels: one sample per row. */
  counters (name: string, help: string, labelNames: readonly string[], read: () => Rows): void {
    const c: Counter = new Counter({
      name,
      help,
      labelNames,
      registers: [this.#registry],
      collect: () => {
        c.reset()
        for (const [labels, v] of read()) c.inc(labels, nonNegative(v))
      }
    })
  }

  histogram (name: string, help: string, labelNames: readonly string[], boundsS: readonly number[], read: () => Iterable<HistogramSeries>): void {
    new ReadAtScrapeHistogram(this.#registry, name, help, labelNames, boundsS, read)
  }
}

/** One row per category: those given (0 when not counted), then any other counted. */
function withCategories (categories: readonly string[], counts: ReadonlyMap<string, number>): Rows {
  const rows: Array<readonly [Labels, number]> = categories.map(category => [{ category }, counts.get(category) ?? 0])
  for (const [category, n] of counts) if (!categories.includes(category)) rows.push([{ category }, n])
  return rows
}

/** prom-client refuses a negative or non-finite counter increment (the scrape would fail as a whole). */
function nonNegative (v: number): number { return Number.isFinite(v) && v > 0 ? v : 0 }

/** Size in bytes of a file, 0 when it does not exist (a WAL checkpointed away); undefined on other errors. */
async function fileSize (path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 0 : undefined
  }
}

const NO_SOCKETS: ListenerFigures = { tcpConnections: 0, tcpClients: 0, tcpQueuedBytes: 0, tcpMaxQueuedBytes: 0, tcpWriteBlocked: 0, udpKernelDrops: undefined, udp: [] }

const ANSWER_RESULTS: readonly OutcomeKind[] = ['resolved', 'cached', 'blocked', 'servfail', 'refused']

export interface MetricsContext {
  readonly host: ApiHost
  readonly version: string
  /** API requests refused by the rate limit. */
  readonly rateLimited: () => number
  /** What the API's connection and live-tail limits refused or cut off. */
  readonly limits?: ApiLimitCounters
  /** Wall clock (ms): ages are computed with it. */
  readonly now: () => number
}

export interface MetricsExporter {
  readonly registry: Registry
  /** The Content-Type of render()'s text (format 0.0.4). */
  readonly contentType: string
  /** One scrape: every family read now, as Prometheus text. */
  render: () => Promise<string>
  /** Drops the families (prom-client's event-loop and GC observers cannot be stopped: see below). */
  close: () => void
}

/**
 * prom-client's default metrics and every egressd family on a registry of their own.
 *
 * prom-client (15.1) never stops what its default metrics start: each registry keeps an enabled
 * monitorEventLoopDelay (a 20 ms timer, unref'd) and a GC PerformanceObserver for the life of the
 * process. The daemon builds one API app, so one of each; a test process that starts several
 * daemons has one per daemon.
 */
export function createMetricsExporter (c: MetricsContext): MetricsExporter {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS })
  const f = new Families(registry)
  const { host } = c
  const m = host.metrics
  // What several families read is computed once per scrape (the DNS socket figures read /proc).
  let scrape = 0
  const perScrape = <T>(read: () => T): () => T => {
    let at = -1
    let v: T
    return () => {
      if (at !== scrape) { v = read(); at = scrape }
      return v
    }
  }

  f.gauges('egressd_build_info', 'egressd version and Node.js runtime', ['version', 'node'], () => [[{ version: c.version, node: process.version }, 1]])
  f.gauge('egressd_start_time_seconds', 'When this egressd started (Unix time)', () => host.startedAt / 1000)

  // DNS queries
  f.counters('egressd_dns_queries_total',
    'Client queries by protocol and result: resolved (allowed, from upstream), cached (allowed, from cache), blocked, servfail, refused, formerr, notimp, dropped, badvers (EDNS version above 0), local (answered by egressd about itself: dns.chaos.answer)',
    ['protocol', 'result'], function * () {
      for (const protocol of ['udp', 'tcp'] as const) {
        for (const result of QUERY_RESULTS) yield [{ protocol, result }, m.results[protocol][result]]
      }
    })
  f.histogram('egressd_dns_answer_seconds',
    'Time from a client query\'s arrival to its answer being handed to the socket, by result (resolved, cached, blocked, servfail, refused); ' +
    'UDP answers are a sample (one event-loop turn in dns.udp.answerTimeSample, default 8), TCP answers are all counted',
    ['result'], ANSWER_TIME_BUCKETS_S, function * () {
      const series = m.answerTimes.series
      for (const result of ANSWER_RESULTS) yield { labels: { result }, counts: series[result].counts, sum: series[result].sumMs / 1000 }
    })
  f.counters('egressd_dns_blocked_total', 'Blocked queries by category', ['category'], () => [...m.blockedByCategory].map(([category, n]) => [{ category }, n]))
  f.counters('egressd_dns_monitored_total', 'Policy matches of monitor-mode categories (answered normally) by category', ['category'],
    () => [...m.monitoredByCategory].map(([category, n]) => [{ category }, n]))
  f.counters('egressd_dns_malformed_total', 'Client packets that were not queries egressd serves, by kind', ['kind'], () => Object.entries(m.malformed).map(([kind, n]) => [{ kind }, n]))
  f.gauge('egressd_dns_inflight', 'Client queries being answered now', () => host.inflight)
  f.counter('egressd_dns_coalesced_total', 'Queries that joined an identical upstream query in flight', () => m.coalesced)
  f.counter('egressd_dns_overloaded_total', 'Queries refused because too many upstream queries were in flight', () => m.overloaded)
  f.counter('egressd_dns_refused_clients_total', 'Queries refused because their client address is not in dns.allowClients', () => m.refusedClients)
  f.counters('egressd_dns_local_answers_total',
    'Queries answered by egressd itself before cache, policy and upstream, by kind: badvers (EDNS version above 0), chaos (CHAOS class: REFUSED or dns.chaos.answer), zone-transfer (AXFR/IXFR: REFUSED)',
    ['kind'], () => Object.entries(m.localAnswers).map(([kind, n]) => [{ kind }, n]))
  f.counter('egressd_dns_truncated_total', 'UDP answers truncated (TC set)', () => m.truncated)
  f.counters('egressd_dns_tcp_connections_total',
    'Client TCP connections by event: accepted, rejected (dns.tcp.maxConnections), clientLimited (dns.tcp.maxConnectionsPerClient), ' +
    'idleClosed, errors, writePaused (reading paused: answers over dns.tcp.maxQueuedBytesPerConnection), stuckClosed (no drain within dns.tcp.stuckTimeoutMs)',
    ['event'], () => Object.entries(m.tcp).map(([event, n]) => [{ event }, n]))
  if (host.dnsSockets !== undefined) {
    const ls = perScrape(() => host.dnsSockets?.() ?? NO_SOCKETS)
    f.gauge('egressd_dns_tcp_connections', 'Client TCP connections open now', () => ls().tcpConnections)
    f.gauge('egressd_dns_tcp_clients', 'Client addresses holding at least one TCP connection now', () => ls().tcpClients)
    f.gauge('egressd_dns_tcp_queued_bytes', 'Answer bytes waiting to be written to client TCP connections, all together', () => ls().tcpQueuedBytes)
    f.gauge('egressd_dns_tcp_max_queued_bytes', 'Answer bytes waiting to be written to the fullest client TCP connection', () => ls().tcpMaxQueuedBytes)
    f.gauge('egressd_dns_tcp_write_blocked_connections', 'Client TCP connections not read from now because their answers do not drain', () => ls().tcpWriteBlocked)
    f.counters('egressd_dns_udp_kernel_drops_total',
      'Queries the kernel dropped on the UDP listener sockets (receive buffer full: the event loop did not read in time), per listener; none when /proc/net/udp cannot be read',
      ['listener'], () => ls().udp.flatMap(u => u.kernelDrops === undefined ? [] : [[{ listener: u.address }, u.kernelDrops] as const]))
    f.gauges('egressd_dns_udp_receive_buffer_bytes', 'Receive buffer (SO_RCVBUF) of each UDP listener socket as the kernel reports it (Linux: twice what it holds for data)',
      ['listener'], () => ls().udp.map(u => [{ listener: u.address }, u.receiveBufferBytes]))
  }

  // Cache
  f.gauge('egressd_cache_entries', 'Answers in the cache', () => host.cache.size)
  f.counter('egressd_cache_hits_total', 'Cache lookups that found a live answer', () => host.cache.stats.hits)
  f.counter('egressd_cache_misses_total', 'Cache lookups that found nothing live', () => host.cache.stats.misses)
  f.counter('egressd_cache_evictions_total', 'Answers evicted to make room', () => host.cache.stats.evictions)

  // Upstreams
  const health = perScrape(() => host.pool.health())
  f.histogram('egressd_upstream_latency_seconds', 'Time until an upstream answered, per upstream', ['upstream'], LATENCY_BUCKETS_MS.map(ms => ms / 1000),
    () => host.pool.latency().map(h => ({ labels: { upstream: h.url }, counts: h.counts, sum: h.sumMs / 1000 })))
  f.gauges('egressd_upstream_healthy', '1 if the upstream answered its last query, 0 if it is failing', ['upstream'], () => health().map(h => [{ upstream: h.url }, h.healthy ? 1 : 0]))
  f.counters('egressd_upstream_queries_total', 'Queries sent to each upstream', ['upstream'], () => health().map(h => [{ upstream: h.url }, h.queries]))
  f.counters('egressd_upstream_failures_total', 'Failed queries (timeout, network, bad answer, SERVFAIL) per upstream', ['upstream'], () => health().map(h => [{ upstream: h.url }, h.failures]))
  f.counter('egressd_upstream_servfails_total', 'SERVFAIL answers from upstreams, all upstreams together (each also in egressd_upstream_failures_total)', () => m.upstreamServfails)
  f.counters('egressd_upstream_dropped_packets_total', 'Packets from (or claiming to be from) upstreams thrown away, by reason', ['reason'],
    () => Object.entries(m.upstreamDropped).map(([reason, n]) => [{ reason }, n]))

  // Lists and policy
  const lists = (): EngineBuild['lists'] => host.policyBuild.lists
  f.gauges('egressd_list_entries', 'Rules loaded from each list, by category and list', ['category', 'list'], () => lists().map(l => [{ category: l.category, list: l.list }, l.rules]))
  f.gauges('egressd_list_skipped_lines', 'Lines skipped in each list', ['category', 'list'], () => lists().map(l => [{ category: l.category, list: l.list }, l.skipped]))
  f.gauges('egressd_list_last_update_timestamp_seconds', 'When each list was last loaded into the policy (Unix time)', ['category', 'list'],
    () => lists().map(l => [{ category: l.category, list: l.list }, host.policyLoadedAt / 1000]))
  const sources = perScrape((): readonly ListSourceStatus[] => host.lists?.status() ?? [])
  f.gauges('egressd_list_source_last_success_timestamp_seconds', 'URL sources: when the copy in use was last confirmed current (Unix time; 0 = never)', ['source'],
    () => sources().map(x => [{ source: x.name }, (x.lastSuccess ?? 0) / 1000]))
  f.gauges('egressd_list_source_last_success_age_seconds',
    'URL sources: seconds since the copy in use was last confirmed current (since egressd started when it never was); compare with egressd_list_source_update_interval_seconds', ['source'],
    () => sources().map(x => [{ source: x.name }, Math.max(0, c.now() - (x.lastSuccess ?? host.startedAt)) / 1000]))
  f.gauges('egressd_list_source_update_interval_seconds', 'URL sources: how often the copy is checked (blocklists.sources[].update.intervalMs; each wait jittered by ±10 %)', ['source'],
    () => sources().map(x => [{ source: x.name }, x.intervalMs / 1000]))
  f.gauges('egressd_list_source_fetched_timestamp_seconds', 'URL sources: when the copy in use was downloaded (Unix time; 0 = no copy)', ['source'],
    () => sources().map(x => [{ source: x.name }, (x.fetchedAt ?? 0) / 1000]))
  f.gauges('egressd_list_source_entries', 'URL sources: entries of the copy in use', ['source'], () => sources().map(x => [{ source: x.name }, x.entries ?? 0]))
  f.counters('egressd_list_source_rejected_total', 'URL sources: downloads rejected (fetch errors, signatures, checks)', ['source'], () => sources().map(x => [{ source: x.name }, x.rejected]))
  f.gauge('egressd_policy_generation', 'Generation of the policy engine in force (grows with every rebuild)', () => host.policy.engine.generation)

  // Config reloads
  f.counters('egressd_config_reloads_total',
    'Config reloads by trigger (signal: SIGHUP / systemctl reload, api: POST /api/v1/reload) and outcome (applied: something changed; unchanged; rejected: invalid, nothing changed)',
    ['trigger', 'outcome'], function * () {
      const r = host.reloads
      if (r === undefined) return
      for (const trigger of RELOAD_TRIGGERS) for (const outcome of RELOAD_OUTCOMES) yield [{ trigger, outcome }, r.counts[trigger][outcome]]
    })
  f.gauge('egressd_config_last_applied_reload_timestamp_seconds', 'When the last reload that changed something finished (Unix time; 0 = none since egressd started)',
    () => (host.reloads?.lastAppliedAt ?? 0) / 1000)

  // Block log
  const bl = perScrape(() => host.blockLogFigures())
  f.gauge('egressd_blocklog_queue_depth', 'Block events waiting to be written to the store', () => bl()?.queueDepth ?? 0)
  f.counter('egressd_blocklog_dropped_total', 'Block events dropped because the queue was full or the store failed', () => bl()?.dropped ?? 0)
  f.gauge('egressd_blocklog_last_drop_timestamp_seconds', 'When a block event was last dropped (Unix time; 0 = never)', () => (bl()?.lastDropAt ?? 0) / 1000)
  f.gauge('egressd_blocklog_queue_max', 'store.queueMax: block events beyond it are dropped', () => bl()?.queueMax ?? 0)
  f.counter('egressd_blocklog_written_total', 'Block events written to the store (rows)', () => bl()?.written ?? 0)
  f.counter('egressd_blocklog_write_failures_total', 'Failed block-log write attempts (each batch is kept and retried) and writer thread deaths', () => bl()?.failures ?? 0)
  f.gauge('egressd_blocklog_consecutive_write_failures', 'Failed block-log write attempts since the last successful one (0: writing)', () => bl()?.consecutiveFailures ?? 0)
  f.gauge('egressd_blocklog_writing', '1 if the last block-log write attempt succeeded and none hangs, 0 if writes fail or stall', () => {
    const b = bl()
    return b === undefined || (b.state ?? 'ok') !== 'ok' ? 0 : 1
  })
  f.gauge('egressd_blocklog_last_success_timestamp_seconds', 'When a block-log batch was last committed (Unix time; 0 = never)', () => (bl()?.lastOkAt ?? 0) / 1000)
  f.gauge('egressd_blocklog_held_for_dns', '1 while block-log writes are held back because DNS needs its whole core and the writer shares it (saturation: events queue, then drop)',
    () => bl()?.heldForDns === true ? 1 : 0)
  f.counter('egressd_blocklog_writer_busy_seconds_total', 'Time the block-log writer thread spent in write transactions', () => (bl()?.writer?.busyMs ?? 0) / 1000)
  f.counter('egressd_blocklog_writer_cpu_wait_seconds_total', 'Of the writer\'s write time, how long it was runnable but waited for a CPU (its core busy with DNS or other work)',
    () => (bl()?.writer?.cpuWaitMs ?? 0) / 1000)
  f.gauges('egressd_blocklog_last_error_timestamp_seconds', 'When a block-log write last failed, by its error code (Unix time)', ['code'], () => {
    const e = bl()?.lastError
    return e === undefined ? [] : [[{ code: e.code }, e.at / 1000]]
  })

  // Store files: stat'ed at scrape (asynchronously: a slow disk does not hold the event loop).
  f.gauges('egressd_store_size_bytes', 'Size of the store files by store (blocklog: the block log, policy: custom rules, overrides and audit log) and file (main, wal)',
    ['store', 'file'], async () => {
      const files: Array<readonly [Labels, string]> = []
      const blocklog = host.db?.name
      if (blocklog !== undefined && blocklog !== ':memory:') files.push([{ store: 'blocklog', file: 'main' }, blocklog], [{ store: 'blocklog', file: 'wal' }, `${blocklog}-wal`])
      const policy = host.policyStore?.path
      if (policy !== undefined) files.push([{ store: 'policy', file: 'main' }, policy], [{ store: 'policy', file: 'wal' }, `${policy}-wal`])
      const sizes = await Promise.all(files.map(([, path]) => fileSize(path)))
      return files.flatMap(([labels], i) => sizes[i] === undefined ? [] : [[labels, sizes[i]] as const])
    })

  // Firewall
  f.counter('egressd_firewall_sync_attempts_total', 'nftables syncs attempted (firewall.sync)', () => host.firewall.attempts)
  f.counter('egressd_firewall_sync_failures_total', 'nftables syncs that failed', () => host.firewall.failures)
  f.gauge('egressd_firewall_sync_failing', '1 if the last nftables sync failed (until one succeeds), else 0', () => host.firewall.lastError === undefined ? 0 : 1)
  f.gauge('egressd_firewall_last_success_timestamp_seconds', 'When an nftables sync last succeeded (Unix time; 0 = never)', () => (host.firewall.lastOkAt ?? 0) / 1000)
  // Learned-set elements between full syncs (firewall/elements.ts) and the evidence sets read back
  // (firewall/evidence.ts); zeros while firewall.sync (or firewall.evidence.enabled) is off.
  const el = (): ElementSyncState | undefined => host.firewallSync?.elements.state
  const ev = (): EvidenceState | undefined => host.firewallSync?.evidence.state
  f.counter('egressd_firewall_element_batches_total', 'Learned-set element batches run (one nft -f each, at most about once a second; firewall.sync)', () => el()?.batches ?? 0)
  f.counter('egressd_firewall_element_failures_total', 'Learned-set element batches nft refused (their changes wait for the next full sync, which a failure asks for)', () => el()?.failures ?? 0)
  f.counters('egressd_firewall_element_changes_total',
    'Learned-set element changes by outcome: added (or refreshed) and removed by batches that succeeded, dropped (carried by a failed batch), refused (pending changes full, or not an address)',
    ['change'], () => {
      const s = el()
      return [[{ change: 'added' }, s?.added ?? 0], [{ change: 'removed' }, s?.removed ?? 0], [{ change: 'dropped' }, s?.droppedElements ?? 0], [{ change: 'refused' }, s?.refused ?? 0]]
    })
  f.gauge('egressd_firewall_element_pending', 'Learned-set element changes waiting for their batch', () => host.firewallSync?.elements.pending ?? 0)
  f.gauge('egressd_firewall_element_last_success_timestamp_seconds', 'When a learned-set element batch last succeeded (Unix time; 0 = never)', () => (el()?.lastOkAt ?? 0) / 1000)
  f.counter('egressd_firewall_evidence_reads_total', 'Evidence set reads that succeeded (nft -j list set, one per family every firewall.evidence.intervalMs)', () => ev()?.reads ?? 0)
  f.counter('egressd_firewall_evidence_failures_total', 'Evidence set reads that failed (no table or set, nft missing or refused, output not understood)', () => ev()?.failures ?? 0)
  f.counter('egressd_firewall_evidence_bad_elements_total', 'Evidence set elements not understood (skipped)', () => ev()?.badElements ?? 0)
  f.counter('egressd_firewall_evidence_hits_total',
    'Firewall events reported from the evidence sets (block-log events matched=firewall): at most one per client and destination per firewall.evidence.perPairSeconds', () => ev()?.hits ?? 0)
  f.counter('egressd_firewall_evidence_suppressed_total', 'Evidence elements with new attempts inside their pair\'s window (the attempts go with its next event)', () => ev()?.suppressed ?? 0)
  f.counter('egressd_firewall_evidence_evicted_pairs_total', 'Client and destination pairs dropped from the full pair map with attempts not yet reported', () => ev()?.evictedPairs ?? 0)
  f.gauge('egressd_firewall_evidence_elements', 'Elements in the evidence sets at the last read (client . destination . proto . set, both families)', () => ev()?.elements ?? 0)
  f.gauge('egressd_firewall_evidence_set_full', '1 if an evidence set was at its size at the last read (rejects go on; new client and destination pairs are not recorded until old ones time out)',
    () => ev()?.full === true ? 1 : 0)
  f.gauge('egressd_firewall_evidence_port_set_full', '1 if a port sample set was at its size at the last read (ports of new attempts may be reported as 0)', () => ev()?.portsFull === true ? 1 : 0)
  f.counter('egressd_firewall_evidence_unknown_set_hits_total', 'Evidence hits whose set tag named no set egressd knows (a table rendered with other categories): counted, not logged',
    () => host.firewallUnknownSet?.hits ?? 0)
  f.gauge('egressd_firewall_evidence_last_success_timestamp_seconds', 'When an evidence set was last read (Unix time; 0 = never)', () => (ev()?.lastOkAt ?? 0) / 1000)
  // Every category the firewall carries has a series (0 until an attempt), so rate() sees the first ones.
  const fwCategories = perScrape(() => firewallCategories(host.policyBuild))
  f.counters('egressd_firewall_blocked_total',
    'Connection attempts (packets) the firewall rejected to a blocked category\'s addresses (published ranges, shared ranges, learned sets), as read back from the evidence sets, by category; ' +
    '0 while firewall.sync or firewall.evidence.enabled is off', ['category'],
    () => withCategories(fwCategories(), m.firewallByCategory))

  // Learned address sets (learn/): with learning.enabled off (or the policy file unavailable)
  // every learning family reads 0 and egressd_learned_addresses has no series.
  const lf = perScrape(() => host.learning?.figures())
  const learnedByCategory = perScrape((): Rows => {
    const learning = host.learning
    if (learning === undefined) return []
    const counts = new Map<string, number>()
    for (const [category, e] of learning.book.elements()) counts.set(category, e.v4.length + e.v6.length)
    return withCategories(fwCategories(), counts)
  })
  f.gauges('egressd_learned_addresses', 'Learned addresses in the firewall\'s learned sets now, by category (every category the firewall carries; none with learning off)',
    ['category'], learnedByCategory)
  f.gauge('egressd_learned_held_addresses', 'Learned addresses the collateral guard holds back now (an allowed name resolved to them, or a never-block range)', () => lf()?.book.held ?? 0)
  f.counter('egressd_learned_added_total', 'Addresses that entered a learned set (re-entries after expiry or a hold counted again)', () => lf()?.book.added ?? 0)
  f.counter('egressd_learned_removed_by_guard_total', 'Learned addresses taken out of a set because an allowed name later resolved to them', () => lf()?.book.removedByGuard ?? 0)
  f.counter('egressd_learned_expired_total', 'Learned addresses that expired (not seen again within their expiry)', () => lf()?.book.expired ?? 0)
  f.counter('egressd_learned_evicted_total', 'Learned addresses dropped by the learning.maxLearned bound (the least recently seen)', () => lf()?.book.evicted ?? 0)
  f.counter('egressd_learning_queued_total', 'Blocked names queued for a background resolution', () => lf()?.learner.queued ?? 0)
  f.counter('egressd_learning_dropped_total', 'Blocked queries not considered for learning because the queue was full (learning.queueMax; a flood of distinct names)', () => lf()?.learner.dropped ?? 0)
  f.gauge('egressd_learning_queue_depth', 'Blocked names waiting for a background resolution', () => lf()?.learner.queueDepth ?? 0)
  f.gauge('egressd_learning_queue_max', 'learning.queueMax: blocked names beyond it are dropped (0 with learning off)', () => host.learning === undefined ? 0 : host.config.learning.queueMax)
  f.gauge('egressd_learning_inflight', 'Background resolutions in flight', () => lf()?.learner.inflight ?? 0)
  f.counter('egressd_learning_resolutions_started_total', 'Background resolutions started (blocked names, probe names and the guard\'s everyday names; at most learning.resolvesPerSecond)',
    () => lf()?.learner.started ?? 0)
  f.counters('egressd_learning_resolutions_total', 'Background resolutions finished, by result: resolved (at least one answer), failed (every question failed)', ['result'],
    () => [[{ result: 'resolved' }, lf()?.learner.resolved ?? 0], [{ result: 'failed' }, lf()?.learner.failed ?? 0]])
  f.counter('egressd_learning_probes_total', 'Packs\' probe names queued by the probe schedule (learning.probeIntervalSeconds)', () => lf()?.learner.probesQueued ?? 0)
  f.counter('egressd_learning_probes_dropped_total', 'Probe names not queued because their queue was full (learning.queueMax)', () => lf()?.learner.probesDropped ?? 0)
  f.gauge('egressd_learning_probe_queue_depth', 'Probe names waiting for a background resolution', () => lf()?.learner.probeQueueDepth ?? 0)
  f.counter('egressd_learning_guard_seeds_total', 'Everyday allowed names queued by the probe schedule, resolved so the guard knows their addresses (guard seeds)', () => lf()?.learner.seedsQueued ?? 0)
  f.counter('egressd_learning_guard_seeds_dropped_total', 'Guard seeds not queued because their queue was full (learning.queueMax)', () => lf()?.learner.seedsDropped ?? 0)
  f.gauge('egressd_learning_guard_seed_queue_depth', 'Guard seeds waiting for a background resolution', () => lf()?.learner.seedQueueDepth ?? 0)
  f.gauge('egressd_guard_allowed_addresses', 'Addresses of allowed answers the collateral guard remembers now (learning.maxAllowedAddresses at most)', () => lf()?.guard.allowedAddresses ?? 0)
  f.counter('egressd_guard_evicted_total', 'Remembered allowed addresses evicted by the learning.maxAllowedAddresses bound', () => lf()?.guard.evicted ?? 0)
  f.counter('egressd_learning_store_failures_total', 'Writes of learned addresses and guard observations to the policy file that failed (retried at the next flush)', () => lf()?.store.failures ?? 0)
  f.gauge('egressd_learning_store_pending', 'Learned-address and guard changes not yet written to the policy file', () => lf()?.store.pending ?? 0)

  // API
  f.counter('egressd_api_rate_limited_total', 'API requests refused by the per-client rate limit', c.rateLimited)
  const al = c.limits
  if (al !== undefined) {
    f.counters('egressd_api_connections_refused_total', 'API connections closed on arrival, by the limit in the way (api.server.maxConnectionsPerClient: client, maxConnections: total)',
      ['limit'], () => [[{ limit: 'client' }, al.connectionsRefused.client], [{ limit: 'total' }, al.connectionsRefused.total]])
    f.counter('egressd_api_request_timeouts_total', 'API requests closed (408) because their headers or body took too long (api.server.headersTimeoutMs, requestTimeoutMs)', () => al.requestTimeouts)
    f.gauge('egressd_api_live_tail_streams', 'Block-log live tails (SSE) open now', () => al.streamsOpen)
    f.counters('egressd_api_live_tail_refused_total', 'Live tails refused, by the limit in the way (api.liveTail.maxStreamsPerClient: client, maxStreams: total)',
      ['limit'], () => [[{ limit: 'client' }, al.streamsRefused.client], [{ limit: 'total' }, al.streamsRefused.total]])
    f.counters('egressd_api_live_tail_closed_total', 'Live tails closed because the client did not keep up (slow_consumer: over api.liveTail.maxQueuedBytesPerStream; stuck: no drain for stuckTimeoutMs)',
      ['reason'], () => [[{ reason: 'slow_consumer' }, al.streamsClosed.slowConsumer], [{ reason: 'stuck' }, al.streamsClosed.stuck]])
  }
  return {
    registry,
    contentType: registry.contentType,
    render: async () => {
      scrape++
      return await registry.metrics()
    },
    close: () => { registry.clear() }
  }
}
