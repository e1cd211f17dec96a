// The caching forwarder end to end: real dig and node's dns.Resolver against the daemon, a real
// dnsmasq upstream on loopback; fake upstreams only for faults (silence, delays, spoofing).

import t from 'tap'
import { Resolver } from 'node:dns/promises'
import dgram from 'node:dgram'
import net from 'node:net'
import * as packet from 'dns-packet'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, testConfig } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { aAnswer, startFakeUpstream } from '../helpers/fake-upstream.js'

const upstream = await startDnsmasq()
t.teardown(() => upstream.stop())

t.test('dig over UDP and TCP, and node dns.Resolver, get the upstream records', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]

  const a = await dig([...at, 'h.test', 'A'])
  t.equal(a.status, 'NOERROR')
  t.same(a.answers.map(r => r.data), ['192.0.2.11'])
  t.ok(a.flags.includes('ra'), 'RA set')
  t.ok(a.edns, 'dig sends EDNS, so the answer carries OPT')

  const tcp = await dig([...at, '+tcp', 'h.test', 'AAAA'])
  t.equal(tcp.status, 'NOERROR')
  t.same(tcp.answers.map(r => r.data), ['2001:db8::11'])

  const alias = await dig([...at, 'alias.test', 'A'])
  t.same(alias.answers.map(r => `${r.type} ${r.data}`), ['CNAME h.test.', 'A 192.0.2.11'])

  const noedns = await dig([...at, '+noedns', 'other.test'])
  t.equal(noedns.edns, false, 'no OPT for a client without EDNS')
  t.same(noedns.answers.map(r => r.data), ['192.0.2.12'])

  const r = new Resolver()
  r.setServers([`${d.host}:${d.port}`])
  t.same(await r.resolve4('h.test'), ['192.0.2.11'])
  t.same(await r.resolve6('h.test'), ['2001:db8::11'])
  await t.rejects(r.resolve4('missing.test'), { code: 'ENOTFOUND' })
})

t.test('clients outside dns.allowClients get REFUSED with EDE 18 over UDP and TCP, and are counted; a reload applies a new list', async t => {
  let now = 1_000_000
  const d = await startTestDaemon({ upstreams: [upstream.url], dns: { allowClients: ['127.0.0.2'] } }, { now: () => now })
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]
  for (const proto of ['+notcp', '+tcp']) {
    const refused = await dig([...at, proto, 'h.test', 'A'])
    t.equal(refused.status, 'REFUSED', `${proto} from 127.0.0.1`)
    t.same(refused.answers, [])
    t.match(refused.ede, /^18 \(Prohibited\)/, 'EDE 18 Prohibited')
    const allowed = await dig([...at, proto, '-b', '127.0.0.2', 'h.test', 'A'])
    t.equal(allowed.status, 'NOERROR', `${proto} from 127.0.0.2`)
    t.same(allowed.answers.map(r => r.data), ['192.0.2.11'])
  }
  t.equal(d.daemon.metrics.refusedClients, 2)
  const warnings = d.logs().filter(l => l.msg === 'refusing queries from a client outside dns.allowClients')
  t.match(warnings, [{ level: 40, client: '127.0.0.1', otherClientsSinceLastWarning: 0, allowClients: ['127.0.0.2/32'] }],
    'one warning for the client, not one per query')
  t.equal(warnings.length, 1)
  // More refused clients within the minute are counted into the next warning, not logged.
  t.equal((await dig([...at, '-b', '127.0.0.3', 'h.test'])).status, 'REFUSED')
  now += 61_000
  t.equal((await dig([...at, '-b', '127.0.0.4', 'h.test'])).status, 'REFUSED')
  t.same(d.logs().filter(l => l.msg === 'refusing queries from a client outside dns.allowClients').map(l => [l.client, l.otherClientsSinceLastWarning]),
    [['127.0.0.1', 0], ['127.0.0.4', 1]])
  t.match(d.logs().find(l => l.msg === 'egressd started'), { allowClients: ['127.0.0.2/32'] }, 'the list in force is in the start-up log')
  t.equal(d.daemon.pool.health()[0].queries, 1, 'the refused queries never reached the upstream (the allowed TCP one was a cache hit)')

  // Three queries pipelined on one connection: the first is answered REFUSED, then the connection
  // is closed, so a refused client holds no connection slot.
  const answers = await new Promise<number[]>((resolve, reject) => {
    const got: number[] = []
    let buf = Buffer.alloc(0)
    const sock = net.connect({ host: d.host, port: d.port }, () => {
      for (const id of [1, 2, 3]) {
        const q = Buffer.from(packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name: 'h.test', type: 'A', class: 'IN' }] }))
        const frame = Buffer.alloc(2 + q.length)
        frame.writeUInt16BE(q.length, 0)
        q.copy(frame, 2)
        sock.write(frame)
      }
    })
    sock.on('data', chunk => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        got.push(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))).rcode === 'REFUSED' ? 1 : 0)
        buf = buf.subarray(2 + buf.readUInt16BE(0))
      }
    })
    sock.on('error', reject)
    sock.on('close', () => { resolve(got) })
    setTimeout(() => { sock.destroy(); reject(new Error('the connection was not closed')) }, 5000).unref()
  })
  t.same(answers, [1], 'one REFUSED answer, then the connection closed')
  const closedAfterJunk = await new Promise<boolean>(resolve => {
    const sock = net.connect({ host: d.host, port: d.port }, () => { sock.write(Buffer.from([0, 3, 1, 2, 3])) }) // a 3-byte "query": dropped
    sock.on('error', () => {})
    sock.on('close', () => { resolve(true) })
    setTimeout(() => { sock.destroy(); resolve(false) }, 5000).unref()
  })
  t.ok(closedAfterJunk, 'a refused client whose packet is dropped unanswered is closed too')

  d.daemon.reload(testConfig({ upstreams: [upstream.url], dns: { allowClients: ['127.0.0.1', '127.0.0.2'] } }))
  t.equal((await dig([...at, 'h.test', 'A'])).status, 'NOERROR', 'after the reload 127.0.0.1 is answered')
  t.equal((await dig([...at, '+tcp', '+keepopen', 'h.test', 'A', 'h.test', 'AAAA'])).status, 'NOERROR', 'and over TCP')
})

t.test('a truncated UDP answer is fetched again over TCP; big answers make the client retry over TCP', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]
  const udpOnly = await dig([...at, '+ignore', 'big.test', 'TXT'])
  t.ok(udpOnly.flags.includes('tc'), 'the 2 KB answer does not fit in 1232 bytes: TC to the client')
  t.equal(d.daemon.metrics.upstreamTcpRetries, 1, 'the upstream was asked again over TCP')
  const full = await dig([...at, 'big.test', 'TXT'])
  t.equal(full.answers.length, 8, 'dig retried over TCP and got all 8 TXT records')
  const tcp = await dig([...at, '+tcp', 'big.test', 'TXT'])
  t.equal(tcp.answers.length, 8)
  t.ok(d.daemon.metrics.truncated >= 2)
})

t.test('cache hits keep the client ID and case and count TTLs down; negative answers are cached', async t => {
  let now = 1_000_000
  const d = await startTestDaemon({ upstreams: [upstream.url] }, { now: () => now })
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]
  const upstreamQueries = (): number => d.daemon.pool.health()[0].queries

  const first = await dig([...at, 'h.test', 'A'])
  t.equal(first.answers[0].ttl, 300)
  now += 100_000
  const second = await dig([...at, 'H.tEsT', 'A'])
  t.equal(second.question, 'H.tEsT.', 'question case preserved')
  t.equal(second.answers[0].name, 'H.tEsT.', 'owner name follows the question (compression pointer)')
  t.equal(second.answers[0].ttl, 200, 'TTL decremented by the 100 s the entry spent in the cache')
  t.equal(upstreamQueries(), 1, 'the upstream was asked once')
  t.equal(d.daemon.metrics.outcomes.cached, 1)

  const nx1 = await dig([...at, 'nx.test', 'A'])
  t.equal(nx1.status, 'NXDOMAIN')
  t.equal(nx1.authority[0]?.type, 'SOA', 'the SOA comes along')
  now += 10_000
  const nx2 = await dig([...at, 'nx.test', 'A'])
  t.equal(nx2.status, 'NXDOMAIN')
  t.equal(nx2.authority[0].ttl, nx1.authority[0].ttl - 10, 'negative entry TTL counts down too')
  t.equal(upstreamQueries(), 2, 'NXDOMAIN served from the cache')
  t.equal(d.daemon.metrics.outcomes.cached, 2)

  now += 3_600_000
  await dig([...at, 'h.test', 'A'])
  t.equal(upstreamQueries(), 3, 'expired entry: asked again')
})

t.test('identical queries in flight are coalesced into one upstream query', async t => {
  const slow = await startFakeUpstream((q, _m, reply) => { setTimeout(() => reply(aAnswer(q, '192.0.2.50')), 300) })
  t.teardown(() => slow.close())
  const d = await startTestDaemon({ upstreams: [slow.url] })
  t.teardown(() => d.close())
  const r = new Resolver({ tries: 1, timeout: 3000 })
  r.setServers([`${d.host}:${d.port}`])
  const answers = await Promise.all(Array.from({ length: 10 }, () => r.resolve4('same.test')))
  t.same(answers, Array(10).fill(['192.0.2.50']))
  t.equal(slow.received.length, 1, 'one upstream query for ten clients')
  t.equal(d.daemon.metrics.coalesced, 9)
})

t.test('an upstream that times out is failed over, then tried last', async t => {
  const silent = await startFakeUpstream(() => {})
  t.teardown(() => silent.close())
  const d = await startTestDaemon({ upstreams: [{ url: silent.url, timeoutMs: 300 }, upstream.url] })
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]
  const a = await dig([...at, 'h.test'])
  t.equal(a.status, 'NOERROR')
  t.same(a.answers.map(r => r.data), ['192.0.2.11'])
  t.equal(silent.received.length, 1)
  const health = d.daemon.pool.health()
  t.equal(health[0].healthy, false)
  t.match(health[0].lastError, /no answer within 300 ms/)
  t.equal(health[1].healthy, true)
  const b = await dig([...at, 'other.test'])
  t.equal(b.status, 'NOERROR')
  t.equal(silent.received.length, 1, 'the failed upstream is not asked first again')
})

t.test('an upstream port nobody listens on fails over at once (ICMP port unreachable), not at its timeout', async t => {
  // A port that was just free: bind, note it, close.
  const probe = dgram.createSocket('udp4')
  await new Promise<void>(resolve => probe.bind(0, '127.0.0.1', () => resolve()))
  const closedPort = probe.address().port
  await new Promise<void>(resolve => probe.close(() => resolve()))
  // Its timeout is far longer than dig waits: only the refusal can make the answer come in time.
  const d = await startTestDaemon({ upstreams: [{ url: `udp://127.0.0.1:${closedPort}`, timeoutMs: 30_000 }, upstream.url] })
  t.teardown(() => d.close())
  const a = await dig([`@${d.host}`, '-p', String(d.port), '+tries=1', '+time=3', 'h.test'])
  t.equal(a.status, 'NOERROR')
  t.same(a.answers.map(r => r.data), ['192.0.2.11'])
  const health = d.daemon.pool.health()
  t.equal(health[0].healthy, false)
  t.match(health[0].lastError, /ECONNREFUSED/)
})

t.test('all upstreams down: SERVFAIL with an Extended DNS Error, never silence', async t => {
  const s1 = await startFakeUpstream(() => {})
  const s2 = await startFakeUpstream(() => {})
  t.teardown(async () => { await s1.close(); await s2.close() })
  const d = await startTestDaemon({ upstreams: [{ url: s1.url, timeoutMs: 200 }, { url: s2.url, timeoutMs: 200 }] })
  t.teardown(() => d.close())
  const a = await dig([`@${d.host}`, '-p', String(d.port), '+tries=1', '+time=5', 'h.test'])
  t.equal(a.status, 'SERVFAIL')
  t.match(a.ede, /22 \(No Reachable Authority\)/)
  t.equal(d.daemon.metrics.outcomes.servfail, 1)
  const tcp = await dig([`@${d.host}`, '-p', String(d.port), '+tcp', '+tries=1', '+time=5', 'x.test'])
  t.equal(tcp.status, 'SERVFAIL', 'over TCP too')
})

t.test('spoofed answers (wrong ID, wrong question, wrong source port) are dropped; the real one is taken', async t => {
  const other = dgram.createSocket('udp4')
  await new Promise<void>(resolve => other.bind(0, '127.0.0.1', () => resolve()))
  t.teardown(() => other.close())
  const fake = await startFakeUpstream((q, _m, reply, rinfo) => {
    reply(aAnswer(q, '6.6.6.1', { id: (q.id! + 1) & 0xffff }))               // wrong ID
    reply(aAnswer(q, '6.6.6.2', { name: 'evil.test' }))                      // right ID, wrong question
    other.send(aAnswer(q, '6.6.6.3'), rinfo.port, rinfo.address)             // right ID and question, wrong source port
    setTimeout(() => reply(aAnswer(q, '192.0.2.77')), 50)                   // the real one
  })
  t.teardown(() => fake.close())
  const d = await startTestDaemon({ upstreams: [fake.url] })
  t.teardown(() => d.close())
  const a = await dig([`@${d.host}`, '-p', String(d.port), 'spoof.test'])
  t.same(a.answers.map(r => r.data), ['192.0.2.77'])
  const dropped = d.daemon.metrics.upstreamDropped
  t.equal(dropped['unknown-id'], 1)
  t.equal(dropped['wrong-question'], 1)
  // The pool's sockets are connected to the upstream: the kernel discards the datagram from the
  // other port before egressd reads it, so it is neither taken nor counted.
  t.same(Object.keys(dropped).sort(), ['short', 'unknown-id', 'wrong-question'])
  t.equal(dropped.short, 0)
  // The upstream query itself: random ID, sent from one of the pool's random ports.
  t.not(fake.received[0].id, a.id, 'upstream ID is not the client ID')
})

t.test('upstream query IDs and source ports are spread out (RFC 5452)', async t => {
  const ports = new Set<number>()
  const ids = new Set<number>()
  const fake = await startFakeUpstream((q, _m, reply, rinfo) => { ports.add(rinfo.port); ids.add(q.id!); reply(aAnswer(q, '192.0.2.1')) })
  t.teardown(() => fake.close())
  const d = await startTestDaemon({ upstreams: [fake.url], cache: { enabled: false } })
  t.teardown(() => d.close())
  const r = new Resolver({ tries: 1, timeout: 2000 })
  r.setServers([`${d.host}:${d.port}`])
  for (let i = 0; i < 64; i++) await r.resolve4(`n${i}.test`)
  t.ok(ids.size >= 62, `64 queries used ${ids.size} distinct IDs`)
  // dns.udpSockets defaults to 4: a query picks one at random (all 4 miss one with p ~ 4e-8).
  t.equal(ports.size, 4, `64 queries left from ${ports.size} distinct source ports`)
})

t.test('EDNS: DO bit kept, our payload size advertised', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const a = await dig([`@${d.host}`, '-p', String(d.port), '+dnssec', '+bufsize=4096', 'h.test'])
  t.match(a.raw, /; EDNS: version: 0, flags: do; udp: 1232/)
})
