// Transport and abuse limits: TLS is required off loopback (a config error naming api.tls, unless
// allowPlaintext), HTTPS works with a throwaway certificate, the per-client rate limit answers 429
// with Retry-After, the body limit is configurable, api.server's timeouts and connection caps reach
// the listener (HTTP and HTTPS), a taken API port or unreadable TLS files stop the start with a
// clear error; and POST /api/v1/reload reports what changed or why it was rejected.

import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import net from 'node:net'
import tls from 'node:tls'
import { parseConfig } from '../../src/config/load.js'
import { ConfigError, type EgressdError } from '../../src/errors.js'
import { makeTestPki } from '../helpers/tls-fronts.js'
import { call, startApiDaemon, TOKENS } from './helpers.js'

const parse = (yaml: string) => parseConfig(yaml, { resolvConf: 'nameserver 192.0.2.1' })

t.test('off loopback the API needs TLS or an explicit allowPlaintext', async t => {
  for (const listen of ['0.0.0.0:8053', '192.0.2.10:8053', '[::]:8053', '[2001:db8::1]:8053']) {
    const err = t.throws(() => parse(`api: { listen: "${listen}" }`)) as ConfigError
    t.type(err, ConfigError)
    t.same(err.issues.map(i => i.path), ['api.tls'], listen)
    t.match(err.issues[0].message, /required when api\.listen is not a loopback address/)
  }
  for (const listen of ['127.0.0.1:8053', '127.8.9.10:8053', '[::1]:8053']) t.doesNotThrow(() => parse(`api: { listen: "${listen}" }`), listen)
  t.equal(parse('api: { listen: "0.0.0.0:8053", allowPlaintext: true }').api.allowPlaintext, true)
  const tls = parse('api: { listen: "0.0.0.0:8053", tls: { cert: /etc/egressd/api.pem, key: /etc/egressd/api.key } }').api
  t.same(tls.tls, { cert: '/etc/egressd/api.pem', key: '/etc/egressd/api.key' })
  const defaults = parse('').api
  t.same({ ...defaults, listen: undefined }, {
    listen: undefined,
    tokens: [],
    tls: undefined,
    allowPlaintext: false,
    bodyLimit: 1048576,
    rateLimit: { perSecond: 20, burst: 100 },
    server: { headersTimeoutMs: 10000, requestTimeoutMs: 30000, idleTimeoutMs: 30000, keepAliveTimeoutMs: 5000, maxRequestsPerSocket: 1000, maxConnections: 1024, maxConnectionsPerClient: 64 },
    liveTail: { maxStreams: 64, maxStreamsPerClient: 4, maxQueuedBytesPerStream: 262144, stuckTimeoutMs: 30000 }
  })
  const slow = t.throws(() => parse('api: { server: { headersTimeoutMs: 60000, requestTimeoutMs: 30000 } }')) as ConfigError
  t.same(slow.issues, [{ path: 'api.server.headersTimeoutMs', message: 'must not be greater than api.server.requestTimeoutMs (60000 > 30000)' }])
  const zero = t.throws(() => parse('api: { server: { headersTimeoutMs: 0, maxConnectionsPerClient: 0 }, liveTail: { maxQueuedBytesPerStream: 1024, maxStreamsPerClient: 0 } }')) as ConfigError
  t.same(zero.issues.map(i => i.path).sort(), ['api.liveTail.maxQueuedBytesPerStream', 'api.liveTail.maxStreamsPerClient', 'api.server.headersTimeoutMs', 'api.server.maxConnectionsPerClient'])
  const bad = t.throws(() => parse('api: { rateLimit: { perSecond: 0 }, bodyLimit: 10, tls: { cert: x } }')) as ConfigError
  t.same(bad.issues.map(i => i.path).sort(), ['api.bodyLimit', 'api.rateLimit.perSecond', 'api.tls.key'])
})

t.test('HTTPS with a throwaway certificate; HSTS; plain HTTP refused', async t => {
  const pki = makeTestPki()
  t.teardown(() => pki.remove())
  const pair = pki.issue('egressd-api', ['IP:127.0.0.1'])
  writeFileSync(join(pki.dir, 'api.pem'), pair.cert)
  writeFileSync(join(pki.dir, 'api.key'), pair.key)
  const d = await startApiDaemon({ api: { tls: { cert: join(pki.dir, 'api.pem'), key: join(pki.dir, 'api.key') }, server: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } } })
  t.teardown(() => d.close())
  t.match(d.base, /^https:/)
  const ca = readFileSync(pki.caFile)
  const r = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer, ca })
  t.equal(r.status, 200)
  t.equal(r.json.config.api.tls, true)
  t.equal(r.headers['strict-transport-security'], 'max-age=31536000')
  // api.server reaches the HTTPS listener: a TCP connection that never starts TLS, and a TLS one
  // that sends half its headers, are both closed after headersTimeoutMs (1 s here).
  const port = Number(new URL(d.base).port)
  const closedAfter = (s: net.Socket): Promise<number> => {
    const at = Date.now()
    return new Promise(resolve => {
      const timer = setTimeout(() => resolve(Infinity), 5000)
      s.on('error', () => {})
      s.resume()
      s.once('close', () => { clearTimeout(timer); resolve(Date.now() - at) })
    })
  }
  const silent = net.connect(port, '127.0.0.1')
  const tlsSlow = tls.connect({ host: '127.0.0.1', port, ca }, () => tlsSlow.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'))
  t.teardown(() => { silent.destroy(); tlsSlow.destroy() })
  const [a, b] = await Promise.all([closedAfter(silent), closedAfter(tlsSlow)])
  t.ok(a >= 900 && a < 3000, `no TLS handshake: closed after ${a} ms`)
  t.ok(b >= 900 && b < 3000, `half the headers over TLS: closed after ${b} ms`)
  await t.rejects(call(d.base, 'GET', '/healthz'), 'a client that does not trust the CA refuses the certificate')
  const plain = await call(d.base.replace('https:', 'http:'), 'GET', '/healthz').then(x => x.status, () => 'refused')
  t.not(plain, 200, 'no plain HTTP on the TLS port')
})

t.test('unreadable TLS files and a taken port stop the start with a named error', async t => {
  const failure = (p: Promise<unknown>): Promise<EgressdError> => p.then(() => { throw new Error('started') }, (err: EgressdError) => err)
  const tlsErr = await failure(startApiDaemon({ api: { tls: { cert: '/nonexistent/api.pem', key: '/nonexistent/api.key' } } }))
  t.equal(tlsErr.code, 'EGRESSD_ERR_API_TLS')
  t.equal(tlsErr.message, 'api.tls.cert: cannot read /nonexistent/api.pem: ENOENT')
  const busy = net.createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>(resolve => busy.close(() => resolve())))
  const port = (busy.address() as net.AddressInfo).port
  const busyErr = await failure(startApiDaemon({ api: { listen: `127.0.0.1:${port}` } }))
  t.equal(busyErr.code, 'EGRESSD_ERR_LISTEN')
  t.match(busyErr.message, `api.listen 127.0.0.1:${port}: `)
})

t.test('rate limit per client address answers 429 with Retry-After; body limit is configurable', async t => {
  const d = await startApiDaemon({ api: { rateLimit: { perSecond: 1, burst: 5 }, bodyLimit: 2048 } })
  t.teardown(() => d.close())
  const statuses: number[] = []
  let limited
  for (let i = 0; i < 8; i++) {
    const r = await call(d.base, 'GET', '/healthz')
    statuses.push(r.status)
    if (r.status === 429) limited = r
  }
  t.same(statuses.slice(0, 5), [200, 200, 200, 200, 200])
  t.ok(statuses.slice(5).every(s => s === 429), String(statuses))
  t.ok(Number(limited?.headers['retry-after']) >= 1)
  t.match(limited?.json, { error: 'Too Many Requests', statusCode: 429, message: /too many requests from 127\.0\.0\.1/ })
  t.equal(limited?.headers['x-content-type-options'], 'nosniff')
  await new Promise(resolve => setTimeout(resolve, 2100))
  const big = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'a.org', comment: 'x'.repeat(400) + 'y'.repeat(2000) } })
  t.equal(big.status, 413)
  t.match(big.json.message, /^body: larger than the limit of 2048 bytes/)
  const metrics = await call(d.base, 'GET', '/metrics', { token: TOKENS.metrics })
  t.match(metrics.text, /^egressd_api_rate_limited_total [3-9]$/m)
})

t.test('POST /api/v1/reload: applied changes, restart-only changes, and a rejected file', async t => {
  const d = await startApiDaemon()
  t.teardown(() => d.close())
  const cfg = JSON.parse(readFileSync(d.configFile, 'utf8'))
  // A new viewer token and a new cache size apply; a new API port needs a restart.
  cfg.api.tokens = cfg.api.tokens.filter((x: { role: string }) => x.role !== 'viewer')
  cfg.cache = { maxEntries: 5000 }
  cfg.api.listen = '127.0.0.1:0'
  cfg.api.bodyLimit = 4096
  // The live tail's limits are read per new stream; the listener's need a restart.
  cfg.api.liveTail = { maxStreams: 2 }
  cfg.api.server = { keepAliveTimeoutMs: 2000 }
  // logQueries is read per query; the store's other settings belong to its threads.
  cfg.store = { ...cfg.store, logQueries: 'none', batchMs: 250 }
  writeFileSync(d.configFile, JSON.stringify(cfg))
  const r = await call(d.base, 'POST', '/api/v1/reload', { token: TOKENS.admin })
  t.equal(r.status, 200, r.text)
  t.match(r.json, { status: 'applied', config: d.configFile, generation: Number, tokens: { added: [], removed: ['viewer-token'], changed: [] } })
  t.ok(r.json.applied.includes('api.tokens'))
  t.ok(r.json.applied.includes('cache'))
  t.ok(r.json.applied.includes('store.logQueries'))
  t.ok(r.json.applied.includes('api.liveTail'))
  t.same(r.json.needsRestart, ['api.bodyLimit', 'api.server', 'store.batchMs'])
  t.equal((await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })).status, 401, 'the removed token no longer works')

  writeFileSync(d.configFile, '{"dns": {"listen": ["nope"]}, "bogus": 1}')
  const bad = await call(d.base, 'POST', '/api/v1/reload', { token: TOKENS.admin })
  t.equal(bad.status, 422)
  t.match(bad.json, { error: 'Unprocessable Entity', statusCode: 422, message: /reload rejected, the running config stays/ })
  t.ok(bad.json.issues.some((i: string) => i.startsWith('dns.listen.0: ')), bad.text)
  t.ok(bad.json.issues.some((i: string) => /^bogus: unknown key/.test(i)), bad.text)
  t.equal((await call(d.base, 'GET', '/healthz')).status, 200, 'still serving')

  const audit = await call(d.base, 'GET', '/api/v1/audit', { token: TOKENS.admin })
  t.match(audit.json.entries, [
    { action: 'config.reload.rejected', actor: 'admin-token', after: { issues: Array } },
    { action: 'config.reload', actor: 'admin-token', after: { applied: Array } }
  ])
  t.equal(audit.json.entries.filter((e: { action: string }) => e.action.startsWith('config.reload')).length, 2, 'each reload audited once, as the token')
})
