// The block-log API plugin on a bare fastify instance with the API's error handler (inject) and
// through a real socket: search
// with every format (CSV and NDJSON parse back to the JSON rows), pagination, 400s naming the
// parameter, stats, bypass, the SSE live tail and its limits (streams per client and in all, a
// client that does not read cut off with the reason), and the route contract (viewer role,
// schema, tags).

import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { request } from 'node:http'
import type net from 'node:net'
import { BlockLog } from '../../src/store/block-log.js'
import { BlockSearch } from '../../src/store/block-reader.js'
import { EventWriter } from '../../src/store/block-writer.js'
import { blockRoutes } from '../../src/api/routes/blocks.js'
import { installErrorHandlers } from '../../src/api/errors.js'
import { newApiLimitCounters } from '../../src/api/rate-limit.js'
import type { LiveTailConfig } from '../../src/config/types.js'
import type { BlockRow } from '../../src/store/block-event.js'
import { event, freshDb, memoryLog, tempDbPath } from '../store/helpers.js'
import { rawGet, readToEnd } from '../hostile/api-sockets.js'

const T0 = Date.UTC(2030, 0, 1)
const NOW = T0 + 2 * 86_400_000
const { path, db } = freshDb()
const w = new EventWriter(db)
const evs: Array<ReturnType<typeof event>> = []
for (let i = 0; i < 5000; i++) {
  evs.push(event({
    ts: T0 + i * 30_000,
    client: `10.0.${i % 3}.${i % 7}`,
    qname: i % 10 === 0 ? 'dns.google' : `h${i % 13}.telegram.org`,
    category: i % 10 === 0 ? 'doh-bypass' : 'telegram',
    // Fields that need CSV quoting.
    rule: i % 2 === 0 ? 'has,comma' : 'has "quote"\nand newline',
    list: 'blocklists/tele,gram/domains.txt'
  }))
}
w.write(evs)

/** fastify with the API's one error handler (which answers QueryErrors 400 naming the parameter), as the app has it. */
function bareApp (log: ReturnType<typeof memoryLog>['log']): FastifyInstance {
  const app = Fastify()
  installErrorHandlers(app, log, 1 << 20)
  return app
}

function parseCsv (text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++ } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') { row.push(field); field = '' } else if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++ } else field += c
  }
  return rows
}

function fromCsv (header: string[], r: string[]): Record<string, unknown> {
  const num = new Set(['id', 'ts', 'line', 'rcode', 'latencyMs', 'port', 'attempts'])
  return Object.fromEntries(header.map((h, i) => [h, r[i] === '' && ['list', 'line', 'rule', 'listHash', 'rcode', 'latencyMs', 'port', 'proto', 'attempts'].includes(h) ? null : num.has(h) ? Number(r[i]) : r[i]]))
}

t.test('routes on a bare fastify (inject)', async t => {
  const { log } = memoryLog()
  const live = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 50, retention: { days: 36500, maxRows: 0, maxBytes: 0 }, log })
  const reader = await BlockSearch.open({ path, live, now: () => NOW })
  const app = bareApp(log)
  const routes: Array<{ url: string, config: unknown, schema: { tags?: unknown, summary?: unknown, querystring?: { additionalProperties?: unknown } } }> = []
  app.addHook('onRoute', r => { if (r.method === 'GET') routes.push({ url: r.url, config: r.config, schema: r.schema as (typeof routes)[number]['schema'] }) })
  await app.register(blockRoutes, { reader })
  await app.ready()
  t.teardown(async () => { await app.close(); await reader.close(); await live.close() })

  t.test('route contract: viewer role, schema with tags and summary', async t => {
    t.same(routes.map(r => r.url).sort(), ['/api/v1/blocks', '/api/v1/blocks/stream', '/api/v1/bypass', '/api/v1/stats'])
    for (const r of routes) {
      t.same(r.config, { role: 'viewer' }, r.url)
      t.same(r.schema.tags, ['blocks'])
      t.type(r.schema.summary, 'string')
      t.equal(r.schema.querystring?.additionalProperties, false)
    }
  })

  const get = async (url: string) => app.inject({ method: 'GET', url })

  t.test('json pages with a cursor cover the match exactly', async t => {
    const ids: number[] = []
    let next: string | undefined
    let pages = 0
    do {
      const r = await get(`/api/v1/blocks?category=telegram&client=10.0.1.0/24&limit=200${next !== undefined ? `&cursor=${next}` : ''}`)
      t.equal(r.statusCode, 200)
      const body = r.json<{ rows: BlockRow[], next?: string }>()
      ids.push(...body.rows.map(x => x.id))
      next = body.next
      pages++
    } while (next !== undefined && pages < 100)
    const want = evs.map((e, i) => ({ e, id: i + 1 })).filter(x => x.e.category === 'telegram' && x.e.client.startsWith('10.0.1.')).map(x => x.id).reverse()
    t.same(ids, want)
  })

  t.test('CSV and NDJSON parse back to the same rows as JSON', async t => {
    const q = 'domain=telegram.org&suffix=true&from=2030-01-01T05:00:00Z&to=2030-01-01T20:00:00Z'
    const json = (await get(`/api/v1/blocks?${q}&limit=10000`)).json<{ rows: BlockRow[] }>()
    t.ok(json.rows.length > 1000, `${json.rows.length} rows`)
    const nd = await get(`/api/v1/blocks?${q}&format=ndjson`)
    t.match(nd.headers['content-type'], /application\/x-ndjson/)
    t.same(nd.body.trim().split('\n').map(l => JSON.parse(l)), json.rows)
    const csv = await get(`/api/v1/blocks?${q}&format=csv`)
    t.match(csv.headers['content-type'], /text\/csv/)
    const [header, ...rows] = parseCsv(csv.body)
    t.same(header, ['id', 'time', 'ts', 'client', 'group', 'qname', 'qtype', 'matched', 'value', 'category', 'action', 'list', 'line', 'rule', 'listHash', 'rcode', 'latencyMs', 'port', 'proto', 'attempts'])
    t.same(rows.map(r => fromCsv(header, r)), json.rows)
    t.match(csv.body, /"has ""quote""\nand newline"/, 'RFC 4180 quoting')
    t.match(rows[0][1], /^2030-01-01T\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO time')
    const capped = await get(`/api/v1/blocks?${q}&format=ndjson&limit=5`)
    t.equal(capped.body.trim().split('\n').length, 5)
    t.type(capped.headers['x-next-cursor'], 'string')
  })

  t.test('a bad parameter gets a 400 that names it', async t => {
    for (const [qs, name] of [['limit=10001', 'limit'], ['from=yesterday', 'from'], ['client=10.0.0.0/99', 'client'], ['qtype=NOPE', 'qtype'],
      ['format=xml', 'format'], ['cursor=zzz', 'cursor'], ['bogus=1', 'bogus'], ['suffix=maybe', 'suffix']]) {
      const r = await get(`/api/v1/blocks?${qs}`)
      t.equal(r.statusCode, 400, qs)
      t.match(r.body, name, `${qs}: ${r.body}`)
    }
    t.equal((await get('/api/v1/stats?bucket=5m')).statusCode, 400)
    t.match((await get('/api/v1/stats?nope=1')).json(), { parameter: 'nope' })
    t.match((await get('/api/v1/bypass?from=-1h&to=-2h')).json(), { parameter: 'from' })
    t.match((await get('/api/v1/blocks/stream?client=x')).json(), { parameter: 'client' })
  })

  t.test('stats and bypass', async t => {
    const s = (await get('/api/v1/stats?from=2030-01-01T00:00:00Z&to=2030-01-03T00:00:00Z&top=3')).json()
    t.equal(s.total, 5000)
    t.same(s.categories, [{ category: 'telegram', action: 'nxdomain', count: 4500 }, { category: 'doh-bypass', action: 'nxdomain', count: 500 }])
    t.equal(s.topDomains.length, 3)
    t.equal(s.series.bucket, '1h')
    const b = (await get('/api/v1/bypass?from=2030-01-01T00:00:00Z&to=2030-01-03T00:00:00Z')).json()
    t.equal(b.clients.reduce((a: number, c: { hits: number }) => a + c.hits, 0), 500)
    t.equal(b.clients[0].topName, 'dns.google')
  })
})

t.test('filters that name no category, group or action answer 400 listing the valid ones, on every route', async t => {
  const { log } = memoryLog()
  const live = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 50, retention: { days: 36500, maxRows: 0, maxBytes: 0 }, log })
  const reader = await BlockSearch.open({ path, live, now: () => NOW })
  const app = bareApp(log)
  // The policy in force: doh-bypass was removed from it, but the store still holds its events.
  const values = { categories: new Set(['telegram', 'signal']), groups: new Set(['default', 'finance']) }
  await app.register(blockRoutes, { reader, filterValues: () => values })
  await app.ready()
  t.teardown(async () => { await app.close(); await reader.close(); await live.close() })
  const get = async (url: string) => await app.inject({ method: 'GET', url })
  const range = 'from=2030-01-01T00:00:00Z&to=2030-01-03T00:00:00Z'
  const routes = ['/api/v1/blocks?', '/api/v1/blocks?format=csv&', '/api/v1/blocks?format=ndjson&', `/api/v1/stats?${range}&`, '/api/v1/blocks/stream?']
  const bad: Array<[string, string, RegExp]> = [
    ['category=telegarm', 'category', /^category: unknown category "telegarm"; valid: signal, telegram/],
    ['group=fiance', 'group', /^group: unknown group "fiance"; valid: default, finance/],
    ['action=blok', 'action', /^action: unknown action "blok"; valid: nxdomain, refused, nodata, null, sinkhole, monitor, allow, block$/],
    ['matched=bogus', 'matched', /^matched: unknown matched "bogus"; valid: none, qname, cname, address, firewall$/]
  ]
  for (const route of routes) {
    for (const [qs, parameter, message] of bad) {
      if (route.startsWith('/api/v1/stats') && (parameter === 'action' || parameter === 'matched')) continue // stats take no action or matched filter
      const r = await get(route + qs)
      t.equal(r.statusCode, 400, `${route}${qs}`)
      t.match(r.json(), { parameter, message }, `${route}${qs}: ${r.body}`)
    }
  }
  t.match((await get('/api/v1/bypass?category=telegarm')).json(), { statusCode: 400, parameter: 'category' })

  // Known values still answer 200; a category only the store knows stays searchable (not tailable:
  // its events can no longer come).
  const cat = (await get('/api/v1/blocks?category=doh-bypass&limit=10000')).json<{ rows: BlockRow[] }>()
  t.equal(cat.rows.length, 500)
  t.equal((await get(`/api/v1/stats?${range}&category=doh-bypass`)).json().total, 500)
  t.equal((await get(`/api/v1/bypass?${range}&category=doh-bypass`)).statusCode, 200)
  t.match((await get('/api/v1/blocks/stream?category=doh-bypass')).json(), { statusCode: 400, parameter: 'category' })
  t.equal((await get('/api/v1/blocks?category=telegram&group=finance&action=monitor')).statusCode, 200)
  t.equal((await get('/api/v1/blocks?action=allow')).statusCode, 200)
  // A stored string that is no category (a list name) is not taken for one.
  t.equal((await get('/api/v1/blocks?category=blocklists/tele,gram/domains.txt')).statusCode, 400)
})

t.test('stats by client (address or CIDR) and by group', async t => {
  const { log } = memoryLog()
  const live = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 50, retention: { days: 36500, maxRows: 0, maxBytes: 0 }, log })
  const reader = await BlockSearch.open({ path, live, now: () => NOW })
  const app = bareApp(log)
  await app.register(blockRoutes, { reader })
  await app.ready()
  t.teardown(async () => { await app.close(); await reader.close(); await live.close() })
  const get = async (url: string) => await app.inject({ method: 'GET', url })
  const range = 'from=2030-01-01T00:00:00Z&to=2030-01-03T00:00:00Z'
  // i % 3 === 1: 1,667 of the 5,000 events; of them i % 10 === 0 (doh-bypass): 167.
  const s = (await get(`/api/v1/stats?${range}&client=10.0.1.0/24&top=100`)).json()
  t.equal(s.total, 1667, JSON.stringify(s).slice(0, 300))
  t.same(s.categories, [{ category: 'telegram', action: 'nxdomain', count: 1500 }, { category: 'doh-bypass', action: 'nxdomain', count: 167 }])
  t.ok(s.topClients.every((c: { client: string }) => c.client.startsWith('10.0.1.')), 'only clients in the range')
  t.equal(s.series.points.reduce((a: number, p: { count: number }) => a + p.count, 0), 1667, 'the series agrees')
  // i = 3 * 7 * k + 1 (10.0.1.1): 239 events.
  t.equal((await get(`/api/v1/stats?${range}&client=10.0.1.1`)).json().total, 239)
  t.equal((await get(`/api/v1/stats?${range}&client=10.0.1.1&category=doh-bypass`)).json().total, 23)
  t.equal((await get(`/api/v1/stats?${range}&group=default`)).json().total, 5000)
  t.equal((await get(`/api/v1/stats?${range}&group=nobody`)).json().total, 0, 'no values to check against: an empty answer')
  t.match((await get('/api/v1/stats?client=10.0.0.0/99')).json(), { statusCode: 400, parameter: 'client' })
})

t.test('through a real socket: json and the SSE live tail', async t => {
  const { log } = memoryLog()
  const live = await BlockLog.open({ path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 50, retention: { days: 36500, maxRows: 0, maxBytes: 0 }, log })
  const reader = await BlockSearch.open({ path, live, now: () => NOW })
  const app = bareApp(log)
  await app.register(blockRoutes, { reader })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  t.teardown(async () => { await app.close(); await reader.close(); await live.close() })

  const r = await fetch(`http://127.0.0.1:${port}/api/v1/blocks?limit=3&client=10.0.2.6`)
  t.equal(r.status, 200)
  t.equal(((await r.json()) as { rows: BlockRow[] }).rows.length, 3)

  const got: string[] = []
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/blocks/stream?category=signal' }, res => {
      t.match(res.headers['content-type'], /text\/event-stream/)
      res.setEncoding('utf8')
      let buf = ''
      res.on('data', (d: string) => {
        buf += d
        const parts = buf.split('\n\n')
        buf = parts.pop() ?? ''
        for (const p of parts) if (p.startsWith('event: block')) got.push(p)
        if (got.length >= 2) { req.destroy(); resolve() }
      })
      // Subscribed once the headers are out: push one event that matches and some that do not.
      live.push(event({ ts: NOW, category: 'telegram' }))
      live.push(event({ ts: NOW + 1, category: 'signal', qname: 'signal.org', value: 'signal.org' }))
      live.push(event({ ts: NOW + 2, category: 'whatsapp' }))
      live.push(event({ ts: NOW + 3, category: 'signal', qname: 'chat.signal.org', value: 'chat.signal.org' }))
    })
    req.on('error', err => { if (got.length < 2) reject(err) })
    setTimeout(() => reject(new Error('no SSE events in 5 s')), 5000).unref()
    req.end()
  })
  const rows = got.map(g => JSON.parse(g.split('\ndata: ')[1]))
  t.same(rows.map(r => r.qname), ['signal.org', 'chat.signal.org'])
  t.equal(rows[0].time, new Date(NOW + 1).toISOString())
})

t.test('live tail limits: streams per client and in all; clients that do not read are cut off with the reason', async t => {
  const { log } = memoryLog()
  const fresh = freshDb(tempDbPath())
  fresh.db.close()
  const live = await BlockLog.open({ path: fresh.path, synchronous: 'NORMAL', busyTimeoutMs: 500, queueMax: 1000, batchMs: 50, retention: { days: 36500, maxRows: 0, maxBytes: 0 }, log })
  const reader = await BlockSearch.open({ path: fresh.path, live, now: () => NOW })
  const limits = newApiLimitCounters()
  let liveTail: LiveTailConfig = { maxStreams: 3, maxStreamsPerClient: 2, maxQueuedBytesPerStream: 32768, stuckTimeoutMs: 600_000 }
  const app = bareApp(log)
  await app.register(blockRoutes, { reader, limits, liveTail: () => liveTail })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const sockets: net.Socket[] = []
  t.teardown(async () => { for (const s of sockets) s.destroy(); await app.close(); await reader.close(); await live.close() })
  const open = async (from: string) => {
    const r = await rawGet(port, from, '/api/v1/blocks/stream', 'unused')
    sockets.push(r.socket)
    return r
  }
  // Pushes events (about 500 bytes of SSE each) until `done`, letting the event loop write between batches.
  const flood = async (done: (n: number) => boolean): Promise<number> => {
    let n = 0
    while (!done(n) && n < 100_000) {
      for (let i = 0; i < 200; i++) live.push(event({ ts: NOW + n++, qname: `n${n}.${'x'.repeat(200)}.telegram.org` }))
      await new Promise(resolve => setTimeout(resolve, 1))
    }
    return n
  }

  t.test('per-client cap: 429; overall cap: 503; JSON errors that name the key', async t => {
    const a = [await open('127.0.0.2'), await open('127.0.0.2')]
    t.same(a.map(r => r.status), [200, 200])
    const third = await open('127.0.0.2')
    t.equal(third.status, 429)
    t.match(JSON.parse(third.body), { statusCode: 429, error: 'Too Many Requests', message: 'too many live tails from 127.0.0.2: at most 2 at once (api.liveTail.maxStreamsPerClient)' })
    t.equal((await open('127.0.0.3')).status, 200)
    const over = await open('127.0.0.4')
    t.equal(over.status, 503)
    t.match(JSON.parse(over.body), { statusCode: 503, error: 'Service Unavailable', message: 'too many live tails open: at most 3 at once (api.liveTail.maxStreams)' })
    t.same({ open: limits.streamsOpen, refused: limits.streamsRefused }, { open: 3, refused: { client: 1, total: 1 } })
    // The limits are read per stream: a reload that raises them applies at once.
    liveTail = { ...liveTail, maxStreams: 4 }
    t.equal((await open('127.0.0.4')).status, 200)
    for (const s of sockets) s.destroy()
    for (let i = 0; i < 100 && limits.streamsOpen > 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
    t.equal(limits.streamsOpen, 0, 'closed streams free their slots')
  })

  t.test('a client that reads keeps its stream through a burst larger than maxQueuedBytesPerStream', async t => {
    liveTail = { maxStreams: 3, maxStreamsPerClient: 2, maxQueuedBytesPerStream: 32768, stuckTimeoutMs: 600_000 }
    const s = await open('127.0.0.7')
    t.equal(s.status, 200)
    let text = s.body
    s.socket.on('data', (d: string) => { text += d })
    s.socket.resume()
    // 1,000 events (about 250 KB) in one event-loop turn, as a burst of blocked queries would be.
    for (let i = 0; i < 1000; i++) live.push(event({ ts: NOW + i, qname: `burst${i}.${'y'.repeat(200)}.telegram.org` }))
    for (let i = 0; i < 100 && !text.includes('burst999.'); i++) await new Promise(resolve => setTimeout(resolve, 20))
    t.equal(text.split('event: block\n').length - 1, 1000, 'every event arrived')
    t.equal(limits.streamsClosed.slowConsumer, 0, 'not cut off')
    t.notOk(s.socket.destroyed)
    s.socket.destroy()
  })

  t.test('a stream with more than maxQueuedBytesPerStream unsent is closed as a slow consumer', async t => {
    liveTail = { maxStreams: 3, maxStreamsPerClient: 2, maxQueuedBytesPerStream: 32768, stuckTimeoutMs: 600_000 }
    const s = await open('127.0.0.5')
    t.equal(s.status, 200)
    const pushed = await flood(() => limits.streamsClosed.slowConsumer > 0)
    t.equal(limits.streamsClosed.slowConsumer, 1, `closed after ${pushed} events`)
    const { text, ended } = await readToEnd(s.socket, 5000)
    t.ok(ended, 'the connection was closed')
    t.match(text, /event: block\n/)
    t.match(text.slice(-100), /event: closed\ndata: \{"reason":"slow consumer"\}\n\n\r\n0\r\n\r\n$/, 'the last event says why')
  })

  t.test('a stream whose output does not drain for stuckTimeoutMs is closed as stuck', async t => {
    liveTail = { maxStreams: 3, maxStreamsPerClient: 2, maxQueuedBytesPerStream: 64 * 1024 * 1024, stuckTimeoutMs: 300 }
    const s = await open('127.0.0.6')
    t.equal(s.status, 200)
    // About 6 MB: more than the kernel's socket buffers take (about 4 MB on loopback), so writes back up.
    await flood(n => n >= 12_000 || limits.streamsClosed.stuck > 0)
    for (let i = 0; i < 100 && limits.streamsClosed.stuck === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
    t.equal(limits.streamsClosed.stuck, 1)
    t.equal(limits.streamsClosed.slowConsumer, 1, 'not counted as a slow consumer')
    const { text, ended } = await readToEnd(s.socket, 5000)
    t.ok(ended)
    t.match(text.slice(-100), /event: closed\ndata: \{"reason":"stuck"\}\n\n\r\n0\r\n\r\n$/)
  })
})
