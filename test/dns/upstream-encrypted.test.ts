// Encrypted upstreams end to end: dig -> daemon -> tls:// (DNS over TLS) or https:// (DNS over HTTPS)
// -> a node TLS/HTTPS front with a certificate from a throwaway CA -> a real dnsmasq on loopback.
// Checks that answers come through, that DoT pipelines over one connection, that DoH speaks RFC 8484
// (POST, application/dns-message, ID 0), that certificates are verified (wrong name or an untrusted
// CA is a SERVFAIL and no query reaches the server), and that a broken DoH upstream is failed over.

import t from 'tap'
import * as packet from 'dns-packet'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { dig, type DigResult } from '../helpers/dig.js'
import { makeTestPki, startDohFront, startDotFront } from '../helpers/tls-fronts.js'

const upstream = await startDnsmasq()
t.teardown(() => upstream.stop())
const target = { host: upstream.host, port: upstream.port }

const pki = makeTestPki()
t.teardown(() => pki.remove())
const localhost = pki.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1'])
const wrong = pki.issue('wrong.example', ['DNS:wrong.example'])

const ask = (d: TestDaemon, ...args: string[]): Promise<DigResult> =>
  dig([`@${d.host}`, '-p', String(d.port), '+tries=1', '+time=5', ...args])

t.test('tls:// upstream: answers come through one verified, reused DoT connection', async t => {
  const front = await startDotFront({ ...localhost, target })
  t.teardown(() => front.close())
  const d = await startTestDaemon({
    upstreams: [{ url: `tls://127.0.0.1:${front.port}`, servername: 'localhost', caFile: pki.caFile, timeoutMs: 1000 }]
  })
  t.teardown(() => d.close())

  const a = await ask(d, 'h.test', 'A')
  t.equal(a.status, 'NOERROR')
  t.same(a.answers.map(r => r.data), ['192.0.2.11'])
  const aaaa = await ask(d, 'h.test', 'AAAA')
  t.same(aaaa.answers.map(r => r.data), ['2001:db8::11'])
  const alias = await ask(d, 'alias.test', 'A')
  t.same(alias.answers.map(r => `${r.type} ${r.data}`), ['CNAME h.test.', 'A 192.0.2.11'])
  const nx = await ask(d, 'nx.test', 'A')
  t.equal(nx.status, 'NXDOMAIN')
  const big = await ask(d, '+tcp', 'big.test', 'TXT')
  t.equal(big.answers.length, 8, 'a 2 KB answer comes whole over the stream, no truncation')
  t.equal(d.daemon.metrics.upstreamTcpRetries, 0)

  t.equal(front.stats.connections, 1, 'all five queries went over one TLS connection')
  t.equal(front.stats.frames, 5, 'the front decrypted five DNS messages')
  t.equal(front.stats.answers, 5)
  t.same(front.stats.servernames, ['localhost'], 'SNI carries the configured servername')
  t.same(front.stats.alpn, ['dot'], 'ALPN "dot" (RFC 7858) negotiated')
  const h = d.daemon.pool.health()[0]
  t.equal(h.healthy, true)
  t.equal(h.queries, 5)
  t.equal(h.failures, 0)
})

t.test('tls:// upstream pipelines: queries in flight together share the connection', async t => {
  const n = 4
  // The front relays nothing until n queries have arrived on a connection: a client that waits for
  // each answer before sending the next query, or opens a connection per query, never gets one.
  const front = await startDotFront({ ...localhost, target, holdUntil: n })
  t.teardown(() => front.close())
  const d = await startTestDaemon({
    // Longer than the other tests: all n dig processes must have started before any answer comes.
    upstreams: [{ url: `tls://127.0.0.1:${front.port}`, servername: 'localhost', caFile: pki.caFile, timeoutMs: 5000 }]
  })
  t.teardown(() => d.close())
  const names = ['h.test A', 'h.test AAAA', 'other.test A', 'alias.test A'].slice(0, n)
  const results = await Promise.all(names.map(q => ask(d, '+time=10', ...q.split(' '))))
  t.same(results.map(r => r.status), Array(n).fill('NOERROR'))
  t.same(results.map(r => r.answers.at(-1)?.data), ['192.0.2.11', '2001:db8::11', '192.0.2.12', '192.0.2.11'])
  t.equal(front.stats.connections, 1, 'one connection')
  t.equal(front.stats.frames, n)
  t.equal(front.stats.maxInFlight, n, `${n} queries in flight at once on it`)
})

t.test('tls:// upstream given by IP without servername: the certificate is checked against the IP', async t => {
  const front = await startDotFront({ ...localhost, target })
  t.teardown(() => front.close())
  const d = await startTestDaemon({ upstreams: [{ url: `tls://127.0.0.1:${front.port}`, caFile: pki.caFile, timeoutMs: 1000 }] })
  t.teardown(() => d.close())
  const a = await ask(d, 'h.test', 'A')
  t.equal(a.status, 'NOERROR')
  t.same(a.answers.map(r => r.data), ['192.0.2.11'])
  t.same(front.stats.servernames, [false], 'no SNI for an IP address (RFC 6066)')
  t.equal(front.stats.frames, 1)
})

t.test('https:// upstream: RFC 8484 POST with ID 0 over a verified, kept-alive connection', async t => {
  const front = await startDohFront({ ...localhost, target })
  t.teardown(() => front.close())
  const d = await startTestDaemon({
    upstreams: [{ url: `https://127.0.0.1:${front.port}/dns-query`, servername: 'localhost', caFile: pki.caFile, timeoutMs: 1000 }]
  })
  t.teardown(() => d.close())

  const a = await ask(d, 'h.test', 'A')
  t.equal(a.status, 'NOERROR')
  t.same(a.answers.map(r => r.data), ['192.0.2.11'])
  t.equal(front.requests.length, 1)
  const req = front.requests[0]
  t.equal(req.method, 'POST')
  t.equal(req.path, '/dns-query')
  t.equal(req.contentType, 'application/dns-message')
  t.equal(req.accept, 'application/dns-message')
  t.equal(req.id, 0, 'the DoH query carries ID 0 (RFC 8484 4.1)')
  const q = packet.decode(req.body)
  t.same(q.questions?.map(x => `${x.name} ${x.type}`), ['h.test A'])

  const other = await ask(d, 'other.test', 'A')
  t.same(other.answers.map(r => r.data), ['192.0.2.12'])
  const nx = await ask(d, 'nx.test', 'A')
  t.equal(nx.status, 'NXDOMAIN')
  t.equal(front.requests.length, 3)
  t.ok(front.requests.every(r => r.id === 0 && r.method === 'POST'), 'every query: POST, ID 0')
  t.equal(front.connections(), 1, 'the HTTPS connection is kept alive and reused')
  t.equal(d.daemon.pool.health()[0].healthy, true)
})

t.test('certificates are verified: a wrong name or an untrusted CA is SERVFAIL and no query leaks', async t => {
  const cases = [
    { what: 'tls://, certificate for another name', proto: 'tls', pair: wrong, caFile: pki.caFile, err: /altnames/ },
    { what: 'tls://, CA not trusted (no caFile)', proto: 'tls', pair: localhost, caFile: undefined, err: /certificate|issuer/i },
    { what: 'https://, certificate for another name', proto: 'https', pair: wrong, caFile: pki.caFile, err: /altnames/ },
    { what: 'https://, CA not trusted (no caFile)', proto: 'https', pair: localhost, caFile: undefined, err: /certificate|issuer/i }
  ] as const
  for (const c of cases) {
    await t.test(c.what, async t => {
      let leaked: () => number
      let refused: () => number
      let port: number
      if (c.proto === 'tls') {
        const front = await startDotFront({ ...c.pair, target })
        t.teardown(() => front.close())
        leaked = () => front.stats.frames
        refused = () => front.stats.handshakeErrors
        port = front.port
      } else {
        const front = await startDohFront({ ...c.pair, target })
        t.teardown(() => front.close())
        leaked = () => front.requests.length
        refused = () => front.handshakeErrors()
        port = front.port
      }
      const url = c.proto === 'tls' ? `tls://127.0.0.1:${port}` : `https://127.0.0.1:${port}/dns-query`
      const d = await startTestDaemon({ upstreams: [{ url, servername: 'localhost', caFile: c.caFile, timeoutMs: 1000 }] })
      t.teardown(() => d.close())

      const a = await ask(d, 'h.test', 'A')
      t.equal(a.status, 'SERVFAIL')
      t.same(a.answers, [], 'no answer records')
      t.equal(d.daemon.metrics.outcomes.servfail, 1)
      t.ok(refused() >= 1, 'the daemon reached the server and broke off the TLS handshake')
      t.equal(leaked(), 0, 'the query never reached the unverified server')
      const h = d.daemon.pool.health()[0]
      t.equal(h.healthy, false)
      t.equal(h.failures, 1)
      t.match(h.lastError, c.err, 'lastError names the certificate problem')
      t.notMatch(h.lastError, /no answer within/, 'it failed fast, not by timeout')
    })
  }
})

t.test('a broken DoH upstream is failed over to a working tls:// one', async t => {
  const cases = [
    { mode: 'status500', err: /HTTP 500/ },
    { mode: 'garbage', err: /answer ID is not 0/ }
  ] as const
  for (const c of cases) {
    await t.test(c.mode, async t => {
      const doh = await startDohFront({ ...localhost, target, mode: c.mode })
      t.teardown(() => doh.close())
      const dot = await startDotFront({ ...localhost, target })
      t.teardown(() => dot.close())
      const d = await startTestDaemon({
        upstreams: [
          { url: `https://127.0.0.1:${doh.port}/dns-query`, servername: 'localhost', caFile: pki.caFile, timeoutMs: 1000 },
          { url: `tls://127.0.0.1:${dot.port}`, servername: 'localhost', caFile: pki.caFile, timeoutMs: 1000 }
        ]
      })
      t.teardown(() => d.close())

      const a = await ask(d, 'h.test', 'A')
      t.equal(a.status, 'NOERROR')
      t.same(a.answers.map(r => r.data), ['192.0.2.11'])
      t.equal(doh.requests.length, 1, 'the DoH upstream was asked first')
      t.equal(dot.stats.frames, 1, 'then the DoT upstream, which answered')
      const [h0, h1] = d.daemon.pool.health()
      t.equal(h0.healthy, false)
      t.match(h0.lastError, c.err)
      t.equal(h1.healthy, true)
      t.equal(h1.queries, 1)

      const b = await ask(d, 'other.test', 'A')
      t.same(b.answers.map(r => r.data), ['192.0.2.12'])
      t.equal(doh.requests.length, 1, 'the failed DoH upstream is now tried last')
      t.equal(dot.stats.frames, 2)
      t.equal(dot.stats.connections, 1)
    })
  }
})
