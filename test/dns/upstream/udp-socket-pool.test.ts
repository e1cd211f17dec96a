// The UDP socket pool's port rotation: a socket is replaced by one on a new random port after
// `rotateAfter` queries, and a replaced socket still takes the answers to the queries it sent.
// The upstream here records the source port of every query it gets (something dnsmasq cannot
// show), and delays its answers where the test needs queries in flight.

import t from 'tap'
import dgram, { type RemoteInfo } from 'node:dgram'
import * as packet from 'dns-packet'
import { UdpSocketPool } from '../../../src/dns/upstream/udp-socket-pool.js'
import { RandomIds } from '../../../src/dns/upstream/random-ids.js'
import { UdpTurn } from '../../../src/dns/udp-turn.js'
import { exchange } from '../../../src/dns/upstream/transport.js'
import { buildUpstreamQuery } from '../../../src/dns/wire.js'
import { aAnswer, startFakeUpstream } from '../../helpers/fake-upstream.js'
import { stringData } from '../../helpers/dns-records.js'

/** The question section of `name` A IN, lower-case wire form. */
function question (name: string): Buffer {
  const q = packet.encode({ type: 'query', id: 0, questions: [{ type: 'A', class: 'IN', name }] })
  return q.subarray(12)
}

async function recordingUpstream (delayMs: number): Promise<{ url: string, port: number, ports: number[], close: () => Promise<void> }> {
  const ports: number[] = []
  const fake = await startFakeUpstream((q, _m, reply, rinfo: RemoteInfo) => {
    ports.push(rinfo.port)
    setTimeout(() => { reply(aAnswer(q, '192.0.2.1')) }, delayMs)
  })
  return { url: fake.url, port: fake.port, ports, close: () => fake.close() }
}

function pool (port: number, size: number, rotateAfter: number): UdpSocketPool {
  return new UdpSocketPool({ url: `udp://127.0.0.1:${port}`, host: '127.0.0.1', port, size, random: new RandomIds(), turn: new UdpTurn(), onDrop: () => {}, rotateAfter })
}

const ask = (p: UdpSocketPool, name: string): Promise<Buffer> => {
  const q = question(name)
  return exchange(p, { wire: buildUpstreamQuery(q, false, 1232), question: q, timeoutMs: 2000 })
}

t.test('a socket is replaced after rotateAfter queries: the source ports keep changing', async t => {
  const up = await recordingUpstream(0)
  t.teardown(() => up.close())
  const p = pool(up.port, 2, 5)
  t.teardown(() => { p.close() })
  for (let i = 0; i < 40; i++) {
    const answer = await ask(p, `n${i}.test`)
    t.equal(packet.decode(answer).answers?.length, 1, `n${i} answered`)
  }
  const distinct = new Set(up.ports).size
  // 40 queries, 5 per socket: 8 sockets at least (2 would mean no rotation).
  t.ok(distinct >= 8, `40 queries left from ${distinct} distinct source ports`)
  for (const port of new Set(up.ports)) t.ok(up.ports.filter(x => x === port).length <= 5, `port ${port} sent at most 5 queries`)
})

t.test('a replaced socket still takes the answers to the queries it sent, then closes', async t => {
  const up = await recordingUpstream(100) // answers arrive after the sockets were replaced
  t.teardown(() => up.close())
  const p = pool(up.port, 1, 2)
  t.teardown(() => { p.close() })
  const answers = await Promise.all(Array.from({ length: 7 }, (_, i) => ask(p, `w${i}.test`)))
  t.equal(answers.length, 7)
  for (const a of answers) t.equal(stringData(packet.decode(a).answers?.[0]), '192.0.2.1')
  const ports = [...new Set(up.ports)]
  t.equal(ports.length, 4, '7 queries, 2 per socket: 4 sockets')
  await new Promise(resolve => setTimeout(resolve, 50))
  // A closed socket's port can be bound again; the socket still in the pool holds its own.
  const bindable = (port: number): Promise<boolean> => new Promise(resolve => {
    const s = dgram.createSocket('udp4')
    s.once('error', () => { s.close(); resolve(false) })
    s.bind(port, () => { s.close(); resolve(true) })
  })
  for (const port of ports.slice(0, 3)) t.ok(await bindable(port), `replaced socket on port ${port} is closed`)
  t.notOk(await bindable(ports[3]), 'the socket in the pool is open')
})

t.test('answered and timed-out queries in flight at once: each settles once, with its own outcome', async t => {
  // Names starting with "d" are never answered; the rest are, after a short delay, so that many
  // are in flight together across the sockets (and the sweep takes the unanswered ones out from
  // the middle of the list of IDs in flight).
  const ids = new Set<number>()
  let inFlightIdsRepeated = false
  const fake = await startFakeUpstream((q, _m, reply) => {
    if (ids.has(q.id!)) inFlightIdsRepeated = true
    ids.add(q.id!)
    const name = q.questions![0].name
    if (name.startsWith('d')) return
    setTimeout(() => { ids.delete(q.id!); reply(aAnswer(q, '192.0.2.7')) }, 20)
  })
  t.teardown(() => fake.close())
  const p = new UdpSocketPool({ url: fake.url, host: '127.0.0.1', port: fake.port, size: 4, random: new RandomIds(), turn: new UdpTurn(), onDrop: () => {}, sweepMs: 10 })
  t.teardown(() => { p.close() })
  const names = Array.from({ length: 60 }, (_, i) => `${i % 3 === 0 ? 'd' : 'a'}${i}.test`)
  const results = await Promise.allSettled(names.map(n => {
    const q = question(n)
    return exchange(p, { wire: buildUpstreamQuery(q, false, 1232), question: q, timeoutMs: 150 })
  }))
  t.notOk(inFlightIdsRepeated, 'no ID was used twice at once, across the sockets')
  results.forEach((r, i) => {
    if (names[i].startsWith('d')) t.match(r, { status: 'rejected', reason: { code: 'EGRESSD_ERR_UPSTREAM_TIMEOUT' } }, `${names[i]} timed out`)
    else t.equal(r.status === 'fulfilled' && packet.decode(r.value).questions![0].name, names[i], `${names[i]} got its own answer`)
  })
  const after = question('after.test')
  const answer = await exchange(p, { wire: buildUpstreamQuery(after, false, 1232), question: after, timeoutMs: 1000 })
  t.equal(stringData(packet.decode(answer).answers?.[0]), '192.0.2.7', 'the pool works on after the timeouts')
})

t.test('an error on one socket fails the queries sent from it, not the others', async t => {
  const fake = await startFakeUpstream(() => {}) // takes queries, never answers
  const keepAlive = setInterval(() => {}, 1000) // the pool's sockets and sweep timer do not hold the process
  t.teardown(() => { clearInterval(keepAlive) })
  const p = new UdpSocketPool({ url: fake.url, host: '127.0.0.1', port: fake.port, size: 2, random: new RandomIds(), turn: new UdpTurn(), onDrop: () => {}, sweepMs: 10 })
  t.teardown(() => { p.close() })
  const ask = (n: string): Promise<string | undefined> => {
    const q = question(n)
    return exchange(p, { wire: buildUpstreamQuery(q, false, 1232), question: q, timeoutMs: 1500 }).then(() => 'answered', (e: Error & { code?: string }) => e.code)
  }
  const waiting = Array.from({ length: 20 }, (_, i) => ask(`e${i}.test`)) // spread over both sockets
  await new Promise(resolve => setTimeout(resolve, 50))
  await fake.close()
  // The next query bounces (ICMP port unreachable): the socket it went out on gets ECONNREFUSED.
  const last = await ask('last.test')
  t.equal(last, 'EGRESSD_ERR_UPSTREAM_NETWORK', 'the bounced query fails at once')
  const outcomes = await Promise.all(waiting)
  const failed = outcomes.filter(o => o === 'EGRESSD_ERR_UPSTREAM_NETWORK').length
  const timedOut = outcomes.filter(o => o === 'EGRESSD_ERR_UPSTREAM_TIMEOUT').length
  t.equal(failed + timedOut, 20, 'every query settled, once')
  t.ok(failed > 0, `${failed} queries on the refused socket failed with it`)
  t.ok(timedOut > 0, `${timedOut} queries on the other socket waited for their timeout`)
})
