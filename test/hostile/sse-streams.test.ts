// Hostile clients of the block log's live tail (GET /api/v1/blocks/stream, SSE) against an
// in-process daemon: many streams from a few addresses are refused beyond api.liveTail's caps
// (429 per client, 503 overall, JSON errors naming the key), and streams whose clients never read
// are closed with a last `event: closed` saying why once their unsent output passes
// maxQueuedBytesPerStream, while blocked queries flood in. Memory stays bounded, a client that
// reads keeps its stream, DNS and /healthz keep answering, and the metrics count it all.

import t from 'tap'
import { Resolver } from 'node:dns/promises'
import type net from 'node:net'
import { TOKENS, startApiDaemon } from '../api/helpers.js'
import { get, metric, rawGet, readToEnd, sleep, usedMemory, type RawResponse } from './api-sockets.js'

const STREAM = '/api/v1/blocks/stream'
const PORT_OF = (base: string): number => Number(new URL(base).port)

t.test('streams beyond the per-client and overall caps are refused; a closed stream frees its slot', async t => {
  const d = await startApiDaemon({
    api: { rateLimit: { perSecond: 1000, burst: 1000 }, liveTail: { maxStreams: 6, maxStreamsPerClient: 3 } },
    blocklists: { rules: { block: ['blocked.test'] } }
  })
  const port = PORT_OF(d.base)
  const open: net.Socket[] = []
  t.teardown(async () => { for (const s of open) s.destroy(); await d.close() })
  const stream = async (from: string): Promise<RawResponse> => {
    const r = await rawGet(port, from, STREAM, TOKENS.viewer)
    open.push(r.socket)
    return r
  }

  for (let i = 0; i < 3; i++) t.equal((await stream('127.0.0.2')).status, 200, `127.0.0.2 stream ${i + 1}`)
  const perClient = await stream('127.0.0.2')
  t.equal(perClient.status, 429, 'a 4th stream from the same address')
  t.match(JSON.parse(perClient.body), { statusCode: 429, error: 'Too Many Requests', message: /127\.0\.0\.2.*at most 3 .*api\.liveTail\.maxStreamsPerClient/ })
  t.match(perClient.head, /\r\ncontent-type: application\/json/i)
  t.match(perClient.head, /\r\nretry-after: \d+/i)

  for (let i = 0; i < 3; i++) t.equal((await stream('127.0.0.3')).status, 200, `127.0.0.3 stream ${i + 1}`)
  const overall = await stream('127.0.0.4')
  t.equal(overall.status, 503, 'a 7th stream, from a new address')
  t.match(JSON.parse(overall.body), { statusCode: 503, error: 'Service Unavailable', message: /at most 6 .*api\.liveTail\.maxStreams/ })

  // A burst of 40 more from 10 addresses: none gets through.
  const statuses: number[] = []
  for (let i = 0; i < 40; i++) statuses.push((await stream(`127.0.1.${1 + (i % 10)}`)).status)
  t.same([...new Set(statuses)], [503], 'every further stream is refused')

  // Hanging up frees the slot (the server notices the close).
  open[0].destroy()
  let again = 0
  for (let i = 0; i < 40 && again !== 200; i++) {
    await sleep(50)
    again = (await stream('127.0.0.4')).status
  }
  t.equal(again, 200, 'a stream is accepted again once one has closed')

  t.equal((await get(port, '/healthz')).status, 200)
  const m = (await get(port, '/metrics', TOKENS.metrics)).body
  t.equal(metric(m, 'egressd_api_live_tail_refused_total{limit="client"}'), 1)
  t.ok(metric(m, 'egressd_api_live_tail_refused_total{limit="total"}') >= 41, 'overall refusals counted')
  t.equal(metric(m, 'egressd_api_live_tail_streams'), 6)
})

t.test('streams that never read are closed with the reason; memory stays bounded; DNS and /healthz answer', async t => {
  const d = await startApiDaemon({
    api: {
      rateLimit: { perSecond: 1000, burst: 1000 },
      liveTail: { maxStreams: 8, maxStreamsPerClient: 4, maxQueuedBytesPerStream: 65536, stuckTimeoutMs: 600_000 }
    },
    blocklists: { rules: { block: ['blocked.test'] } }
  })
  const port = PORT_OF(d.base)
  const sockets: net.Socket[] = []
  t.teardown(async () => { for (const s of sockets) s.destroy(); await d.close() })
  const before = usedMemory()

  // One stream that reads, then 40 that never read from 10 addresses (7 more are let in).
  const reader = await rawGet(port, '127.0.0.1', STREAM, TOKENS.viewer)
  t.equal(reader.status, 200, 'a reading stream')
  let readerText = ''
  reader.socket.on('data', (x: string) => { readerText += x })
  reader.socket.resume()
  sockets.push(reader.socket)
  const stuck: RawResponse[] = []
  for (let i = 0; i < 40; i++) {
    const r = await rawGet(port, `127.0.2.${1 + (i % 10)}`, STREAM, TOKENS.viewer)
    sockets.push(r.socket)
    if (r.status === 200) stuck.push(r)
  }
  t.equal(stuck.length, 7, 'non-reading streams let in up to the overall cap of 8')

  // Blocked queries with long names (each event is about 800 bytes of SSE), in bounded batches,
  // until every non-reading stream was closed (their kernel buffers take a few MB first).
  const resolver = new Resolver({ timeout: 3000, tries: 1 })
  resolver.setServers([`127.0.0.1:${d.dnsPort}`])
  const pad = ['a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60)].join('.')
  let sent = 0
  let answered = 0
  let peak = 0
  let closed = 0
  const healthz: number[] = []
  const started = Date.now()
  while (sent < 30_000 && Date.now() - started < 60_000) {
    const batch = []
    for (let i = 0; i < 250; i++) {
      batch.push(resolver.resolve4(`q${sent++}.${pad}.blocked.test`).then(() => 'answer', (err: NodeJS.ErrnoException) => err.code))
    }
    for (const code of await Promise.all(batch)) if (code === 'ENOTFOUND') answered++
    if (sent % 2500 === 0) {
      healthz.push((await get(port, '/healthz')).status)
      peak = Math.max(peak, usedMemory() - before)
      closed = metric((await get(port, '/metrics', TOKENS.metrics)).body, 'egressd_api_live_tail_closed_total{reason="slow_consumer"}')
      if (closed >= stuck.length) break
    }
  }
  t.comment(`${sent} blocked queries in ${Date.now() - started} ms; peak memory growth ${(peak / 1048576).toFixed(1)} MiB`)
  t.equal(answered, sent, 'every blocked query was answered (NXDOMAIN)')
  t.ok(healthz.length > 0 && healthz.every(s => s === 200), `/healthz answered throughout: ${healthz.join(',')}`)
  t.equal(closed, stuck.length, 'every non-reading stream was closed as a slow consumer')
  t.ok(peak < 48 * 1048576, `memory growth ${(peak / 1048576).toFixed(1)} MiB stays under 48 MiB`)

  // The closed streams hold what was sent before and end with the reason; then the server hangs up.
  for (const s of stuck) {
    const { text, ended } = await readToEnd(s.socket, 10_000)
    t.ok(ended, 'the server closed the connection')
    t.match(text.slice(-200), /event: closed\ndata: \{"reason":"slow consumer"[^\n]*\}\n\n(\r\n0\r\n\r\n)?$/, 'the last event says why')
  }
  t.ok(readerText.split('event: block\n').length - 1 >= sent * 0.9, 'the reading stream got the events')
  t.notOk(reader.socket.destroyed, 'the reading stream is still open')
  t.equal((await get(port, '/healthz')).status, 200)
  const r = await resolver.resolve4(`after.${pad}.blocked.test`).then(() => 'answer', (err: NodeJS.ErrnoException) => err.code)
  t.equal(r, 'ENOTFOUND', 'DNS still answers')
})
