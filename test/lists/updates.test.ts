// List updates end to end: a real HTTPS server on loopback serves the list, a real daemon (with a
// dnsmasq upstream) fetches it, and dig shows what is blocked. A new version applies without a
// restart; a 304 changes nothing; every kind of bad download is rejected, reported (status,
// counter, warning log) and leaves the previous version blocking; a restart with the server down
// blocks from the last-known-good copy.

import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { answered, blocked, firstAttempts, listDaemon, startWorld, V1, V2, warnings } from './fixtures.js'
import { startListServer } from './list-server.js'

const world = await startWorld()
t.teardown(() => world.close())

t.test('a new version is fetched and blocks without a restart; a 304 changes nothing', async t => {
  const server = await startListServer(world.cert)
  t.teardown(() => server.close())
  server.set('/list.txt', { body: V1 })
  const td = await listDaemon(world, { source: { url: server.url('/list.txt'), caFile: world.pki.caFile } })
  t.teardown(() => td.close())
  await firstAttempts(td)

  const [s0] = td.daemon.lists.status()
  t.equal(s0.updates, 1, 'the start-up attempt fetched v1')
  t.equal(s0.entries, 21)
  t.ok(await blocked(td, 'first.test'), 'first.test is blocked by v1')
  t.ok(await answered(td, 'h.test'), 'h.test is not in v1: answered by the upstream')

  server.set('/list.txt', { body: V2 })
  const [r] = await td.daemon.lists.updateNow()
  t.match(r, { source: 'central', outcome: 'updated', entries: 22, previousEntries: 21 })
  t.ok(await blocked(td, 'h.test'), 'h.test, new in v2, is blocked without a restart')
  t.ok(await blocked(td, 'first.test'))

  const generation = td.daemon.policy.engine.generation
  const stored = readFileSync(join(td.daemon.config.dataDir, 'lists', 'central.txt'), 'utf8')
  const meta = JSON.parse(readFileSync(join(td.daemon.config.dataDir, 'lists', 'central.json'), 'utf8'))
  t.equal(stored, V2, 'the accepted copy is stored byte for byte')
  t.match(meta, { source: 'central', url: server.url('/list.txt'), entries: 22, sha256: /^[0-9a-f]{64}$/, etag: /^"/, fetchedAt: /^\d{4}-/ })

  const before = server.requests.length
  const [again] = await td.daemon.lists.updateNow()
  t.equal(again.outcome, 'not-modified')
  const seen = server.requests.slice(before)
  t.equal(seen.length, 1, 'one request')
  t.equal(seen[0].headers['if-none-match'], meta.etag, 'the server saw If-None-Match with the stored ETag')
  t.equal(td.daemon.policy.engine.generation, generation, 'no new engine')
  t.same(JSON.parse(readFileSync(join(td.daemon.config.dataDir, 'lists', 'central.json'), 'utf8')), meta, 'meta unchanged')
  const s = td.daemon.lists.status()[0]
  t.match(s, { notModified: 1, updates: 2, rejected: 0, entries: 22, sha256: meta.sha256, lastError: undefined })
  t.ok(s.lastSuccess !== undefined && s.lastAttempt !== undefined && s.lastSuccess >= s.lastAttempt)
  t.ok(await blocked(td, 'h.test'))
})

t.test('bad downloads are rejected and reported; the previous list keeps blocking', async t => {
  const server = await startListServer(world.cert)
  server.set('/list.txt', { body: V1 })
  const td = await listDaemon(world, { source: { url: server.url('/list.txt'), caFile: world.pki.caFile, timeoutMs: 800, maxBytes: 20_000 } })
  t.teardown(() => td.close())
  await firstAttempts(td)
  t.equal(td.daemon.lists.status()[0].entries, 21)
  const dataDir = td.daemon.config.dataDir

  const shrunk = ['first.test', 'filler-0.test'].join('\n') + '\n'
  const cases: Array<{ name: string, route: Parameters<typeof server.set>[1], reason: string, message: RegExp }> = [
    { name: 'HTTP 500', route: { status: 500 }, reason: 'http-status', message: /HTTP 500/ },
    { name: 'a timeout', route: { stall: true }, reason: 'timeout', message: /no complete answer within 800 ms/ },
    { name: 'a body over the size cap (announced)', route: { body: 'x.test\n'.repeat(5000) }, reason: 'too-large', message: /maxBytes 20000/ },
    { name: 'a body over the size cap (streamed)', route: { stream: 200_000 }, reason: 'too-large', message: /more than maxBytes 20000/ },
    { name: 'garbage', route: { body: randomBytes(4000) }, reason: 'bad-lines', message: /not a text list|cannot be parsed/ },
    { name: 'an HTML page', route: { body: '<html>\n<body>maintenance</body>\n</html>\n' }, reason: 'bad-lines', message: /cannot be parsed as plain/ },
    { name: 'a list that shrank by 90%', route: { body: shrunk }, reason: 'shrink', message: /2 entries, down from 21 \(-90%/ },
    { name: 'an empty list', route: { body: '# nothing today\n' }, reason: 'too-few', message: /0 entries, fewer than minEntries 1/ }
  ]
  for (const [i, c] of cases.entries()) {
    server.set('/list.txt', c.route)
    const generation = td.daemon.policy.engine.generation
    const [r] = await td.daemon.lists.updateNow()
    t.match(r, { outcome: 'rejected', reason: c.reason, error: c.message, entries: 21 }, `${c.name}: rejected`)
    const s = td.daemon.lists.status()[0]
    t.equal(s.lastError?.reason, c.reason, `${c.name}: status names the reason`)
    t.equal(s.rejected, i + 1, `${c.name}: counted`)
    t.ok((s.rejectedByReason[c.reason] ?? 0) >= 1, `${c.name}: counted by reason`)
    const w = warnings(td).at(-1)
    t.match(w, { level: 40, source: 'central', reason: c.reason, err: c.message }, `${c.name}: warning logged`)
    t.equal(td.daemon.policy.engine.generation, generation, `${c.name}: engine untouched`)
    t.equal(readFileSync(join(dataDir, 'lists', 'central.txt'), 'utf8'), V1, `${c.name}: stored copy untouched`)
    t.ok(await blocked(td, 'first.test'), `${c.name}: v1 still blocks`)
  }

  // The shrink can be forced by the admin.
  server.set('/list.txt', { body: shrunk })
  const [forced] = await td.daemon.lists.updateNow({ force: true })
  t.match(forced, { outcome: 'updated', entries: 2, previousEntries: 21 })
  t.notOk(await blocked(td, 'filler-5.test'), 'filler-5.test, gone from the forced version, is no longer blocked')
  t.ok(await blocked(td, 'first.test'))

  // Connection refused: the server is gone.
  await server.close()
  const [refused] = await td.daemon.lists.updateNow()
  t.match(refused, { outcome: 'rejected', reason: 'network', error: /ECONNREFUSED/ })
  t.equal(td.daemon.lists.status()[0].lastError?.reason, 'network')
  t.ok(await blocked(td, 'first.test'), 'connection refused: the list in use still blocks')
  t.notOk(existsSync(join(dataDir, 'lists', 'central.prev.txt')), 'no leftover previous copy')
})

t.test('a restart with the list server down still blocks from the last-known-good copy', async t => {
  const server = await startListServer(world.cert)
  server.set('/list.txt', { body: V2 })
  const url = server.url('/list.txt')
  const first = await listDaemon(world, { source: { url, caFile: world.pki.caFile } })
  await firstAttempts(first)
  t.equal(first.daemon.lists.status()[0].entries, 22)
  const dataDir = first.daemon.config.dataDir
  await first.close()
  await server.close()

  const second = await listDaemon(world, { source: { url, caFile: world.pki.caFile, timeoutMs: 500 }, dataDir })
  t.teardown(() => second.close())
  t.ok(await blocked(second, 'h.test'), 'blocked from the stored copy, before any download')
  t.ok(second.logs().some(l => l.msg === 'using the stored copy of the list' && l.entries === 22))
  await firstAttempts(second)
  const s = second.daemon.lists.status()[0]
  t.match(s, { entries: 22, attempts: 1, lastError: { reason: 'network' } }, 'the background attempt at start failed and was reported')
  t.ok(s.nextAttempt !== undefined && s.nextAttempt > Date.now(), 'the next attempt is scheduled')
  t.ok(await blocked(second, 'h.test'), 'still blocked after the failed attempt')
})
