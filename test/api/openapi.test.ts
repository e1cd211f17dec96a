// The app factory without a socket (fastify.inject): the OpenAPI document generated from the route
// schemas validates as OpenAPI 3, lists every route with its role, and the /docs page and its
// assets are served self-contained (same-origin script and style, no CDN).

import t from 'tap'
import { Writable } from 'node:stream'
import { Script } from 'node:vm'
import SwaggerParser from '@apidevtools/swagger-parser'
import { buildApp } from '../../src/api/app.js'
import { Daemon } from '../../src/daemon.js'
import { createLogger } from '../../src/log.js'
import { testConfig } from '../helpers/daemon.js'
import { TOKEN_CONFIG, TOKENS } from './helpers.js'

const sink = new Writable({ write (_c, _e, cb) { cb() } })
const config = testConfig({ api: { listen: '127.0.0.1:0', tokens: TOKEN_CONFIG } })
const log = createLogger('warn', sink)
const daemon = new Daemon(config, { log })
t.teardown(() => daemon.close())

t.test('the OpenAPI document validates and describes every route with its role', async t => {
  const app = await buildApp({ host: daemon, log, now: Date.now, version: '9.9.9' })
  t.teardown(() => app.close())
  const r = await app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: `Bearer ${TOKENS.viewer}` } })
  t.equal(r.statusCode, 200)
  const doc = r.json()
  t.equal(doc.openapi, '3.0.3')
  t.equal(doc.info.version, '9.9.9')
  await t.resolves(SwaggerParser.validate(structuredClone(doc)), 'valid OpenAPI 3')
  const ops: Record<string, string> = {}
  for (const [path, item] of Object.entries<Record<string, { description?: string, security?: unknown, tags?: string[], summary?: string }>>(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      ops[`${method.toUpperCase()} ${path}`] = /Role: ([^.]+)\./.exec(op.description ?? '')?.[1] ?? ''
      t.ok(op.summary, `${method} ${path} has a summary`)
      t.ok(op.tags?.length, `${method} ${path} has a tag`)
      t.equal(op.security === undefined, /none/.test(ops[`${method.toUpperCase()} ${path}`]), `${method} ${path}: security only when a token is needed`)
    }
  }
  t.match(ops, {
    'GET /healthz': 'none (no token)',
    'GET /readyz': 'none (no token)',
    'GET /metrics': 'metrics',
    'GET /api/v1/categories': 'viewer',
    'PATCH /api/v1/categories/{name}': 'admin',
    'GET /api/v1/rules': 'viewer',
    'POST /api/v1/rules': 'admin',
    'DELETE /api/v1/rules/{id}': 'admin',
    'GET /api/v1/check': 'viewer',
    'POST /api/v1/reload': 'admin',
    'GET /api/v1/status': 'viewer',
    'GET /api/v1/audit': 'admin',
    'GET /api/v1/openapi.json': 'viewer'
  })
  t.notOk(Object.keys(ops).some(k => k.startsWith('GET /docs')), 'the docs assets are not API operations')
  const post = doc.paths['/api/v1/rules'].post
  t.equal(post.requestBody.content['application/json'].schema.additionalProperties, false)
  t.same(post.requestBody.content['application/json'].schema.properties.kind.enum, ['block', 'allow'])
})

t.test('the docs page: self-contained, with its own CSP, no token needed', async t => {
  const app = await buildApp({ host: daemon, log, now: Date.now, version: '1' })
  t.teardown(() => app.close())
  const page = await app.inject({ method: 'GET', url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /script-src 'self'/)
  t.notMatch(page.headers['content-security-policy'], /unsafe-inline/)
  t.notMatch(page.body, /https?:\/\//, 'nothing loaded from elsewhere')
  t.notMatch(page.body, /<script>|style=|<style>/, 'no inline script or style (the CSP forbids them)')
  for (const [url, type] of [['/docs/docs.js', /^text\/javascript/], ['/docs/docs.css', /^text\/css/]] as const) {
    const a = await app.inject({ method: 'GET', url })
    t.equal(a.statusCode, 200, url)
    t.match(a.headers['content-type'], type)
    t.notMatch(a.body, /https?:\/\//, `${url}: no remote resources`)
  }
  const js = (await app.inject({ method: 'GET', url: '/docs/docs.js' })).body
  t.doesNotThrow(() => new Script(js), 'the script parses')
  t.match(js, /\/api\/v1\/openapi\.json/)
})

t.test('without a listen: inject works, and the store-backed routes see the daemon store', async t => {
  // The daemon opens its stores in start() (its constructor does no I/O); the app is built beside
  // the daemon's own listener and only injected into.
  const started = new Daemon(config, { log })
  await started.start()
  t.teardown(() => started.close())
  const app = await buildApp({ host: started, log, now: Date.now, version: '1' })
  t.teardown(() => app.close())
  const add = await app.inject({ method: 'POST', url: '/api/v1/rules', headers: { authorization: `Bearer ${TOKENS.admin}` }, payload: { rule: 'inject.example.org' } })
  t.equal(add.statusCode, 201, add.body)
  const check = await app.inject({ method: 'GET', url: '/api/v1/check?name=inject.example.org', headers: { authorization: `Bearer ${TOKENS.viewer}` } })
  t.equal(check.json().verdict, 'block')
  const blocks = await app.inject({ method: 'GET', url: '/api/v1/blocks?from=-1h', headers: { authorization: `Bearer ${TOKENS.viewer}` } })
  t.equal(blocks.statusCode, 200, 'the block routes come with the host\'s block search')
  // With the block search, the document has the block-log routes too, the discovery report among them.
  const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: `Bearer ${TOKENS.viewer}` } })).json()
  await t.resolves(SwaggerParser.validate(structuredClone(doc)), 'valid OpenAPI 3 with the block-log routes')
  t.match(doc.paths['/api/v1/discovery']?.get, { tags: ['blocks'], description: /Role: viewer\.$/ })
  t.same(doc.paths['/api/v1/discovery'].get.responses['200'].content['application/json'].schema.properties.clients.items.properties.pattern.enum,
    ['installed-app', 'unclear', 'single-click'])
})
