// Slow headers (slowloris) against the API listener of an in-process daemon: clients that send
// their request headers a byte at a time, or nothing at all, are closed once
// api.server.headersTimeoutMs has passed (a short one here); connections beyond
// maxConnectionsPerClient from one address are closed at once; /healthz answers promptly all
// along, and the metrics count both.

import t from 'tap'
import type net from 'node:net'
import { TOKENS, startApiDaemon } from '../api/helpers.js'
import { connect, get, metric, sleep, usedMemory } from './api-sockets.js'

interface Dribbler { readonly from: string, readonly opened: number, closedAfter: number | undefined, received: string, socket: net.Socket }

t.test('clients that dribble their headers are closed by the headers timeout; /healthz answers throughout', async t => {
  const headersTimeoutMs = 1000
  const d = await startApiDaemon({
    api: {
      rateLimit: { perSecond: 1000, burst: 1000 },
      server: { headersTimeoutMs, requestTimeoutMs: 2000, maxConnectionsPerClient: 10 }
    }
  })
  const port = Number(new URL(d.base).port)
  const all: Dribbler[] = []
  t.teardown(async () => { for (const x of all) x.socket.destroy(); await d.close() })
  const before = usedMemory()

  // /healthz from another address every 100 ms while the attack runs.
  let probing = true
  const probes: Array<{ status: number, ms: number }> = []
  const prober = (async () => {
    while (probing) {
      const at = Date.now()
      const status = await get(port, '/healthz').then(r => r.status, () => 0)
      probes.push({ status, ms: Date.now() - at })
      await sleep(100)
    }
  })()

  // 3 addresses x 10 connections (each address at its cap), then 10 more from the first address
  // (beyond its cap); a third of them send nothing at all, the rest a header byte every 100 ms.
  const request = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(200)
  const open = async (from: string, silent: boolean): Promise<Dribbler> => {
    const socket = await connect(port, from)
    const x: Dribbler = { from, opened: Date.now(), closedAfter: undefined, received: '', socket }
    socket.setEncoding('latin1')
    socket.on('data', (s: string) => { x.received += s })
    socket.on('error', () => { /* a reset: 'close' follows */ })
    socket.on('close', () => { x.closedAfter = Date.now() - x.opened })
    if (!silent) {
      let i = 0
      const timer = setInterval(() => {
        if (socket.destroyed || i >= request.length) { clearInterval(timer); return }
        socket.write(request[i++])
      }, 100)
      socket.on('close', () => clearInterval(timer))
    }
    all.push(x)
    return x
  }
  const capped: Dribbler[] = []
  for (const from of ['127.0.4.1', '127.0.4.2', '127.0.4.3']) {
    for (let i = 0; i < 10; i++) capped.push(await open(from, i % 3 === 0))
  }
  await sleep(200)
  const extra: Dribbler[] = []
  for (let i = 0; i < 10; i++) extra.push(await open('127.0.4.1', false))

  const deadline = Date.now() + 8000
  while (all.some(x => x.closedAfter === undefined) && Date.now() < deadline) await sleep(100)
  probing = false
  await prober

  t.ok(all.every(x => x.closedAfter !== undefined), `every slow client was closed (${all.filter(x => x.closedAfter === undefined).length} still open after 8 s)`)
  const capTimes = capped.map(x => x.closedAfter ?? Infinity)
  t.ok(capTimes.every(ms => ms >= headersTimeoutMs - 50 && ms < headersTimeoutMs + 2000), `closed after the headers timeout (${Math.min(...capTimes)}-${Math.max(...capTimes)} ms)`)
  const answered = capped.filter(x => x.received !== '')
  t.ok(answered.length > 0 && answered.every(x => /^HTTP\/1\.1 408 /.test(x.received)), `${answered.length} got an answer: 408 Request Timeout`)
  const extraTimes = extra.map(x => x.closedAfter ?? Infinity)
  t.ok(extraTimes.every(ms => ms < 500), `connections beyond the per-client cap closed at once (${Math.max(...extraTimes)} ms)`)

  t.ok(probes.length >= 10, `${probes.length} /healthz probes`)
  t.ok(probes.every(p => p.status === 200), `/healthz answered 200 every time: ${[...new Set(probes.map(p => p.status))].join(',')}`)
  t.ok(Math.max(...probes.map(p => p.ms)) < 1000, `/healthz answered within 1 s (slowest ${Math.max(...probes.map(p => p.ms))} ms)`)
  const growth = usedMemory() - before
  t.ok(growth < 16 * 1048576, `memory growth ${(growth / 1048576).toFixed(1)} MiB`)

  const m = (await get(port, '/metrics', TOKENS.metrics)).body
  t.ok(metric(m, 'egressd_api_connections_refused_total{limit="client"}') >= 10, 'refused connections counted')
  t.ok(metric(m, 'egressd_api_request_timeouts_total') >= capped.length, 'header timeouts counted')
})

t.test('a silent connection under the default settings is closed within the default headers timeout', async t => {
  // Node's own defaults checked expiry every 30 s with a 60 s headers timeout; egressd's default
  // (10 s) now holds with a check every second.
  const d = await startApiDaemon()
  const port = Number(new URL(d.base).port)
  const s = await connect(port, '127.0.4.9')
  t.teardown(async () => { s.destroy(); await d.close() })
  const opened = Date.now()
  s.write('GET /healthz HTTP/1.1\r\n')
  const closedAfter = await new Promise<number>(resolve => {
    const timer = setTimeout(() => resolve(Infinity), 15_000)
    s.on('error', () => {})
    s.resume()
    s.once('close', () => { clearTimeout(timer); resolve(Date.now() - opened) })
  })
  t.ok(closedAfter >= 9_900 && closedAfter <= 12_000, `closed after ${closedAfter} ms (10 s headers timeout)`)
})
