// /metrics parsed by a strict Prometheus text-format (0.0.4) parser written here: every sample
// belongs to a family announced by HELP and TYPE, names and labels are well formed, label values
// correctly escaped, no series twice, histograms cumulative with +Inf = _count. Then the counters
// must move when real `dig` queries are sent.

import t from 'tap'
import dgram from 'node:dgram'
import * as packet from 'dns-packet'
import { dig } from '../helpers/dig.js'
import { answeringUpstream, call, startApiDaemon, TOKENS, type ApiDaemon } from './helpers.js'

interface Family { name: string, type: string, help: string, samples: Array<{ name: string, labels: Record<string, string>, value: number }> }

/** Parses the text format strictly; throws with the line number on anything malformed. */
export function parseExposition (text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
  let current: Family | undefined
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, i) => {
    const fail = (m: string): never => { throw new Error(`line ${i + 1}: ${m}: ${line}`) }
    if (line.startsWith('# HELP ')) {
      const m = /^# HELP (\S+) (.*)$/.exec(line) ?? fail('bad HELP')
      if (!NAME.test(m[1])) fail('bad metric name')
      if (families.has(m[1])) fail('family announced twice')
      current = { name: m[1], type: '', help: m[2], samples: [] }
      families.set(m[1], current)
      return
    }
    if (line.startsWith('# TYPE ')) {
      const m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? fail('bad TYPE')
      if (current?.name !== m[1] || current.type !== '' || current.samples.length > 0) fail('TYPE must follow its HELP, before samples')
      current.type = m[2]
      return
    }
    if (line.startsWith('#') || line === '') fail('unexpected comment or blank line')
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line) ?? fail('bad sample')
    const [, name, , body, valueText] = m
    if (current === undefined || current.type === '') fail('sample outside a family')
    const fam = current as Family
    const allowed = fam.type === 'histogram' ? [`${fam.name}_bucket`, `${fam.name}_sum`, `${fam.name}_count`] : [fam.name]
    if (!allowed.includes(name)) fail(`sample ${name} does not belong to family ${fam.name}`)
    const labels: Record<string, string> = {}
    if (body !== undefined) {
      let rest = body
      while (rest.length > 0) {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/.exec(rest) ?? fail('bad label')
        if (lm[1] in labels) fail('label twice')
        labels[lm[1]] = lm[2].replace(/\\(["\\n])/g, (_x, c: string) => c === 'n' ? '\n' : c)
        rest = rest.slice(lm[0].length)
      }
    }
    if (!/^([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN)$/.test(valueText)) fail('bad value')
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText)
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`
    if (seen.has(key)) fail('series twice')
    seen.add(key)
    if (fam.type === 'counter' && !(value >= 0)) fail('negative counter')
    fam.samples.push({ name, labels, value })
  })
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const series = new Map<string, Family['samples']>()
    for (const s of f.samples) {
      const { le: _le, ...rest } = s.labels
      const k = JSON.stringify(rest)
      series.set(k, [...(series.get(k) ?? []), s])
    }
    for (const [k, ss] of series) {
      const buckets = ss.filter(s => s.name.endsWith('_bucket'))
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i].value < buckets[i - 1].value) throw new Error(`${f.name} ${k}: buckets not cumulative`)
        if (Number(buckets[i].labels.le.replace('+Inf', 'Infinity')) <= Number(buckets[i - 1].labels.le)) throw new Error(`${f.name} ${k}: le not increasing`)
      }
      const inf = buckets.at(-1)
      const count = ss.find(s => s.name.endsWith('_count'))
      if (inf?.labels.le !== '+Inf' || count === undefined || inf.value !== count.value) throw new Error(`${f.name} ${k}: +Inf bucket must equal _count`)
    }
  }
  return families
}

const value = (f: Map<string, Family>, name: string, labels: Record<string, string> = {}, sample = name): number => {
  const fam = f.get(name)
  if (fam === undefined) throw new Error(`no family ${name}`)
  const s = fam.samples.find(x => x.name === sample && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
  return s?.value ?? 0
}

t.test('the parser itself refuses malformed text', async t => {
  const ok = '# HELP a_total A\n# TYPE a_total counter\na_total{x="q\\"\\\\\\n"} 1\n'
  t.equal(parseExposition(ok).get('a_total')?.samples[0].labels.x, 'q"\\\n')
  for (const bad of [
    'a 1\n',
    '# HELP a A\n# TYPE a gauge\na{x="1"} one\n',
    '# HELP a A\n# TYPE a gauge\nb 1\n',
    '# HELP a A\n# TYPE a gauge\na{x="1",x="2"} 1\n',
    '# HELP a A\n# TYPE a gauge\na 1\na 2\n',
    '# HELP a A\n# TYPE a gauge\na{x="\\q"} 1\n',
    '# HELP a A\n# TYPE a gauge\na 1',
    '# HELP h H\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
  ]) t.throws(() => parseExposition(bad), undefined, JSON.stringify(bad))
})

let upstream: Awaited<ReturnType<typeof answeringUpstream>>
let d: ApiDaemon
t.before(async () => {
  upstream = await answeringUpstream()
  d = await startApiDaemon({
    upstreams: [upstream.url],
    // A URL source that cannot be fetched (nothing listens there): status and metrics show its state.
    blocklists: { sources: [{ name: 'central', url: 'https://127.0.0.1:1/list.txt?key=s3cret', category: 'telegram' }] }
  })
})
t.teardown(async () => { await d.close(); await upstream.close() })

const scrape = async (): Promise<Map<string, Family>> => {
  const r = await call(d.base, 'GET', '/metrics', { token: TOKENS.metrics })
  t.equal(r.status, 200)
  t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  return parseExposition(r.text)
}

t.test('every family of the issue is there and well formed', async t => {
  const f = await scrape()
  for (const name of [
    'egressd_dns_queries_total', 'egressd_dns_blocked_total', 'egressd_cache_entries', 'egressd_cache_hits_total', 'egressd_cache_misses_total',
    'egressd_upstream_latency_seconds', 'egressd_upstream_healthy', 'egressd_dns_inflight', 'egressd_list_entries',
    'egressd_list_last_update_timestamp_seconds', 'egressd_blocklog_queue_depth', 'egressd_blocklog_dropped_total',
    'process_resident_memory_bytes', 'nodejs_heap_used_bytes', 'nodejs_eventloop_lag_seconds'
  ]) t.ok(f.has(name), name)
  t.equal(f.get('egressd_upstream_latency_seconds')?.type, 'histogram')
  t.equal(value(f, 'egressd_dns_refused_clients_total'), 0, 'loopback clients are in the default dns.allowClients')
  t.ok(value(f, 'process_resident_memory_bytes') > 1e6)
  t.equal(value(f, 'egressd_upstream_healthy', { upstream: upstream.url }), 1)
  t.ok(value(f, 'egressd_list_entries', { category: 'telegram' }) > 0)
  t.ok(Math.abs(value(f, 'egressd_list_last_update_timestamp_seconds', { category: 'telegram' }) - Date.now() / 1000) < 600)
  t.ok(f.get('egressd_list_source_entries')?.samples.some(x => x.labels.source === 'central'))
  t.equal(value(f, 'egressd_list_source_fetched_timestamp_seconds', { source: 'central' }), 0, 'no copy yet')
})

t.test('status shows the URL source, its state, and no credentials', async t => {
  const r = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.equal(r.status, 200)
  t.match(r.json.sources, [{ name: 'central', category: 'telegram', state: 'no copy yet', entries: null, fetchedAt: null }])
  t.equal(r.json.sources[0].url, 'https://127.0.0.1:1/list.txt?key=REDACTED')
  t.notMatch(r.text, /s3cret/)
})

t.test('counters move with dig queries', async t => {
  const before = await scrape()
  const ask = (name: string, proto: string[] = []) => dig(['@127.0.0.1', '-p', String(d.dnsPort), name, 'A', '+tries=1', '+time=3', ...proto])
  t.equal((await ask('fresh.example.org')).status, 'NOERROR')
  t.equal((await ask('fresh.example.org')).status, 'NOERROR') // cache hit
  t.equal((await ask('web.telegram.org')).status, 'NXDOMAIN')
  t.equal((await ask('web.telegram.org', ['+tcp'])).status, 'NXDOMAIN')
  const after = await scrape()
  const delta = (name: string, labels: Record<string, string> = {}, sample = name): number => value(after, name, labels, sample) - value(before, name, labels, sample)
  t.equal(delta('egressd_dns_queries_total', { protocol: 'udp', result: 'resolved' }), 1)
  t.equal(delta('egressd_dns_queries_total', { protocol: 'udp', result: 'cached' }), 1)
  t.equal(delta('egressd_dns_queries_total', { protocol: 'udp', result: 'blocked' }), 1)
  t.equal(delta('egressd_dns_queries_total', { protocol: 'tcp', result: 'blocked' }), 1)
  t.equal(delta('egressd_dns_blocked_total', { category: 'telegram' }), 2)
  t.equal(delta('egressd_cache_hits_total'), 1)
  t.ok(delta('egressd_cache_misses_total') >= 1)
  t.equal(delta('egressd_cache_entries'), 1)
  t.equal(delta('egressd_upstream_latency_seconds', { upstream: upstream.url, le: '+Inf' }, 'egressd_upstream_latency_seconds_bucket'), 1)
  t.equal(delta('egressd_upstream_latency_seconds', { upstream: upstream.url }, 'egressd_upstream_latency_seconds_count'), 1)
  t.equal(delta('egressd_upstream_queries_total', { upstream: upstream.url }), 1)
})

t.test('event-loop lag: an idle daemon reports a small delay, not the sampling interval; a blocked loop shows', async t => {
  await scrape() // the lag describes the time since the previous scrape
  await new Promise(resolve => setTimeout(resolve, 1000))
  const idle = await scrape()
  const p50 = value(idle, 'nodejs_eventloop_lag_seconds', { stat: 'p50' })
  t.comment(`idle: p50 ${(p50 * 1000).toFixed(2)} ms, mean ${(value(idle, 'nodejs_eventloop_lag_seconds', { stat: 'mean' }) * 1000).toFixed(2)} ms`)
  t.ok(p50 >= 0 && p50 < 0.01, `idle p50 ${p50} s is well under the 20 ms it reported when the sampling interval was counted`)
  const end = Date.now() + 200
  while (Date.now() < end) { /* the daemon is in-process: this blocks its event loop */ }
  await new Promise(resolve => setTimeout(resolve, 100))
  const blocked = await scrape()
  const max = value(blocked, 'nodejs_eventloop_lag_seconds', { stat: 'max' })
  t.ok(max >= 0.18 && max < 2, `a 200 ms block shows as max ${max} s`)
})

t.test('UDP: datagrams the kernel drops on a full listener socket are counted; the receive buffer asked for is logged', async t => {
  const small = await startApiDaemon({ upstreams: [upstream.url], dns: { listen: ['127.0.0.1:0'], udp: { receiveBufferBytes: 4096 } } })
  t.teardown(() => small.close())
  const got = small.logs().find(l => l.msg === 'UDP receive buffer')
  t.ok(got !== undefined, 'what the kernel granted is logged')
  t.equal(got?.requested, 4096)
  t.ok(typeof got?.granted === 'number' && (got.granted as number) >= 4096, `granted ${String(got?.granted)} (Linux reports twice the request)`)
  const scrapeSmall = async (): Promise<Map<string, Family>> => {
    const r = await call(small.base, 'GET', '/metrics', { token: TOKENS.metrics })
    t.equal(r.status, 200)
    return parseExposition(r.text)
  }
  const before = value(await scrapeSmall(), 'egressd_dns_udp_kernel_drops_total')
  t.equal(before, 0, 'nothing dropped yet')

  const sock = dgram.createSocket('udp4')
  t.teardown(() => sock.close())
  await new Promise<void>(resolve => sock.connect(small.dnsPort, '127.0.0.1', () => resolve()))
  const query = packet.encode({ type: 'query', id: 7, flags: packet.RECURSION_DESIRED, questions: [{ name: 'flood.example.org', type: 'A', class: 'IN' }] })
  // A connected socket sends at once; the daemon shares this event loop, so while it is blocked
  // nothing reads its socket and the burst overflows the small buffer.
  const end = Date.now() + 200
  for (let i = 0; i < 500; i++) sock.send(query)
  while (Date.now() < end) { /* blocked */ }
  await new Promise(resolve => setTimeout(resolve, 200))
  const after = await scrapeSmall()
  const drops = value(after, 'egressd_dns_udp_kernel_drops_total')
  t.comment(`kernel drops: ${drops} of 500`)
  t.ok(drops >= 100, `the kernel dropped ${drops} of 500 datagrams and they are counted`)
  t.equal(after.get('egressd_dns_udp_kernel_drops_total')?.type, 'counter')
  const listener = after.get('egressd_dns_udp_receive_buffer_bytes')?.samples[0]
  t.equal(listener?.labels.listener, `127.0.0.1:${small.dnsPort}`)
  t.ok((listener?.value ?? 0) >= 4096)
  t.equal(small.daemon.dnsSockets().udpKernelDrops, drops)
  const status = await call(small.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.equal(status.status, 200)
  t.equal(status.json.dns.udpKernelDrops, drops, 'and shown in /api/v1/status')
  t.equal(status.json.dns.tcpConnections, 0)
})

t.test('TCP connection gauges and limit counters are exposed', async t => {
  const f = await scrape()
  for (const name of ['egressd_dns_tcp_connections', 'egressd_dns_tcp_clients', 'egressd_dns_tcp_queued_bytes', 'egressd_dns_tcp_max_queued_bytes', 'egressd_dns_tcp_write_blocked_connections']) {
    t.equal(f.get(name)?.type, 'gauge', name)
  }
  for (const event of ['accepted', 'rejected', 'clientLimited', 'writePaused', 'stuckClosed']) {
    t.ok(f.get('egressd_dns_tcp_connections_total')?.samples.some(s => s.labels.event === event), `egressd_dns_tcp_connections_total{event="${event}"}`)
  }
})
