// Hostile TCP clients against a real in-process daemon: one that pipelines blocked queries and
// never reads its answers (what the daemon queues for it must stay bounded, others keep being
// answered, memory comes back when it goes), one that stays stuck (closed after
// dns.tcp.stuckTimeoutMs), and one address opening many connections (held to
// dns.tcp.maxConnectionsPerClient while another address still gets in).

import t from 'tap'
import net from 'node:net'
import { Resolver } from 'node:dns/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import * as packet from 'dns-packet'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const upstream = await startDnsmasq()
t.teardown(() => upstream.stop())

const BLOCKED = 'blocked.test'
const config = (tcp: Record<string, unknown>) => ({
  upstreams: [upstream.url],
  blocklists: { rules: { block: [BLOCKED] } },
  store: { logQueries: 'none' },
  // Each block is an info line, which the test daemon keeps in memory: it would be counted as held.
  log: { level: 'warn' },
  dns: { tcp: { idleTimeoutMs: 60_000, ...tcp } }
})

function frame (name: string, id: number): Buffer {
  const q = packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] })
  const f = Buffer.alloc(2 + q.length)
  f.writeUInt16BE(q.length, 0)
  q.copy(f, 2)
  return f
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function until (what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Heap and buffers (external) after a full collection: what the process holds on to. */
function held (): number {
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}

/** Queries the daemon has taken off TCP connections so far. */
const taken = (d: TestDaemon): number => d.daemon.metrics.queries.tcp

/**
 * Connects without ever reading (paused from the start), then pipelines queries for the blocked
 * name until `max` are written, `ms` have passed, or the daemon has stopped taking them: its
 * count of TCP queries stands still for `stallMs` while this client's writes wait to drain. Then
 * waits (up to `ms` in all) until the daemon is done with what reached it. Calls `sample` every
 * 20 ms meanwhile.
 */
async function neverReads (d: TestDaemon, opts: { max: number, ms: number, stallMs: number, sample: () => void }): Promise<{ sock: net.Socket, sent: number, stalled: boolean }> {
  const sock = net.connect({ host: d.host, port: d.port })
  sock.pause()
  sock.on('error', () => {})
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  sock.pause()
  const BATCH = 500
  const batch = Buffer.concat(Array.from({ length: BATCH }, (_, i) => frame(BLOCKED, i)))
  const timer = setInterval(opts.sample, 20)
  const started = Date.now()
  let sent = 0
  let stalled = false
  /** Resolves true once the daemon's count of TCP queries has not moved for stallMs. */
  const standsStill = async (done: () => boolean): Promise<boolean> => {
    let last = taken(d)
    let since = Date.now()
    while (!done() && Date.now() - started < opts.ms) {
      await sleep(50)
      if (taken(d) !== last) { last = taken(d); since = Date.now() } else if (Date.now() - since >= opts.stallMs) return true
    }
    return false
  }
  try {
    while (sent < opts.max && Date.now() - started < opts.ms && !sock.destroyed) {
      sent += BATCH
      if (!sock.write(batch)) {
        let drained = false
        sock.once('drain', () => { drained = true })
        if (await standsStill(() => drained)) { stalled = true; break }
      }
    }
    if (!stalled) stalled = await standsStill(() => false)
  } finally {
    clearInterval(timer)
  }
  return { sock, sent, stalled }
}

t.test('a client that never reads its answers: what is queued for it stays bounded, others are answered, memory comes back', async t => {
  const LIMIT = 65536
  const d = await startTestDaemon(config({ maxQueuedBytesPerConnection: LIMIT, stuckTimeoutMs: 60_000 }))
  t.teardown(() => d.close())
  // Warm up (first queries, JIT) before measuring.
  t.equal((await dig([`@${d.host}`, '-p', String(d.port), BLOCKED, '+tcp'])).status, 'NXDOMAIN')
  const before = held()
  const rssBefore = process.memoryUsage().rss
  let maxQueued = 0
  let maxHeld = 0
  const sample = (): void => {
    maxQueued = Math.max(maxQueued, d.daemon.dnsSockets().tcpMaxQueuedBytes)
    const m = process.memoryUsage()
    maxHeld = Math.max(maxHeld, m.heapUsed + m.external + m.arrayBuffers)
  }
  const attack = await neverReads(d, { max: 200_000, ms: 20_000, stallMs: 1500, sample })
  t.teardown(() => attack.sock.destroy())
  sample()
  const f = d.daemon.dnsSockets()
  t.comment(`sent ${attack.sent} queries (stalled: ${attack.stalled}); queued for the connection now ${f.tcpMaxQueuedBytes} B, at most ${maxQueued} B seen; ` +
    `held ${(before / 1e6).toFixed(1)} MB before, at most ${(maxHeld / 1e6).toFixed(1)} MB; RSS ${(rssBefore / 1e6).toFixed(0)} -> ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`)
  t.equal(f.tcpWriteBlocked, 1, 'the connection is held: reading from it is paused')
  t.ok(d.daemon.metrics.tcp.writePaused >= 1, 'counted (writePaused)')
  // One answer may go past the mark (it is checked after each write); a blocked answer is small.
  t.ok(f.tcpMaxQueuedBytes <= LIMIT + 514, `queued now ${f.tcpMaxQueuedBytes} <= ${LIMIT} + one answer`)
  t.ok(maxQueued <= LIMIT + 514, `queued at most ${maxQueued} <= ${LIMIT} + one answer at any sample`)
  t.ok(maxHeld - before < 64e6, `the process held at most ${((maxHeld - before) / 1e6).toFixed(1)} MB more during the attack`)

  // Everyone else is still answered, over UDP and TCP, blocked and forwarded names alike.
  t.equal((await dig([`@${d.host}`, '-p', String(d.port), BLOCKED, '+tries=1', '+time=3'])).status, 'NXDOMAIN', 'UDP, blocked')
  t.equal((await dig([`@${d.host}`, '-p', String(d.port), BLOCKED, '+tcp', '+tries=1', '+time=3'])).status, 'NXDOMAIN', 'TCP, blocked')
  t.same((await dig([`@${d.host}`, '-p', String(d.port), 'h.test', '+tcp', '+tries=1', '+time=3'])).answers.map(a => a.data), ['192.0.2.11'], 'TCP, forwarded')
  const r = new Resolver({ timeout: 3000, tries: 1 })
  r.setServers([`${d.host}:${d.port}`])
  t.same(await r.resolve4('h.test'), ['192.0.2.11'], 'UDP, forwarded (dns.Resolver)')
  t.equal(d.daemon.dnsSockets().tcpWriteBlocked, 1, 'the attacker is still held')

  // Gone: its slot, its queue and the memory come back.
  attack.sock.destroy()
  await until('the daemon to close the connection', () => d.daemon.dnsSockets().tcpConnections === 0)
  const g = d.daemon.dnsSockets()
  t.equal(g.tcpWriteBlocked, 0)
  t.equal(g.tcpQueuedBytes, 0)
  t.equal(g.tcpClients, 0)
  await sleep(100)
  const after = held()
  t.comment(`held after close ${(after / 1e6).toFixed(1)} MB (before ${(before / 1e6).toFixed(1)} MB)`)
  t.ok(after - before < 16e6, `memory released: ${((after - before) / 1e6).toFixed(1)} MB more than before`)
})

t.test('a connection whose answers do not drain is closed after dns.tcp.stuckTimeoutMs', async t => {
  const d = await startTestDaemon(config({ maxQueuedBytesPerConnection: 16384, stuckTimeoutMs: 400 }))
  t.teardown(() => d.close())
  const attack = await neverReads(d, { max: 200_000, ms: 20_000, stallMs: 1500, sample: () => {} })
  t.teardown(() => attack.sock.destroy())
  await until('the stuck connection to be closed', () => d.daemon.metrics.tcp.stuckClosed === 1, 10_000)
  await until('the connection to go', () => d.daemon.dnsSockets().tcpConnections === 0)
  t.ok(d.daemon.metrics.tcp.writePaused >= 1)
  t.equal(d.daemon.dnsSockets().tcpWriteBlocked, 0)
  t.equal((await dig([`@${d.host}`, '-p', String(d.port), BLOCKED, '+tcp'])).status, 'NXDOMAIN', 'still serving')
})

/** A TCP client bound to `from` that collects answers; `closed` resolves when the daemon lets go. */
interface Client {
  readonly sock: net.Socket
  /** Sends one query; true when it was answered within 2 s. */
  readonly ask: (id: number) => Promise<boolean>
  readonly closed: Promise<void>
  readonly isClosed: () => boolean
}

async function connectFrom (d: TestDaemon, from: string): Promise<Client> {
  const sock = net.connect({ host: d.host, port: d.port, localAddress: from })
  sock.on('error', () => {})
  const answers: packet.DecodedPacket[] = []
  let buf = Buffer.alloc(0)
  sock.on('data', x => {
    buf = Buffer.concat([buf, x])
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      answers.push(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))))
      buf = buf.subarray(2 + buf.readUInt16BE(0))
    }
  })
  let isClosed = false
  const closed = new Promise<void>(resolve => sock.once('close', () => { isClosed = true; resolve() }))
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  /** Sends one query; true when it was answered within 2 s. */
  const ask = async (id: number): Promise<boolean> => {
    const n = answers.length
    if (!sock.destroyed) sock.write(frame(BLOCKED, id))
    const end = Date.now() + 2000
    while (answers.length === n && !isClosed && Date.now() < end) await sleep(10)
    return answers.length > n && answers[n].id === id && answers[n].rcode === 'NXDOMAIN'
  }
  return { sock, ask, closed, isClosed: () => isClosed }
}

t.test('one client address holds at most dns.tcp.maxConnectionsPerClient connections; another address still gets in', async t => {
  const PER = 4
  const d = await startTestDaemon(config({ maxConnectionsPerClient: PER }))
  t.teardown(() => d.close())
  const mine: Client[] = []
  for (let i = 0; i < PER; i++) mine.push(await connectFrom(d, '127.0.0.1'))
  t.teardown(() => { for (const c of mine) c.sock.destroy() })
  for (const [i, c] of mine.entries()) t.ok(await c.ask(i), `connection ${i + 1} of ${PER} is served`)

  // Past its share, each new connection of that address is closed unanswered.
  const extra: Client[] = []
  for (let i = 0; i < 20; i++) extra.push(await connectFrom(d, '127.0.0.1'))
  t.teardown(() => { for (const c of extra) c.sock.destroy() })
  await Promise.all(extra.map(c => Promise.race([c.closed, sleep(3000)])))
  t.ok(extra.every(c => c.isClosed()), 'every connection past the limit is closed')
  t.equal(d.daemon.metrics.tcp.clientLimited, 20, 'and counted (clientLimited)')

  // Another address (127.0.0.2 as source) still gets a connection and answers.
  const other = await connectFrom(d, '127.0.0.2')
  t.teardown(() => other.sock.destroy())
  t.ok(await other.ask(100), 'a second client address is served')
  const f = d.daemon.dnsSockets()
  t.equal(f.tcpConnections, PER + 1)
  t.equal(f.tcpClients, 2)
  t.equal(d.daemon.metrics.tcp.accepted, PER + 1, 'accepted counts the connections served, not those closed for the limit (as rejected ones are not)')
  for (const [i, c] of mine.entries()) t.ok(await c.ask(10 + i), `connection ${i + 1} is still served`)

  // A slot given back can be taken again.
  mine[0].sock.destroy()
  await until('the slot to be given back', () => d.daemon.dnsSockets().tcpConnections === PER)
  const again = await connectFrom(d, '127.0.0.1')
  t.teardown(() => again.sock.destroy())
  t.ok(await again.ask(200), 'a new connection once one closed')
  t.equal(d.daemon.metrics.tcp.clientLimited, 20)
})
