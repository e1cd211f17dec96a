// POST /api/v1/lists/update over a real socket: an admin token makes the daemon fetch a new list
// version from a real HTTPS server at once (newly listed name blocked by dig), a rejected version is
// reported with its reason, an unknown source is a 404 naming body.source, and viewers are refused.

import t from 'tap'
import { startTestDaemon } from '../helpers/daemon.js'
import { startListServer } from '../lists/list-server.js'
import { answered, blocked, EMPTY_BLOCKLISTS, firstAttempts, startWorld, V1, V2, type World } from '../lists/fixtures.js'
import { call, TOKEN_CONFIG, TOKENS } from './helpers.js'

let world: World
t.before(async () => { world = await startWorld() })
t.teardown(() => world.close())

t.test('lists/update: updated, then rejected with a reason; unknown source 404; viewer 403', async t => {
  const server = await startListServer(world.cert)
  t.teardown(() => server.close())
  server.set('/list.txt', { body: V1 })
  const td = await startTestDaemon({
    upstreams: [world.dns.url],
    api: { tokens: TOKEN_CONFIG },
    blocklists: {
      dir: EMPTY_BLOCKLISTS,
      sources: [{ name: 'central', format: 'plain', timeoutMs: 2000, url: server.url('/list.txt'), caFile: world.pki.caFile }],
      update: { allowHosts: ['127.0.0.1'] }
    }
  })
  t.teardown(() => td.close())
  await firstAttempts(td)
  const base = `http://127.0.0.1:${td.daemon.apiAddress!.port}`
  t.ok(await answered(td, 'h.test'), 'h.test is not in v1')

  server.set('/list.txt', { body: V2 })
  const r = await call(base, 'POST', '/api/v1/lists/update', { token: TOKENS.admin, body: {} })
  t.equal(r.status, 200)
  t.match(r.json, { results: [{ source: 'central', outcome: 'updated', entries: 22, previousEntries: 21, reason: null }] })
  t.ok(await blocked(td, 'h.test'), 'h.test, new in v2, is blocked at once')

  server.set('/list.txt', { body: '# almost nothing\nfirst.test\n' })
  const shrunk = await call(base, 'POST', '/api/v1/lists/update', { token: TOKENS.admin, body: { source: 'central' } })
  t.equal(shrunk.status, 200)
  t.match(shrunk.json, { results: [{ source: 'central', outcome: 'rejected', reason: 'shrink', entries: 22 }] })
  t.ok(await blocked(td, 'h.test'), 'the previous version keeps blocking')

  const unknown = await call(base, 'POST', '/api/v1/lists/update', { token: TOKENS.admin, body: { source: 'nope' } })
  t.equal(unknown.status, 404)
  t.match(unknown.json.message, /^body\.source: no URL source named "nope"/)
  const extra = await call(base, 'POST', '/api/v1/lists/update', { token: TOKENS.admin, body: { force: 'yes' } })
  t.equal(extra.status, 400)
  t.match(extra.json.message, /body\.force/)
  const viewer = await call(base, 'POST', '/api/v1/lists/update', { token: TOKENS.viewer, body: {} })
  t.equal(viewer.status, 403)

  const audit = await call(base, 'GET', '/api/v1/audit?action=lists.update', { token: TOKENS.admin })
  t.equal(audit.status, 200)
  t.equal(audit.json.entries.length, 2, 'both admin updates are audited')
  t.match(audit.json.entries[0], { actor: 'admin-token', action: 'lists.update', target: 'central' })
})
