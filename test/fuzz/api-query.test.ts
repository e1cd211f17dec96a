// Fuzzing the management API's query strings (fastify app.inject): every GET route of the OpenAPI
// document (the block log's routes registered with a real reader over a store with events; the live
// tail is left out, its 200 never ends) gets random query strings built from its own parameter
// names and values that the filters, the schemas and the query-string parser find hard: repeated
// keys, bad percent escapes, '[]', '__proto__', huge numbers, relative times. Each answer is a 2xx,
// or a 4xx with a JSON error body that has a message; never a 5xx.

import t from 'tap'
import { Writable } from 'node:stream'
import { buildApp } from '../../src/api/app.js'
import { Daemon } from '../../src/daemon.js'
import { createLogger } from '../../src/log.js'
import { BlockLog } from '../../src/store/block-log.js'
import { BlockSearch } from '../../src/store/block-reader.js'
import { EventWriter } from '../../src/store/block-writer.js'
import { testConfig } from '../helpers/daemon.js'
import { event, freshDb, memoryLog } from '../store/helpers.js'
import { TOKEN_CONFIG, TOKENS } from '../api/helpers.js'
import { fc, fuzz } from './harness.js'

const TARGET = 'api-query'
const T0 = Date.UTC(2030, 0, 1)
const NOW = T0 + 86_400_000

// Everything inside one subtest: tap waits for it, however long the setup's awaits take (at the top
// level, a slow block search once let the root test end before its assertions ran).
t.test('GET routes with fuzzed query strings', async t => {
  // A store with a day of events for the block-log routes.
  const { path, db } = freshDb()
  const writer = new EventWriter(db)
  writer.write(Array.from({ length: 300 }, (_, i) => event({
    ts: T0 + i * 288_000, client: `10.0.${i % 3}.${i % 7}`, qname: i % 10 === 0 ? 'dns.google' : `h${i % 13}.telegram.org`, category: i % 10 === 0 ? 'doh-bypass' : 'telegram'
  })))
  const { log: storeLog } = memoryLog()
  const live = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 50, retention: { days: 36500, maxRows: 0, maxBytes: 0 }, log: storeLog })
  const reader = await BlockSearch.open({ path, live, now: () => NOW })

  const sink = new Writable({ write (_c, _e, cb) { cb() } })
  const log = createLogger('warn', sink)
  const config = testConfig({ api: { listen: '127.0.0.1:0', tokens: TOKEN_CONFIG, rateLimit: { perSecond: 1_000_000, burst: 10_000_000 } } })
  const daemon = new Daemon(config, { log, now: () => NOW })
  await daemon.start()
  // The daemon as the API's host, with the block search over the store above in place of its own.
  const host = new Proxy(daemon, {
    get: (d, k) => {
      if (k === 'blockSearch') return reader
      const v: unknown = Reflect.get(d, k, d)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(d) : v
    }
  })
  const app = await buildApp({ host, log, now: () => NOW, version: 'fuzz' })
  await app.ready()
  t.teardown(async () => { await app.close(); await daemon.close(); await reader.close(); await live.close() })

  // The GET routes and their query parameters, from the OpenAPI document.
  const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: `Bearer ${TOKENS.admin}` } })).json()
  const ROUTES: Array<{ path: string, params: string[] }> = []
  for (const [p, item] of Object.entries<Record<string, { parameters?: Array<{ in: string, name: string }> }>>(doc.paths)) {
    if (item.get === undefined || p === '/api/v1/blocks/stream') continue
    ROUTES.push({ path: p, params: (item.get.parameters ?? []).filter(x => x.in === 'query').map(x => x.name) })
  }
  const ALL_PARAMS = [...new Set(ROUTES.flatMap(r => r.params))]

  t.ok(ROUTES.length >= 8, `${ROUTES.length} GET routes: ${ROUTES.map(r => r.path).join(' ')}`)
  t.ok(ROUTES.some(r => r.path === '/api/v1/blocks' && r.params.includes('from')), 'the block search and its filters are among them')
  t.ok((await app.inject({ method: 'GET', url: '/api/v1/blocks?from=2030-01-01T00:00:00Z&to=now', headers: { authorization: `Bearer ${TOKENS.viewer}` } })).json<{ rows: unknown[] }>().rows.length > 0, 'the block routes read the store above')

  const VALUES = [
    '', ' ', 'now', '-24h', '-7d', '-999999999w', '-999999998w', '-14000000w', '-14300000w', '-1y', '0', '-1', '1', '100', '1000', '100000', '1e3', '9999999999999999999999', '1.5', 'NaN', 'Infinity', '0x10',
    '2030-01-01', '2030-01-01T05:00:00Z', '2030-13-45', '1893456000000', 'true', 'false', 'yes', 'null', 'undefined', '[]', '{}', '[object Object]',
    '10.0.1.0/24', '10.0.0.1', '::1', 'fe80::1%25eth0', '1.2.3.4/33', 'telegram.org', 'Telegram.ORG.', 'a..b', '%D0%BF%D1%80%D0%B8%D0%BC%D0%B5%D1%80.%D1%80%D1%84',
    'AAAA', '28', '65536', 'TYPE65', 'telegram', 'doh-bypass', 'nxdomain', 'json', 'ndjson', 'csv', 'xml', 'asc', 'desc', '1m', '1h', '1d', '2d',
    'eyJ0cyI6MX0', 'AAAA%3D', '%', '%ZZ', '%00', '%C0%80', '%E2%80%AE', '%F0%9F%92%A9', '%ED%A0%80', '+', '%2B', '%26', '%3D', 'a%20b', 'x'.repeat(301), '__proto__'
  ]

  const KEYS_EXTRA = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'a[b]', 'from[]', '', '%', '%ZZ', 'x', 'limit%00', 'FROM']

  /** Values that fit a parameter's kind, so that checks past the schema are reached. */
  const BY_KEY: Record<string, string[]> = {
    from: ['now', '-24h', '-7d', '-999999999w', '-999999998w', '-14000000w', '-14300000w', '0', '1893456000000', '2030-01-01', '2030-01-01T05:00:00Z', '2030-13-45', '-0s'],
    to: ['now', '-1h', '-999999998w', '-999999997w', '-13999999w', '-14299999w', '1', '1893542400000', '2030-01-02', '9999-12-31T23:59:59Z', '999999999999999'],
    limit: ['0', '1', '2', '100', '10000', '10001', '-1', '1.5', '1e3', ''],
    top: ['0', '1', '10', '1000', '1001', '-5'],
    client: ['10.0.1.0/24', '10.0.0.1', '::1', '::ffff:10.0.0.1', '10.0.0.0/33', 'fe80::1%25eth0', ''],
    domain: ['telegram.org', 'Telegram.ORG.', 'a..b', '%D0%BF.%D1%80%D1%84', 'x'.repeat(300)],
    name: ['telegram.org', 'a..b', '', '*.x', 'x'.repeat(254)],
    qtype: ['A', 'AAAA', '28', '65536', 'TYPE65', 'BOGUS'],
    cursor: ['', 'x', 'eyJ0cyI6MX0', 'AAAA', '%00'],
    format: ['json', 'ndjson', 'csv', 'xml'],
    order: ['asc', 'desc', 'up'],
    bucket: ['1m', '1h', '1d', '1w']
  }

  const queryArb = fc.tuple(
    fc.nat(),
    fc.array(fc.tuple(
      fc.oneof({ weight: 6, arbitrary: fc.nat().map(i => ({ own: i })) }, { weight: 2, arbitrary: fc.constantFrom(...ALL_PARAMS) }, { weight: 1, arbitrary: fc.constantFrom(...KEYS_EXTRA) }),
      fc.oneof({ weight: 4, arbitrary: fc.nat().map(i => ({ fit: i })) }, { weight: 4, arbitrary: fc.constantFrom(...VALUES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map(encodeURIComponent) }, { weight: 1, arbitrary: fc.constant(null) })
    ), { maxLength: 6 }),
    fc.constantFrom('&', '&', '&', '&&', ';')
  ).map(([r, pairs, sep]) => {
    const route = ROUTES[r % ROUTES.length]
    const qs = pairs.map(([k, v]) => {
      const key = typeof k === 'string' ? k : route.params.length > 0 ? route.params[k.own % route.params.length] : 'x'
      if (v === null) return key
      const fit = BY_KEY[key] ?? VALUES
      return `${key}=${typeof v === 'string' ? v : fit[v.fit % fit.length]}`
    }).join(sep)
    return { url: route.path + (pairs.length > 0 ? `?${qs}` : ''), role: r % 5 === 0 ? 'viewer' as const : 'admin' as const }
  })

  fuzz(t, {
    target: TARGET,
    name: 'get-routes',
    runs: 300,
    scale: 0.05,
    async: true,
    maxMsPerInput: 3000,
    arb: queryArb,
    check: async ({ url, role }) => {
      const r = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKENS[role]}` } })
      if (r.statusCode >= 500 || r.statusCode < 200 || (r.statusCode >= 300 && r.statusCode < 400)) throw new Error(`GET ${url}: ${r.statusCode} ${r.body.slice(0, 300)}`)
      if (r.statusCode >= 400) {
        if (!/application\/json/.test(String(r.headers['content-type']))) throw new Error(`GET ${url}: ${r.statusCode} with ${String(r.headers['content-type'])}`)
        const body = r.json()
        if (typeof body.message !== 'string' || body.message === '' || body.statusCode !== r.statusCode) throw new Error(`GET ${url}: ${r.statusCode} body ${r.body.slice(0, 300)}`)
      }
    }
  })
})
