// Every route over a real socket against a real daemon: happy paths, the role matrix (missing,
// wrong and other-role tokens), request validation (malformed JSON, unknown fields, oversized
// bodies, bad enums, unknown query parameters) answered 4xx naming the problem, error bodies
// without internals, and the security headers on every response.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { CSP_DOCS, CSP_JSON } from '../../src/api/headers.js'
import { dig } from '../helpers/dig.js'
import { call, startApiDaemon, TOKENS, TOKEN_CONFIG, type ApiDaemon, type Role } from './helpers.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')

let d: ApiDaemon
t.before(async () => { d = await startApiDaemon({ dns: { listen: ['127.0.0.1:0'], upstreamTimeoutMs: 100 } }) })
t.teardown(() => d.close())

const ERROR_KEYS = ['error', 'message', 'statusCode']

interface RouteCase { method: string, path: string, needs: 'public' | Role, body?: () => unknown, ok: number }

// The least role of each route; `body` makes the admin call succeed.
let ruleId = 0
const ROUTES: RouteCase[] = [
  { method: 'GET', path: '/healthz', needs: 'public', ok: 200 },
  { method: 'GET', path: '/readyz', needs: 'public', ok: 200 },
  { method: 'GET', path: '/docs', needs: 'public', ok: 200 },
  { method: 'GET', path: '/metrics', needs: 'metrics', ok: 200 },
  { method: 'GET', path: '/api/v1/status', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/api/v1/categories', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/api/v1/rules', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/api/v1/check?name=example.org', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/api/v1/openapi.json', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/api/v1/blocks', needs: 'viewer', ok: 200 },
  { method: 'GET', path: '/api/v1/audit', needs: 'admin', ok: 200 },
  { method: 'POST', path: '/api/v1/rules', needs: 'admin', body: () => ({ rule: `r${++ruleId}.example.net` }), ok: 201 },
  { method: 'PATCH', path: '/api/v1/categories/zoom', needs: 'admin', body: () => ({ enabled: false }), ok: 200 },
  { method: 'POST', path: '/api/v1/reload', needs: 'admin', ok: 200 }
]

const LEVEL: Record<'public' | Role, number> = { public: 0, metrics: 1, viewer: 2, admin: 3 }
// viewer also reads /metrics; metrics reads nothing else.
const allowed = (role: Role, needs: 'public' | Role): boolean =>
  needs === 'public' || role === 'admin' || (role === 'viewer' && LEVEL[needs] <= 2) || (role === 'metrics' && needs === 'metrics')

t.test('each route: allowed for its roles, 401 without or with a bad token, 403 for a role that lacks the right', async t => {
  for (const r of ROUTES) {
    const body = r.body?.()
    if (r.needs !== 'public') {
      const missing = await call(d.base, r.method, r.path, { body })
      t.equal(missing.status, 401, `${r.method} ${r.path} without a token`)
      t.same(Object.keys(missing.json).sort(), ERROR_KEYS)
      t.equal(missing.headers['www-authenticate'], 'Bearer realm="egressd"')
      const wrong = await call(d.base, r.method, r.path, { body, token: 'not-a-token-of-ours' })
      t.equal(wrong.status, 401, `${r.method} ${r.path} with a bad token`)
      t.equal(wrong.text, missing.text, 'a bad token gets exactly the answer of a missing one')
    }
    for (const role of Object.keys(TOKENS) as Role[]) {
      const res = await call(d.base, r.method, r.path, { body: r.body?.(), token: TOKENS[role] })
      if (allowed(role, r.needs)) t.equal(res.status, r.ok, `${role} may ${r.method} ${r.path}: ${res.text.slice(0, 200)}`)
      else {
        t.equal(res.status, 403, `${role} may not ${r.method} ${r.path}`)
        t.equal(res.json.message, `this token's role may not do this (needs ${r.needs})`)
        for (const tc of TOKEN_CONFIG) t.notMatch(res.text, tc.name, 'names no token')
      }
    }
  }
  // DELETE too (needs an existing rule).
  const id = (await call(d.base, 'GET', '/api/v1/rules', { token: TOKENS.viewer })).json.rules[0].id
  t.equal((await call(d.base, 'DELETE', `/api/v1/rules/${id}`, { token: TOKENS.viewer })).status, 403)
  t.equal((await call(d.base, 'DELETE', `/api/v1/rules/${id}`, { token: TOKENS.metrics })).status, 403)
  t.equal((await call(d.base, 'DELETE', `/api/v1/rules/${id}`)).status, 401)
  const del = await call(d.base, 'DELETE', `/api/v1/rules/${id}`, { token: TOKENS.admin })
  t.equal(del.status, 200)
  t.equal(del.json.deleted.id, id)
  t.equal((await call(d.base, 'DELETE', `/api/v1/rules/${id}`, { token: TOKENS.admin })).status, 404)
})

t.test('unknown routes answer 401 without a token (nothing to probe) and a JSON 404 with one of any role', async t => {
  t.equal((await call(d.base, 'GET', '/api/v1/nope')).status, 401)
  t.equal((await call(d.base, 'GET', '/api/v1/nope', { token: 'not-a-token' })).status, 401)
  for (const role of ['admin', 'viewer', 'metrics'] as const) {
    for (const method of ['GET', 'POST'] as const) {
      const r = await call(d.base, method, '/api/v1/nope', { token: TOKENS[role] })
      t.equal(r.status, 404, `${role} ${method}`)
      t.same(r.json, { error: 'Not Found', message: `no route ${method} /api/v1/nope`, statusCode: 404 }, `${role} ${method}`)
    }
  }
})

t.test('through the daemon, block-log filters are checked against the policy in force', async t => {
  const get = async (q: string) => await call(d.base, 'GET', `/api/v1/blocks?${q}`, { token: TOKENS.viewer })
  const cat = await get('category=telegarm')
  t.equal(cat.status, 400)
  t.match(cat.json.message, /^category: unknown category "telegarm"; valid: .*\btelegram\b/)
  const group = await get('group=fiance')
  t.equal(group.status, 400)
  t.match(group.json.message, /^group: unknown group "fiance"; valid: default\b/)
  t.equal((await call(d.base, 'GET', '/api/v1/stats?category=telegarm', { token: TOKENS.viewer })).status, 400)
  t.equal((await get('category=telegram&group=default&action=nxdomain')).status, 200)
})

t.test('health and readiness', async t => {
  t.same((await call(d.base, 'GET', '/healthz')).json, { status: 'ok' })
  t.same((await call(d.base, 'GET', '/readyz')).json, { status: 'ready' })
})

t.test('status: version, uptime, config without secrets, lists, upstream health', async t => {
  const r = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.equal(r.status, 200)
  const s = r.json
  t.equal(s.version, JSON.parse(spawnSync('node', ['-p', 'JSON.stringify(require("./package.json"))'], { encoding: 'utf8' }).stdout).version)
  t.ok(s.uptimeSeconds >= 0)
  t.equal(s.ready, true)
  t.same(s.config.api.tokens, TOKEN_CONFIG.map(x => ({ name: x.name, role: x.role })))
  for (const tc of TOKEN_CONFIG) t.notMatch(r.text, tc.sha256, 'no token hash in the status')
  t.ok(s.lists.length > 10)
  t.match(s.lists[0], { category: String, list: String, rules: Number, state: /^loaded/ })
  t.match(s.upstreams, [{ url: 'udp://127.0.0.1:9', healthy: Boolean }])
  t.equal(s.store.available, true)
  t.same([...s.dns.listening].sort(), [`tcp 127.0.0.1:${d.dnsPort}`, `udp 127.0.0.1:${d.dnsPort}`])
})

t.test('check returns the same Verdict as `egressd query`', async t => {
  for (const [name, client] of [['web.telegram.org', '10.1.2.3'], ['example.org', '127.0.0.1'], ['WWW.WhatsApp.com', '::1']]) {
    const api = await call(d.base, 'GET', `/api/v1/check?name=${encodeURIComponent(name)}&client=${encodeURIComponent(client)}&type=aaaa`, { token: TOKENS.viewer })
    t.equal(api.status, 200)
    const cli = spawnSync(process.execPath, [CLI, 'query', name, '--client', client, '--type', 'aaaa', '--config', d.configFile], { encoding: 'utf8', timeout: 20_000 })
    t.same(api.json, JSON.parse(cli.stdout), `${name} from ${client}`)
  }
  const blocked = await call(d.base, 'GET', '/api/v1/check?name=web.telegram.org', { token: TOKENS.viewer })
  t.match(blocked.json, { verdict: 'block', category: 'telegram', action: 'nxdomain', matched: 'qname', client: '127.0.0.1', type: 'A' })
  const bad = await call(d.base, 'GET', '/api/v1/check?name=bad..name', { token: TOKENS.viewer })
  t.equal(bad.status, 400)
  t.match(bad.json.message, /^querystring\.name: /)
  const badClient = await call(d.base, 'GET', '/api/v1/check?name=a.org&client=nope', { token: TOKENS.viewer })
  t.equal(badClient.status, 400)
  t.match(badClient.json.message, /^querystring\.client: must be an IP address/)
  const missing = await call(d.base, 'GET', '/api/v1/check', { token: TOKENS.viewer })
  t.equal(missing.status, 400)
  t.equal(missing.json.message, 'querystring.name: required')
})

t.test('bad requests: 4xx with a message naming the problem, never a stack', async t => {
  const admin = TOKENS.admin
  const cases: Array<{ what: string, method: string, path: string, body?: unknown, headers?: Record<string, string>, status: number, message: RegExp }> = [
    { what: 'malformed JSON', method: 'POST', path: '/api/v1/rules', body: '{"rule": "a.org",', status: 400, message: /^body: malformed JSON/ },
    { what: 'unknown field', method: 'POST', path: '/api/v1/rules', body: { rule: 'a.org', colour: 'red' }, status: 400, message: /^body\.colour: unknown field$/ },
    { what: 'missing field', method: 'POST', path: '/api/v1/rules', body: { comment: 'x' }, status: 400, message: /^body\.rule: required$/ },
    { what: 'bad enum', method: 'POST', path: '/api/v1/rules', body: { rule: 'a.org', kind: 'deny' }, status: 400, message: /^body\.kind: must be one of block, allow$/ },
    { what: 'wrong type', method: 'POST', path: '/api/v1/rules', body: { rule: 42 }, status: 400, message: /^body\.rule: must be string$/ },
    { what: 'bad date', method: 'POST', path: '/api/v1/rules', body: { rule: 'a.org', expiresAt: 'tomorrow' }, status: 400, message: /^body\.expiresAt: must be a date-time/ },
    { what: 'invalid rule', method: 'POST', path: '/api/v1/rules', body: { rule: '/(a+)+$/' }, status: 400, message: /^body\.rule: "\/\(a\+\)\+\$\/": / },
    { what: 'invalid name rule', method: 'POST', path: '/api/v1/rules', body: { rule: 'exa mple.org' }, status: 400, message: /^body\.rule: / },
    { what: 'bad CIDR', method: 'POST', path: '/api/v1/rules', body: { rule: '10.0.0.0/33' }, status: 400, message: /^body\.rule: "10\.0\.0\.0\/33": / },
    { what: 'allow prefix', method: 'POST', path: '/api/v1/rules', body: { rule: '@@a.org' }, status: 400, message: /"kind": "allow"/ },
    { what: 'body not an object', method: 'POST', path: '/api/v1/rules', body: '[1]', status: 400, message: /^body: must be object$/ },
    { what: 'no body', method: 'POST', path: '/api/v1/rules', status: 400, message: /^body: must be object$/ },
    { what: 'other content type', method: 'POST', path: '/api/v1/rules', body: 'rule=a.org', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, message: /^Content-Type: not supported; send application\/json$/ },
    { what: 'oversized body', method: 'POST', path: '/api/v1/rules', body: JSON.stringify({ rule: 'a.org', comment: 'x'.repeat(1024 * 1024 + 10) }), status: 413, message: /^body: larger than the limit of 1048576 bytes/ },
    { what: 'bad enum in PATCH', method: 'PATCH', path: '/api/v1/categories/zoom', body: { action: 'drop' }, status: 400, message: /^body\.action: must be one of nxdomain, refused, nodata, null, sinkhole, monitor$/ },
    { what: 'empty PATCH', method: 'PATCH', path: '/api/v1/categories/zoom', body: {}, status: 400, message: /^body: must not be empty$/ },
    { what: 'group only', method: 'PATCH', path: '/api/v1/categories/zoom', body: { group: '*' }, status: 400, message: /^body: give "enabled" and\/or "action"$/ },
    { what: 'unknown group', method: 'PATCH', path: '/api/v1/categories/zoom', body: { group: 'nobody', enabled: true }, status: 400, message: /^body\.group: no client group "nobody"/ },
    { what: 'unknown category', method: 'PATCH', path: '/api/v1/categories/nosuch', body: { enabled: true }, status: 404, message: /^no category "nosuch"$/ },
    { what: 'bad path parameter', method: 'DELETE', path: '/api/v1/rules/abc', status: 400, message: /^params\.id: a rule id is a decimal number from 1 to 9007199254740991 .*\(got "abc"\)$/ },
    { what: 'unknown query parameter', method: 'GET', path: '/api/v1/rules?all=1', status: 400, message: /^querystring\.all: unknown field$/ },
    { what: 'query on a route without one', method: 'POST', path: '/api/v1/reload?force=1', status: 400, message: /^querystring\.force: unknown parameter$/ },
    { what: 'body where none is taken', method: 'POST', path: '/api/v1/reload', body: { force: true }, status: 400, message: /^body: this endpoint takes no request body$/ },
    { what: 'bad audit limit', method: 'GET', path: '/api/v1/audit?limit=0', status: 400, message: /^querystring\.limit: must be >= 1$/ }
  ]
  for (const c of cases) {
    const r = await call(d.base, c.method, c.path, { token: admin, body: c.body, headers: c.headers })
    t.equal(r.status, c.status, `${c.what}: ${r.text.slice(0, 200)}`)
    t.match(r.json?.message, c.message, c.what)
    t.same(Object.keys(r.json ?? {}).sort(), ERROR_KEYS, `${c.what}: only error, message, statusCode`)
    t.notMatch(r.text, /at .*\.(ts|js):\d+/, `${c.what}: no stack`)
  }
})

t.test('security headers on every response, a docs CSP only for the docs page', async t => {
  const responses = [
    await call(d.base, 'GET', '/healthz'),
    await call(d.base, 'GET', '/api/v1/status'),
    await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.metrics }),
    await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer }),
    await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: '{' }),
    await call(d.base, 'GET', '/nope', { token: TOKENS.admin }),
    await call(d.base, 'GET', '/metrics', { token: TOKENS.metrics })
  ]
  for (const r of responses) {
    t.equal(r.headers['x-content-type-options'], 'nosniff')
    t.equal(r.headers['cache-control'], 'no-store')
    t.equal(r.headers['x-frame-options'], 'DENY')
    t.equal(r.headers['referrer-policy'], 'no-referrer')
    t.equal(r.headers['content-security-policy'], CSP_JSON)
    t.equal(r.headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP')
  }
  const page = await call(d.base, 'GET', '/docs')
  t.equal(page.headers['content-security-policy'], CSP_DOCS)
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.match(page.headers['content-type'], /^text\/html/)
})

t.test('readiness names the failing part: upstreams down', async t => {
  // The only upstream (discard port) never answers: after one failed query the pool has no healthy upstream.
  const r = await dig(['@127.0.0.1', '-p', String(d.dnsPort), 'unanswered.example', 'A', '+tries=1', '+time=3'])
  t.equal(r.status, 'SERVFAIL')
  const ready = await call(d.base, 'GET', '/readyz')
  t.equal(ready.status, 503)
  t.same(ready.json, { status: 'not ready', failing: ['upstreams'] })
  t.equal((await call(d.base, 'GET', '/healthz')).status, 200, 'still alive')
})
