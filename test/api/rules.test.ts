// Custom rules and category changes through the API, checked with the real `dig`: a block rule is
// answered NXDOMAIN within 1 s, still after a restart on the same data dir, and is audited; deleting
// it lets the name through again; an expiring rule drops out by itself; an allow rule beats a
// category.

import t from 'tap'
import { dig } from '../helpers/dig.js'
import { answeringUpstream, call, sleep, startApiDaemon, TOKENS, type ApiDaemon } from './helpers.js'

let upstream: Awaited<ReturnType<typeof answeringUpstream>>
t.before(async () => { upstream = await answeringUpstream() })
t.teardown(() => upstream.close())

const ask = (d: ApiDaemon, name: string, extra: string[] = []) =>
  dig(['@127.0.0.1', '-p', String(d.dnsPort), name, 'A', '+tries=1', '+time=3', ...extra])

/** Polls dig until `status` comes back or `ms` pass; returns the elapsed ms (or -1). */
async function until (d: ApiDaemon, name: string, status: string, ms: number): Promise<number> {
  const started = Date.now()
  while (Date.now() - started <= ms) {
    if ((await ask(d, name)).status === status) return Date.now() - started
    await sleep(20)
  }
  return -1
}

t.test('a block rule added through the API: NXDOMAIN within 1 s, after a restart too, audited, and gone when deleted', async t => {
  const config = { upstreams: [upstream.url] }
  let d = await startApiDaemon(config)
  t.teardown(() => d.close())
  // Cached before the rule: the rule must apply to the cached answer as well.
  t.equal((await ask(d, 'chat.example.org')).status, 'NOERROR')
  t.equal((await ask(d, 'www.chat.example.org')).status, 'NOERROR')

  const added = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'Chat.Example.ORG', comment: 'ticket 42' } })
  t.equal(added.status, 201, added.text)
  t.match(added.json.rule, { id: Number, kind: 'block', rule: 'chat.example.org', type: 'domain', comment: 'ticket 42', createdBy: 'admin-token', expiresAt: null })
  const ms = await until(d, 'chat.example.org', 'NXDOMAIN', 1000)
  t.ok(ms >= 0 && ms <= 1000, `NXDOMAIN within 1 s (took ${ms} ms)`)
  t.equal((await ask(d, 'www.chat.example.org')).status, 'NXDOMAIN', 'and every name under it')
  t.equal((await ask(d, 'other.example.org')).status, 'NOERROR')
  const edns = await ask(d, 'chat.example.org', ['+edns=0'])
  t.match(edns.ede, /custom is blocked/)

  // The same rule again is a conflict; the list shows it once.
  const again = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'chat.example.org' } })
  t.equal(again.status, 409)
  t.match(again.json.message, /exists already/)

  const audit = await call(d.base, 'GET', '/api/v1/audit?action=rule.add', { token: TOKENS.admin })
  t.equal(audit.status, 200)
  t.equal(audit.json.entries.length, 1)
  t.match(audit.json.entries[0], {
    actor: 'admin-token', client: '127.0.0.1', action: 'rule.add', target: `rule ${added.json.rule.id}`,
    before: null, after: { rule: 'chat.example.org', kind: 'block', comment: 'ticket 42' }
  })
  t.ok(Math.abs(Date.parse(audit.json.entries[0].time) - Date.now()) < 60_000)

  // Restart on the same data dir: the rule is back before the first query.
  await d.close()
  d = await startApiDaemon(config, { dataDir: d.dataDir })
  t.equal((await ask(d, 'chat.example.org')).status, 'NXDOMAIN', 'still blocked after the restart')
  const rules = await call(d.base, 'GET', '/api/v1/rules', { token: TOKENS.viewer })
  t.match(rules.json.rules, [{ rule: 'chat.example.org', comment: 'ticket 42' }])

  const del = await call(d.base, 'DELETE', `/api/v1/rules/${added.json.rule.id}`, { token: TOKENS.admin })
  t.equal(del.status, 200)
  t.ok(await until(d, 'chat.example.org', 'NOERROR', 1000) >= 0, 'allowed again within 1 s of the delete')
  const log = await call(d.base, 'GET', '/api/v1/audit', { token: TOKENS.admin })
  t.same(log.json.entries.map((e: { action: string }) => e.action), ['rule.delete', 'rule.add'], 'newest first, across the restart')
  t.match(log.json.entries[0], { before: { rule: 'chat.example.org' }, after: null })
})

t.test('rule kinds: exact, wildcard, regex and CIDR; an allow rule beats a category', async t => {
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const add = async (body: Record<string, unknown>): Promise<Awaited<ReturnType<typeof call>>> => {
    const r = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body })
    t.equal(r.status, 201, r.text)
    return r.json.rule
  }
  t.match(await add({ rule: '=exact.example.org' }), { type: 'exact', rule: '=exact.example.org' })
  t.match(await add({ rule: '*.wild.example.org' }), { type: 'wildcard' })
  t.match(await add({ rule: '/^ads[0-9]+\\.example\\.net$/' }), { type: 'regex' })
  t.equal((await ask(d, 'exact.example.org')).status, 'NXDOMAIN')
  t.equal((await ask(d, 'sub.exact.example.org')).status, 'NOERROR', 'exact: only the name')
  t.equal((await ask(d, 'a.wild.example.org')).status, 'NXDOMAIN')
  t.equal((await ask(d, 'wild.example.org')).status, 'NOERROR', 'wildcard: only names under it')
  t.equal((await ask(d, 'ads12.example.net')).status, 'NXDOMAIN')
  t.equal((await ask(d, 'ads.example.net')).status, 'NOERROR')
  t.match(await add({ rule: '192.0.2.0/24' }), { type: 'cidr' })
  // Every answer of the upstream is 192.0.2.1: the CIDR rule blocks by answer address.
  t.equal((await ask(d, 'anything.example.com')).status, 'NXDOMAIN', 'blocked by its answer address')
  await call(d.base, 'DELETE', '/api/v1/rules/4', { token: TOKENS.admin })

  t.equal((await ask(d, 'web.telegram.org')).status, 'NXDOMAIN', 'bundled category')
  t.match(await add({ rule: 'web.telegram.org', kind: 'allow', comment: 'pilot' }), { kind: 'allow' })
  t.equal((await ask(d, 'web.telegram.org')).status, 'NOERROR', 'the allow rule wins')
  const check = await call(d.base, 'GET', '/api/v1/check?name=web.telegram.org', { token: TOKENS.viewer })
  t.equal(check.json.verdict, 'allow')
})

t.test('an expiring rule drops out by itself and the audit says egressd removed it', async t => {
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const r = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'brief.example.org', ttlSeconds: 1 } })
  t.equal(r.status, 201)
  t.ok(Date.parse(r.json.rule.expiresAt) > Date.now())
  t.equal((await ask(d, 'brief.example.org')).status, 'NXDOMAIN')
  t.ok(await until(d, 'brief.example.org', 'NOERROR', 3000) >= 0, 'answered again after the expiry')
  t.same((await call(d.base, 'GET', '/api/v1/rules', { token: TOKENS.viewer })).json.rules, [])
  const audit = await call(d.base, 'GET', '/api/v1/audit?action=rule.expire', { token: TOKENS.admin })
  t.match(audit.json.entries, [{ actor: 'egressd', client: '', action: 'rule.expire', before: { rule: 'brief.example.org' } }])
  const past = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'late.example.org', expiresAt: '2001-01-01T00:00:00Z' } })
  t.equal(past.status, 400)
  t.equal(past.json.message, 'body.expiresAt: must be in the future')
  const both = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'late.example.org', expiresAt: '2100-01-01T00:00:00Z', ttlSeconds: 5 } })
  t.equal(both.status, 400)
  t.match(both.json.message, /^body\.ttlSeconds: /)
})

t.test('rule ids: positive decimal integers in range, anything else is a 400 that deletes nothing', async t => {
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const added = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'one.example.org' } })
  t.equal(added.status, 201)
  const id = added.json.rule.id as number
  for (const bad of ['0x1', '1e0', '1e3', '01', '0', '-1', '+1', '1.0', ' 1', '12345678901234567890', '9007199254740992', '9999999999999999']) {
    const r = await call(d.base, 'DELETE', `/api/v1/rules/${encodeURIComponent(bad)}`, { token: TOKENS.admin })
    t.equal(r.status, 400, `${JSON.stringify(bad)}: 400`)
    t.match(r.json?.message, /^params\.id: a rule id is a decimal number from 1 to 9007199254740991/, `${JSON.stringify(bad)}: says what an id is`)
  }
  t.equal((await call(d.base, 'GET', '/api/v1/rules', { token: TOKENS.viewer })).json.rules.length, 1, 'nothing was deleted')
  t.equal(await ask(d, 'one.example.org').then(r => r.status), 'NXDOMAIN')
  t.equal((await call(d.base, 'DELETE', '/api/v1/rules/9007199254740991', { token: TOKENS.admin })).status, 404, 'the largest id is valid (and absent)')
  t.equal((await call(d.base, 'DELETE', `/api/v1/rules/${id}`, { token: TOKENS.admin })).status, 200)
})

t.test('rule ids are never reused, across restarts too, so audit rows name one rule each', async t => {
  const config = { upstreams: [upstream.url] }
  let d = await startApiDaemon(config)
  t.teardown(() => d.close())
  const add = async (rule: string): Promise<number> => {
    const r = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule } })
    t.equal(r.status, 201, r.text)
    return r.json.rule.id
  }
  const first = await add('first.example.org')
  t.equal((await call(d.base, 'DELETE', `/api/v1/rules/${first}`, { token: TOKENS.admin })).status, 200)
  const second = await add('second.example.org')
  t.ok(second > first, `the deleted rule's id ${first} is not given again (got ${second})`)
  t.equal((await call(d.base, 'DELETE', `/api/v1/rules/${second}`, { token: TOKENS.admin })).status, 200)
  await d.close()
  d = await startApiDaemon(config, { dataDir: d.dataDir })
  const third = await add('third.example.org')
  t.ok(third > second, `nor after a restart (got ${third})`)
  const audit = await call(d.base, 'GET', '/api/v1/audit', { token: TOKENS.admin })
  const targets = audit.json.entries.filter((e: { action: string }) => e.action === 'rule.add').map((e: { target: string }) => e.target)
  t.equal(new Set(targets).size, 3, 'three additions, three different targets')
})
