// Queries a forwarder must answer itself, and upstream failures, end to end with the real dig:
// EDNS versions above 0 (BADVERS, RFC 6891 6.1.3), CHAOS-class queries (version.bind and friends
// are never forwarded: they would leak the upstream's identity), zone transfers (AXFR/IXFR), and
// upstreams that answer SERVFAIL (counted as that upstream's failure and failed over; it is tried
// last only when another upstream then answered the same question, so a broken name alone neither
// moves traffic nor fails /readyz; the client gets SERVFAIL with the upstream's EDE or EDE 22).
// A real dnsmasq upstream; fakes only for the SERVFAILs.

import t from 'tap'
import dgram from 'node:dgram'
import net from 'node:net'
import * as packet from 'dns-packet'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { startFakeUpstream } from '../helpers/fake-upstream.js'
import { asOpt, optOf, optRecord } from '../helpers/dns-records.js'
import { call, startApiDaemon, TOKENS, type ApiDaemon } from '../api/helpers.js'

const upstream = await startDnsmasq()
t.teardown(() => upstream.stop())

const at = (d: TestDaemon): string[] => [`@${d.host}`, '-p', String(d.port), '+tries=1', '+time=5']

/** How many questions the daemon's pool sent to its first upstream. */
const sent = (d: TestDaemon): number => d.daemon.pool.health()[0].queries

/** One query over UDP or TCP with dns-packet (for what dig will not send: AXFR over UDP). */
async function raw (d: TestDaemon, proto: 'udp' | 'tcp', q: packet.Packet): Promise<packet.DecodedPacket> {
  const msg = Buffer.from(packet.encode(q))
  if (proto === 'udp') {
    const sock = dgram.createSocket('udp4')
    try {
      return await new Promise((resolve, reject) => {
        sock.on('message', m => { resolve(packet.decode(m)) })
        sock.on('error', reject)
        sock.send(msg, d.port, d.host)
        setTimeout(() => { reject(new Error('no UDP answer')) }, 5000).unref()
      })
    } finally { sock.close() }
  }
  return await new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const sock = net.connect({ host: d.host, port: d.port }, () => {
      const frame = Buffer.alloc(2 + msg.length)
      frame.writeUInt16BE(msg.length, 0)
      msg.copy(frame, 2)
      sock.write(frame)
    })
    sock.on('data', chunk => {
      buf = Buffer.concat([buf, chunk])
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        resolve(packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))))
        sock.destroy()
      }
    })
    sock.on('error', reject)
    setTimeout(() => { sock.destroy(); reject(new Error('no TCP answer')) }, 5000).unref()
  })
}

const opt = (o: packet.Packet): packet.OptAnswer => asOpt(optOf(o))

t.test('a query with EDNS version 1 gets BADVERS with an OPT of version 0, over UDP and TCP, before the upstream is asked', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  for (const proto of ['+notcp', '+tcp']) {
    const r = await dig([...at(d), proto, '+edns=1', '+noednsnegotiation', 'h.test', 'A'])
    t.equal(r.status, 'BADVERS', `${proto}: status`)
    t.match(r.raw, /; EDNS: version: 0,/, `${proto}: our OPT says version 0`)
    t.same(r.answers, [], `${proto}: no records`)
  }
  t.equal(sent(d), 0, 'the upstream was not asked')
  t.equal(d.daemon.metrics.localAnswers.badvers, 2)
  t.equal(d.daemon.metrics.results.udp.badvers, 1)
  t.equal(d.daemon.metrics.results.tcp.badvers, 1)

  // dig's negotiation: BADVERS, then the same query with version 0, answered normally.
  const negotiated = await dig([...at(d), '+edns=1', 'h.test', 'A'])
  t.equal(negotiated.status, 'NOERROR')
  t.same(negotiated.answers.map(a => a.data), ['192.0.2.11'])
  t.equal(sent(d), 1, 'only the version 0 query was forwarded')

  // The version 0 query (EDNS as dig sends it) is answered as before.
  t.equal((await dig([...at(d), 'h.test', 'AAAA'])).status, 'NOERROR')

  // The wire form (RFC 6891 6.1.3): header rcode 0, extended rcode 1 in the OPT TTL, version 0.
  const b = await raw(d, 'udp', {
    type: 'query', id: 4242, flags: packet.RECURSION_DESIRED, questions: [{ name: 'h.test', type: 'A', class: 'IN' }],
    additionals: [optRecord({ udpPayloadSize: 1232, ednsVersion: 2, flags: 0 })]
  })
  t.equal(b.id, 4242)
  t.equal(b.flags! & 0x0f, 0, 'header rcode bits 0')
  t.match(opt(b), { extendedRcode: 1, ednsVersion: 0, udpPayloadSize: 1232 })
  t.same(b.questions, [{ name: 'h.test', type: 'A', class: 'IN' }], 'the question comes back')
})

t.test('CHAOS queries are answered locally: REFUSED by default, dns.chaos.answer as a CH TXT record; never forwarded', async t => {
  // A recursive dnsmasq (not authoritative) answers version.bind itself: forwarded, its version
  // would reach the client.
  const recursive = await startDnsmasq({ auth: false, lines: ['address=/h.test/192.0.2.11'] })
  t.teardown(() => recursive.stop())
  const direct = await dig([`@${recursive.host}`, '-p', String(recursive.port), 'CH', 'TXT', 'version.bind'])
  t.match(direct.answers[0]?.data, /dnsmasq/, 'the upstream would tell its version')
  const logBefore = recursive.log().length

  const d = await startTestDaemon({ upstreams: [recursive.url] })
  t.teardown(() => d.close())
  for (const [proto, name] of [['+notcp', 'version.bind'], ['+tcp', 'version.bind'], ['+notcp', 'hostname.bind'], ['+notcp', 'id.server'], ['+notcp', 'VERSION.Server'], ['+notcp', 'authors.bind']]) {
    const r = await dig([...at(d), proto, 'CH', 'TXT', name])
    t.equal(r.status, 'REFUSED', `${proto} ${name}`)
    t.same(r.answers, [])
  }
  const a = await dig([...at(d), 'CH', 'A', 'anything.example'])
  t.equal(a.status, 'REFUSED', 'any CHAOS question')
  t.equal(sent(d), 0, 'the upstream was not asked')
  t.notMatch(recursive.log().slice(logBefore), /version\.bind|hostname\.bind|id\.server/, 'dnsmasq logged no such query')
  t.equal(d.daemon.metrics.localAnswers.chaos, 7)
  t.equal(d.daemon.metrics.results.udp.refused, 6)
  t.equal(d.daemon.metrics.results.tcp.refused, 1)

  const named = await startTestDaemon({ upstreams: [recursive.url], dns: { chaos: { answer: 'egressd' } } })
  t.teardown(() => named.close())
  for (const proto of ['+notcp', '+tcp']) {
    const r = await dig([...at(named), proto, 'CH', 'TXT', 'Version.Bind'])
    t.equal(r.status, 'NOERROR', proto)
    t.match(r.raw, /Version\.Bind\.\s+0\s+CH\s+TXT\s+"egressd"/, `${proto}: one CH TXT record with the configured text`)
    t.ok(r.flags.includes('aa'), 'authoritative, as BIND answers it')
  }
  t.equal((await dig([...at(named), 'CH', 'TXT', 'hostname.bind'])).answers[0].data, '"egressd"')
  t.equal((await dig([...at(named), 'CH', 'TXT', 'other.bind'])).status, 'REFUSED', 'other CHAOS names are refused')
  t.equal((await dig([...at(named), 'CH', 'A', 'version.bind'])).status, 'REFUSED', 'other types too')
  t.equal(sent(named), 0)
  t.equal(named.daemon.metrics.results.udp.local, 2)
  t.equal(named.daemon.metrics.results.tcp.local, 1)
  // An IN question for the same name is an ordinary query.
  await dig([...at(named), 'version.bind', 'TXT'])
  t.equal(sent(named), 1, 'it is forwarded')
  t.equal((await dig([...at(named), 'h.test', 'A'])).answers[0].data, '192.0.2.11', 'and ordinary queries are answered')
})

t.test('zone transfers (AXFR, IXFR) are refused locally over UDP and TCP with EDE 21, never forwarded', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  // dig prints no header for a refused transfer, only that it failed (the dig helper rejects).
  const axfrTcp = await dig([...at(d), 'AXFR', 'test']).then(r => r.raw, (err: Error) => err.message)
  t.match(axfrTcp, /Transfer failed/, 'dig AXFR (over TCP): refused')
  const ixfrTcp = await dig([...at(d), 'IXFR=1', 'test']).then(r => r.raw, (err: Error) => err.message)
  t.match(ixfrTcp, /Transfer failed/, 'dig IXFR (over TCP): refused')
  // dig +notcp IXFR=1 prints no header for a refused transfer either: the same query, as dig
  // sends it, with the client's SOA in the authority section (RFC 1995 3). Well formed: answered
  // REFUSED, not FORMERR.
  const soa: packet.Answer = { name: 'test', type: 'SOA', class: 'IN', ttl: 0, data: { mname: '.', rname: '.', serial: 1, refresh: 0, retry: 0, expire: 0, minimum: 0 } }
  for (const proto of ['udp', 'tcp'] as const) {
    const ixfr = await raw(d, proto, { type: 'query', id: 9, questions: [{ name: 'test', type: 'IXFR', class: 'IN' }], authorities: [soa], additionals: [optRecord({ udpPayloadSize: 1232, flags: 0 })] })
    t.equal(ixfr.rcode, 'REFUSED', `IXFR with the client's SOA over ${proto}`)
    t.same(ixfr.authorities, [], 'the SOA does not come back')
    t.equal(opt(ixfr).options[0].data!.readUInt16BE(0), 21, 'EDE 21')
  }
  const withAnswer = await raw(d, 'udp', { type: 'query', id: 10, questions: [{ name: 'test', type: 'A', class: 'IN' }], authorities: [soa] })
  t.equal(withAnswer.rcode, 'FORMERR', 'an authority record in any other query is still a format error')
  for (const proto of ['udp', 'tcp'] as const) {
    for (const type of ['AXFR', 'IXFR'] as const) {
      const r = await raw(d, proto, { type: 'query', id: 7, questions: [{ name: 'test', type, class: 'IN' }], additionals: [optRecord({ udpPayloadSize: 1232, flags: 0 })] })
      t.equal(r.rcode, 'REFUSED', `${type} over ${proto}`)
      t.equal(r.id, 7)
      t.same(opt(r).options.map(o => [o.code, o.data!.readUInt16BE(0)]), [[15, 21]], 'EDE 21 Not Supported')
    }
  }
  t.equal(sent(d), 0, 'the upstream was not asked')
  t.equal(d.daemon.metrics.localAnswers['zone-transfer'], 8)
})

/** An upstream that answers every question SERVFAIL, with an EDE option when `ede` is given. */
async function servfailing (ede?: { code: number, text: string }) {
  return await startFakeUpstream((q, _m, reply) => {
    const data = ede === undefined ? undefined : Buffer.concat([Buffer.from([ede.code >> 8, ede.code & 0xff]), Buffer.from(ede.text)])
    reply(Buffer.from(packet.encode({
      type: 'response', id: q.id, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | 2,
      questions: q.questions,
      additionals: [optRecord({ udpPayloadSize: 1232, flags: 0, options: data === undefined ? [] : [{ code: 15, data }] })]
    })))
  })
}

/** dig's options to ask an API daemon's DNS listener. */
const atApi = (d: ApiDaemon): string[] => ['@127.0.0.1', '-p', String(d.dnsPort), '+tries=1', '+time=5']

/** Upstream health as GET /api/v1/status reports it. */
async function statusUpstreams (d: ApiDaemon): Promise<unknown[]> {
  const r = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  if (r.status !== 200) throw new Error(`status: HTTP ${r.status}`)
  return r.json.upstreams
}

/** A sample's value in GET /metrics (NaN when it is missing). */
async function metric (d: ApiDaemon, sample: string): Promise<number> {
  const r = await call(d.base, 'GET', '/metrics', { token: TOKENS.metrics })
  const line = r.text.split('\n').find(l => l.startsWith(sample + ' '))
  return line === undefined ? NaN : Number(line.slice(sample.length + 1))
}

t.test('every upstream answers SERVFAIL: the client gets SERVFAIL with EDE 22; each upstream counts a failure but is not demoted, /readyz stays ready', async t => {
  const s1 = await servfailing()
  const s2 = await servfailing()
  t.teardown(async () => { await s1.close(); await s2.close() })
  const d = await startApiDaemon({ upstreams: [s1.url, s2.url] })
  t.teardown(() => d.close())
  for (const proto of ['+notcp', '+tcp']) {
    const r = await dig([...atApi(d), proto, 'broken.test', 'A'])
    t.equal(r.status, 'SERVFAIL', proto)
    t.match(r.ede, /^22 \(No Reachable Authority\)/, `${proto}: EDE 22`)
  }
  t.equal(s1.received.length, 2, 'the first upstream was asked for each query (SERVFAIL is not cached)')
  t.equal(s2.received.length, 2, 'and the second one after it')
  t.match(await statusUpstreams(d), [
    { url: s1.url, healthy: true, queries: 2, failures: 2, consecutiveFailures: 0, lastError: /SERVFAIL/ },
    { url: s2.url, healthy: true, queries: 2, failures: 2, consecutiveFailures: 0, lastError: /SERVFAIL/ }
  ], 'both counted as failures, both still healthy')
  const ready = await call(d.base, 'GET', '/readyz')
  t.equal(ready.status, 200)
  t.same(ready.json, { status: 'ready' })
  t.equal(await metric(d, 'egressd_upstream_servfails_total'), 4, 'every SERVFAIL in /metrics')
  t.equal(await metric(d, `egressd_upstream_failures_total{upstream="${s1.url}"}`), 2)
  t.equal(d.daemon.metrics.outcomes.servfail, 2)
  t.equal(d.daemon.metrics.outcomes.resolved, 0)
  t.same(d.logs().filter(l => l.msg === 'upstream recovered' || String(l.msg).startsWith('upstream failed')), [], 'neither demoted nor "recovered"')
  // Still in configured order: the next question goes to the first upstream first.
  t.equal((await dig([...atApi(d), 'other.test', 'A'])).status, 'SERVFAIL')
  t.equal(s1.received.at(-1)?.questions?.[0].name, 'other.test', 'the first upstream was asked again')
})

t.test('50 queries for a name every upstream answers SERVFAIL do not make a single-upstream resolver unready', async t => {
  const s = await servfailing({ code: 6, text: 'bogus' })
  t.teardown(() => s.close())
  const d = await startApiDaemon({ upstreams: [s.url] })
  t.teardown(() => d.close())
  for (let i = 0; i < 50; i++) {
    const r = await dig([...atApi(d), 'dnssec-failed.test', 'A'])
    if (r.status !== 'SERVFAIL') { t.fail(`query ${i}: ${r.status}`); break }
  }
  t.equal(s.received.length, 50, 'each query reached the upstream (none cached, none in flight together)')
  t.match(await statusUpstreams(d), [{ healthy: true, failures: 50, consecutiveFailures: 0, lastError: /SERVFAIL \(EDE 6\)/ }])
  const ready = await call(d.base, 'GET', '/readyz')
  t.equal(ready.status, 200, `/readyz: ${ready.text}`)
  t.equal(d.daemon.metrics.upstreamServfails, 50)
})

t.test('an upstream EDE on SERVFAIL is passed on to the client', async t => {
  const s = await servfailing({ code: 6, text: 'upstream: bogus signature' })
  t.teardown(() => s.close())
  const d = await startTestDaemon({ upstreams: [s.url] })
  t.teardown(() => d.close())
  const r = await dig([...at(d), 'bogus.test', 'A'])
  t.equal(r.status, 'SERVFAIL')
  t.match(r.ede, /^6 \(DNSSEC Bogus\): \(upstream: bogus signature\)/)
  t.notMatch(r.raw, /EDE: 22/, 'not EDE 22 in its place')
})

t.test('an upstream that answers SERVFAIL where the next one answers is demoted: the next query goes to the other first', async t => {
  const s = await servfailing()
  t.teardown(() => s.close())
  const d = await startApiDaemon({ upstreams: [s.url, upstream.url] })
  t.teardown(() => d.close())
  const a = await dig([...atApi(d), 'h.test', 'A'])
  t.equal(a.status, 'NOERROR')
  t.same(a.answers.map(r => r.data), ['192.0.2.11'])
  t.match(await statusUpstreams(d), [
    { url: s.url, healthy: false, queries: 1, failures: 1, consecutiveFailures: 1, lastError: /SERVFAIL/ },
    { url: upstream.url, healthy: true, queries: 1, failures: 0, consecutiveFailures: 0 }
  ])
  t.match(d.logs().filter(l => String(l.msg).startsWith('upstream failed')), [{ level: 40, upstream: s.url, err: new RegExp(`SERVFAIL, but ${upstream.url} answered`) }])
  t.equal((await dig([...atApi(d), 'other.test', 'A'])).status, 'NOERROR')
  t.equal(s.received.length, 1, 'the SERVFAILing upstream is not asked first again')
  t.match(d.daemon.pool.health(), [{ queries: 1 }, { queries: 2 }], 'the other upstream was asked first')
  t.equal((await call(d.base, 'GET', '/readyz')).status, 200)
})

t.test('an upstream that answers SERVFAIL where the next one only REFUSES is not demoted (no usable answer shows it wrong)', async t => {
  const s = await servfailing()
  const r = await startFakeUpstream((q, _m, reply) => {
    reply(Buffer.from(packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_AVAILABLE | 5, questions: q.questions })))
  })
  t.teardown(async () => { await s.close(); await r.close() })
  const d = await startApiDaemon({ upstreams: [s.url, r.url] })
  t.teardown(() => d.close())
  t.equal((await dig([...atApi(d), 'h.test', 'A'])).status, 'REFUSED', 'the REFUSED answer is passed on')
  t.match(await statusUpstreams(d), [{ healthy: true, failures: 1, consecutiveFailures: 0, lastError: /SERVFAIL/ }, { healthy: true, failures: 0 }])
})

t.test('an upstream that failed and then answers SERVFAIL has not recovered', async t => {
  let n = 0
  const s = await startFakeUpstream((q, _m, reply) => {
    if (n++ === 0) return // the first query times out
    reply(Buffer.from(packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_AVAILABLE | 2, questions: q.questions })))
  })
  t.teardown(() => s.close())
  const d = await startTestDaemon({ upstreams: [{ url: s.url, timeoutMs: 200 }] })
  t.teardown(() => d.close())
  t.equal((await dig([...at(d), 'a.test', 'A'])).status, 'SERVFAIL', 'timed out')
  const r = await dig([...at(d), 'b.test', 'A'])
  t.equal(r.status, 'SERVFAIL', 'answered SERVFAIL')
  t.match(r.ede, /^22 /)
  t.equal(s.received.length, 2)
  // The timeout demoted it; the SERVFAIL counts, but neither recovers nor demotes it further.
  t.match(d.daemon.pool.health(), [{ healthy: false, failures: 2, consecutiveFailures: 1, lastError: /SERVFAIL/ }])
  t.same(d.logs().filter(l => l.msg === 'upstream recovered'), [], 'no "recovered" log line')
})
