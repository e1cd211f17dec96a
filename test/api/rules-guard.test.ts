// The rule guard on POST /api/v1/rules: too-broad block rules (`com`, `/.*/`, `0.0.0.0/0`, an
// everyday site of the collateral corpus) are refused with 422 and a message saying what they would block, nothing is stored or
// applied; `force: true` adds them and the audit row says they were forced. Checked with real dig.

import t from 'tap'
import { dig } from '../helpers/dig.js'
import { answeringUpstream, call, startApiDaemon, TOKENS, type ApiDaemon } from './helpers.js'

let upstream: Awaited<ReturnType<typeof answeringUpstream>>
t.before(async () => { upstream = await answeringUpstream() })
t.teardown(() => upstream.close())

const ask = (d: ApiDaemon, name: string) => dig(['@127.0.0.1', '-p', String(d.dnsPort), name, 'A', '+tries=1', '+time=3'])
const add = (d: ApiDaemon, body: Record<string, unknown>) => call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body })

t.test('too-broad block rules are refused with what they would block; nothing is stored or applied', async t => {
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const cases: Array<[string, RegExp]> = [
    ['com', /^body\.rule: 'com' would block every name under the top-level domain com: .*send "force": true to add it anyway$/],
    ['/.*/', /^body\.rule: '\/\.\*\/' would block nearly every name: it matches 20 of 20 unrelated test names \(example\.org, /],
    ['0.0.0.0/0', /^body\.rule: '0\.0\.0\.0\/0' would block 4,294,967,296 IPv4 addresses: wider than \/16/],
    ['google.com', /'google\.com' would block \d+ names that must keep working .*: google\.com, www\.google\.com/],
    ['yandex.ru', /'yandex\.ru' would block \d+ names that must keep working \(everyday services .*\): yandex\.ru, www\.yandex\.ru/],
    ['*.co.uk', /every name under the public suffix co\.uk/]
  ]
  for (const [rule, message] of cases) {
    const r = await add(d, { rule, comment: 'too much' })
    t.equal(r.status, 422, `${rule}: 422 (${r.text})`)
    t.match(r.json, { statusCode: 422, error: 'Unprocessable Entity', message }, rule)
  }
  t.equal((await ask(d, 'anything.example.com')).status, 'NOERROR', 'nothing was applied')
  t.same((await call(d.base, 'GET', '/api/v1/rules', { token: TOKENS.viewer })).json.rules, [], 'nothing was stored')
  t.same((await call(d.base, 'GET', '/api/v1/audit', { token: TOKENS.admin })).json.entries, [], 'nothing was audited')

  // Narrow rules and allow rules pass as before.
  t.equal((await add(d, { rule: 'chat.example.org' })).status, 201)
  t.equal((await add(d, { rule: '10.1.0.0/16' })).status, 201)
  t.equal((await add(d, { rule: 'com', kind: 'allow' })).status, 201, 'an allow rule is never refused')
  t.equal((await add(d, { rule: 'com', force: 'yes' })).status, 400, 'force is a boolean')
})

t.test('force: true adds a too-broad rule, it applies, and the audit row records it as forced', async t => {
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  t.equal((await ask(d, 'anything.example.com')).status, 'NOERROR')
  const added = await add(d, { rule: 'com', force: true, comment: 'drill' })
  t.equal(added.status, 201, added.text)
  t.match(added.json.rule, { rule: 'com', kind: 'block', type: 'domain' })
  t.equal((await ask(d, 'anything.example.com')).status, 'NXDOMAIN', 'the forced rule blocks')
  const wide = await add(d, { rule: '0.0.0.0/0', force: true })
  t.equal(wide.status, 201, wide.text)
  const regex = await add(d, { rule: '/.*/', force: true })
  t.equal(regex.status, 201, regex.text)
  const narrow = await add(d, { rule: 'chat.example.org', force: true })
  t.equal(narrow.status, 201, 'force on a rule the guard accepts changes nothing')

  const audit = await call(d.base, 'GET', '/api/v1/audit?action=rule.add', { token: TOKENS.admin })
  const byRule = new Map(audit.json.entries.map((e: { after: { rule: string } }) => [e.after.rule, e]))
  t.match(byRule.get('com'), { actor: 'admin-token', action: 'rule.add', after: { rule: 'com', comment: 'drill', forced: /would block every name under the top-level domain com/ } })
  t.match(byRule.get('0.0.0.0/0'), { after: { forced: /4,294,967,296 IPv4 addresses/ } })
  t.match(byRule.get('/.*/'), { after: { forced: /nearly every name/ } })
  t.notOk('forced' in (byRule.get('chat.example.org') as { after: object }).after, 'a rule that needed no force is not marked forced')
})
