// /metrics in the Prometheus text exposition format (version 0.0.4), rendered from the daemon's
// plain counters at scrape time: nothing is counted here, so the DNS path pays nothing for it.
// Event-loop lag comes from EventLoopLag (event-loop-lag.ts), taken at each scrape (so it
// describes the time since the previous one). The DNS listener's socket figures (TCP connections
// and unsent answers, UDP kernel drops from /proc) are read when scraped.

import { QUERY_RESULTS } from '../dns/metrics.js'
import { LATENCY_BUCKETS_MS } from '../dns/upstream/pool.js'
import type { EventLoopLag } from './event-loop-lag.js'
import type { ApiHost } from './host.js'
import type { ApiLimitCounters } from './rate-limit.js'

type Labels = Readonly<Record<string, string>>
type Sample = readonly [labels: Labels, value: number, suffix?: string]

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabel (v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function formatValue (v: number): string {
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

class Exposition {
  readonly #out: string[] = []

  family (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: readonly Sample[]): void {
    this.#out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`)
    for (const [labels, value, suffix] of samples) {
      const keys = Object.keys(labels)
      const l = keys.length === 0 ? '' : `{${keys.map(k => `${k}="${escapeLabel(labels[k])}"`).join(',')}}`
      this.#out.push(`${name}${suffix ?? ''}${l} ${formatValue(value)}`)
    }
  }

  text (): string { return this.#out.join('\n') + '\n' }
}

export interface MetricsContext {
  readonly host: ApiHost
  readonly version: string
  readonly lag: EventLoopLag
  /** API requests refused by the rate limit. */
  readonly rateLimited: () => number
  /** What the API's connection and live-tail limits refused or cut off. */
  readonly limits?: ApiLimitCounters
}

export function renderMetrics (c: MetricsContext): string {
  const { host } = c
  const m = host.metrics
  const e = new Exposition()
  const one = (v: number): Sample[] => [[{}, v]]

  e.family('egressd_build_info', 'gauge', 'egressd version and Node.js runtime', [[{ version: c.version, node: process.version }, 1]])
  e.family('egressd_start_time_seconds', 'gauge', 'When this egressd started (Unix time)', one(host.startedAt / 1000))

  // DNS queries
  const results: Sample[] = []
  for (const protocol of ['udp', 'tcp'] as const) {
    for (const r of QUERY_RESULTS) results.push([{ protocol, result: r }, m.results[protocol][r]])
  }
  e.family('egressd_dns_queries_total', 'counter',
    'Client queries by protocol and result: resolved (allowed, from upstream), cached (allowed, from cache), blocked, servfail, refused, formerr, notimp, dropped, badvers (EDNS version above 0), local (answered by egressd about itself: dns.chaos.answer)', results)
  e.family('egressd_dns_blocked_total', 'counter', 'Blocked queries by category', [...m.blockedByCategory].map(([category, n]) => [{ category }, n]))
  e.family('egressd_dns_monitored_total', 'counter', 'Policy matches of monitor-mode categories (answered normally) by category',
    [...m.monitoredByCategory].map(([category, n]) => [{ category }, n]))
  e.family('egressd_dns_malformed_total', 'counter', 'Client packets that were not queries egressd serves, by kind',
    Object.entries(m.malformed).map(([kind, n]) => [{ kind }, n]))
  e.family('egressd_dns_inflight', 'gauge', 'Client queries being answered now', one(host.inflight))
  e.family('egressd_dns_coalesced_total', 'counter', 'Queries that joined an identical upstream query in flight', one(m.coalesced))
  e.family('egressd_dns_overloaded_total', 'counter', 'Queries refused because too many upstream queries were in flight', one(m.overloaded))
  e.family('egressd_dns_refused_clients_total', 'counter', 'Queries refused because their client address is not in dns.allowClients', one(m.refusedClients))
  e.family('egressd_dns_local_answers_total', 'counter', 'Queries answered by egressd itself before cache, policy and upstream, by kind: badvers (EDNS version above 0), chaos (CHAOS class: REFUSED or dns.chaos.answer), zone-transfer (AXFR/IXFR: REFUSED)',
    Object.entries(m.localAnswers).map(([kind, n]) => [{ kind }, n]))
  e.family('egressd_dns_truncated_total', 'counter', 'UDP answers truncated (TC set)', one(m.truncated))
  e.family('egressd_dns_tcp_connections_total', 'counter',
    'Client TCP connections by event: accepted, rejected (dns.tcp.maxConnections), clientLimited (dns.tcp.maxConnectionsPerClient), ' +
    'idleClosed, errors, writePaused (reading paused: answers over dns.tcp.maxQueuedBytesPerConnection), stuckClosed (no drain within dns.tcp.stuckTimeoutMs)',
    Object.entries(m.tcp).map(([event, n]) => [{ event }, n]))
  const ls = host.dnsSockets?.()
  if (ls !== undefined) {
    e.family('egressd_dns_tcp_connections', 'gauge', 'Client TCP connections open now', one(ls.tcpConnections))
    e.family('egressd_dns_tcp_clients', 'gauge', 'Client addresses holding at least one TCP connection now', one(ls.tcpClients))
    e.family('egressd_dns_tcp_queued_bytes', 'gauge', 'Answer bytes waiting to be written to client TCP connections, all together', one(ls.tcpQueuedBytes))
    e.family('egressd_dns_tcp_max_queued_bytes', 'gauge', 'Answer bytes waiting to be written to the fullest client TCP connection', one(ls.tcpMaxQueuedBytes))
    e.family('egressd_dns_tcp_write_blocked_connections', 'gauge', 'Client TCP connections not read from now because their answers do not drain', one(ls.tcpWriteBlocked))
    e.family('egressd_dns_udp_kernel_drops_total', 'counter', 'Queries the kernel dropped on the UDP listener sockets (receive buffer full: the event loop did not read in time), per listener; none when /proc/net/udp cannot be read',
      ls.udp.flatMap(u => u.kernelDrops === undefined ? [] : [[{ listener: u.address }, u.kernelDrops] as const]))
    e.family('egressd_dns_udp_receive_buffer_bytes', 'gauge', 'Receive buffer (SO_RCVBUF) of each UDP listener socket as the kernel reports it (Linux: twice what it holds for data)',
      ls.udp.map(u => [{ listener: u.address }, u.receiveBufferBytes]))
  }

  // Cache
  const cs = host.cache.stats
  e.family('egressd_cache_entries', 'gauge', 'Answers in the cache', one(host.cache.size))
  e.family('egressd_cache_hits_total', 'counter', 'Cache lookups that found a live answer', one(cs.hits))
  e.family('egressd_cache_misses_total', 'counter', 'Cache lookups that found nothing live', one(cs.misses))
  e.family('egressd_cache_evictions_total', 'counter', 'Answers evicted to make room', one(cs.evictions))

  // Upstreams
  const health = host.pool.health()
  const hist: Sample[] = []
  for (const h of host.pool.latency()) {
    let cumulative = 0
    LATENCY_BUCKETS_MS.forEach((le, i) => {
      cumulative += h.counts[i]
      hist.push([{ upstream: h.url, le: String(le / 1000) }, cumulative, '_bucket'])
    })
    cumulative += h.counts[LATENCY_BUCKETS_MS.length]
    hist.push([{ upstream: h.url, le: '+Inf' }, cumulative, '_bucket'])
    hist.push([{ upstream: h.url }, h.sumMs / 1000, '_sum'])
    hist.push([{ upstream: h.url }, cumulative, '_count'])
  }
  e.family('egressd_upstream_latency_seconds', 'histogram', 'Time until an upstream answered, per upstream', hist)
  e.family('egressd_upstream_healthy', 'gauge', '1 if the upstream answered its last query, 0 if it is failing', health.map(h => [{ upstream: h.url }, h.healthy ? 1 : 0]))
  e.family('egressd_upstream_queries_total', 'counter', 'Queries sent to each upstream', health.map(h => [{ upstream: h.url }, h.queries]))
  e.family('egressd_upstream_failures_total', 'counter', 'Failed queries (timeout, network, bad answer, SERVFAIL) per upstream', health.map(h => [{ upstream: h.url }, h.failures]))
  e.family('egressd_upstream_servfails_total', 'counter', 'SERVFAIL answers from upstreams, all upstreams together (each also in egressd_upstream_failures_total)', one(m.upstreamServfails))
  e.family('egressd_upstream_dropped_packets_total', 'counter', 'Packets from (or claiming to be from) upstreams thrown away, by reason',
    Object.entries(m.upstreamDropped).map(([reason, n]) => [{ reason }, n]))

  // Lists and policy
  const build = host.policyBuild
  e.family('egressd_list_entries', 'gauge', 'Rules loaded from each list, by category and list', build.lists.map(l => [{ category: l.category, list: l.list }, l.rules]))
  e.family('egressd_list_skipped_lines', 'gauge', 'Lines skipped in each list', build.lists.map(l => [{ category: l.category, list: l.list }, l.skipped]))
  e.family('egressd_list_last_update_timestamp_seconds', 'gauge', 'When each list was last loaded into the policy (Unix time)',
    build.lists.map(l => [{ category: l.category, list: l.list }, host.policyLoadedAt / 1000]))
  const sources = host.lists?.status() ?? []
  e.family('egressd_list_source_last_success_timestamp_seconds', 'gauge', 'URL sources: when the copy in use was last confirmed current (Unix time; 0 = never)',
    sources.map(x => [{ source: x.name }, (x.lastSuccess ?? 0) / 1000]))
  e.family('egressd_list_source_fetched_timestamp_seconds', 'gauge', 'URL sources: when the copy in use was downloaded (Unix time; 0 = no copy)',
    sources.map(x => [{ source: x.name }, (x.fetchedAt ?? 0) / 1000]))
  e.family('egressd_list_source_entries', 'gauge', 'URL sources: entries of the copy in use', sources.map(x => [{ source: x.name }, x.entries ?? 0]))
  e.family('egressd_list_source_rejected_total', 'counter', 'URL sources: downloads rejected (fetch errors, signatures, checks)', sources.map(x => [{ source: x.name }, x.rejected]))
  e.family('egressd_policy_generation', 'gauge', 'Generation of the policy engine in force (grows with every rebuild)', one(host.policy.engine.generation))

  // Block log
  const bl = host.blockLogFigures()
  e.family('egressd_blocklog_queue_depth', 'gauge', 'Block events waiting to be written to the store', one(bl?.queueDepth ?? 0))
  e.family('egressd_blocklog_dropped_total', 'counter', 'Block events dropped because the queue was full or the store failed', one(bl?.dropped ?? 0))
  e.family('egressd_blocklog_queue_max', 'gauge', 'store.queueMax: block events beyond it are dropped', one(bl?.queueMax ?? 0))
  e.family('egressd_blocklog_written_total', 'counter', 'Block events written to the store', one(bl?.written ?? 0))
  e.family('egressd_blocklog_write_failures_total', 'counter', 'Failed block-log write attempts (each batch is kept and retried) and writer thread deaths', one(bl?.failures ?? 0))
  e.family('egressd_blocklog_consecutive_write_failures', 'gauge', 'Failed block-log write attempts since the last successful one (0: writing)', one(bl?.consecutiveFailures ?? 0))
  e.family('egressd_blocklog_writing', 'gauge', '1 if the last block-log write attempt succeeded and none hangs, 0 if writes fail or stall', one(bl === undefined || (bl.state ?? 'ok') !== 'ok' ? 0 : 1))
  e.family('egressd_blocklog_last_success_timestamp_seconds', 'gauge', 'When a block-log batch was last committed (Unix time; 0 = never)', one((bl?.lastOkAt ?? 0) / 1000))
  e.family('egressd_blocklog_held_for_dns', 'gauge', '1 while block-log writes are held back because DNS needs its whole core and the writer shares it (saturation: events queue, then drop)', one(bl?.heldForDns === true ? 1 : 0))
  e.family('egressd_blocklog_writer_busy_seconds_total', 'counter', 'Time the block-log writer thread spent in write transactions', one((bl?.writer?.busyMs ?? 0) / 1000))
  e.family('egressd_blocklog_writer_cpu_wait_seconds_total', 'counter', 'Of the writer\'s write time, how long it was runnable but waited for a CPU (its core busy with DNS or other work)', one((bl?.writer?.cpuWaitMs ?? 0) / 1000))
  e.family('egressd_blocklog_last_error_timestamp_seconds', 'gauge', 'When a block-log write last failed, by its error code (Unix time)', bl?.lastError === undefined ? [] : [[{ code: bl.lastError.code }, bl.lastError.at / 1000]])

  // Firewall, API
  e.family('egressd_firewall_sync_failures_total', 'counter', 'nftables syncs that failed', one(host.firewall.failures))
  e.family('egressd_api_rate_limited_total', 'counter', 'API requests refused by the per-client rate limit', one(c.rateLimited()))
  const al = c.limits
  if (al !== undefined) {
    e.family('egressd_api_connections_refused_total', 'counter', 'API connections closed on arrival, by the limit in the way (api.server.maxConnectionsPerClient: client, maxConnections: total)',
      [[{ limit: 'client' }, al.connectionsRefused.client], [{ limit: 'total' }, al.connectionsRefused.total]])
    e.family('egressd_api_request_timeouts_total', 'counter', 'API requests closed (408) because their headers or body took too long (api.server.headersTimeoutMs, requestTimeoutMs)', one(al.requestTimeouts))
    e.family('egressd_api_live_tail_streams', 'gauge', 'Block-log live tails (SSE) open now', one(al.streamsOpen))
    e.family('egressd_api_live_tail_refused_total', 'counter', 'Live tails refused, by the limit in the way (api.liveTail.maxStreamsPerClient: client, maxStreams: total)',
      [[{ limit: 'client' }, al.streamsRefused.client], [{ limit: 'total' }, al.streamsRefused.total]])
    e.family('egressd_api_live_tail_closed_total', 'counter', 'Live tails closed because the client did not keep up (slow_consumer: over api.liveTail.maxQueuedBytesPerStream; stuck: no drain for stuckTimeoutMs)',
      [[{ reason: 'slow_consumer' }, al.streamsClosed.slowConsumer], [{ reason: 'stuck' }, al.streamsClosed.stuck]])
  }

  // Process
  const mem = process.memoryUsage()
  e.family('process_resident_memory_bytes', 'gauge', 'Resident set size', one(mem.rss))
  e.family('nodejs_heap_used_bytes', 'gauge', 'V8 heap in use', one(mem.heapUsed))
  e.family('nodejs_heap_total_bytes', 'gauge', 'V8 heap allocated', one(mem.heapTotal))
  e.family('nodejs_external_memory_bytes', 'gauge', 'Memory of C++ objects bound to JavaScript (buffers)', one(mem.external))
  const lag = c.lag.take()
  e.family('nodejs_eventloop_lag_seconds', 'gauge', `Event-loop delay since the previous scrape (how late a ${c.lag.resolutionMs} ms timer fires): mean, p50, p99 and max`,
    [[{ stat: 'mean' }, lag.mean], [{ stat: 'p50' }, lag.p50], [{ stat: 'p99' }, lag.p99], [{ stat: 'max' }, lag.max]])
  return e.text()
}
