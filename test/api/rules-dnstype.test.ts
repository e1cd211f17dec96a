// Custom rules limited to query types through the API: POST /api/v1/rules takes `$dnstype=`, the
// rule applies to those types only (real dig), the block log and GET /api/v1/check show the
// restriction, and a bad modifier is a 400 naming the field.

import t from 'tap'
import { dig } from '../helpers/dig.js'
import { answeringUpstream, call, startApiDaemon, TOKENS } from './helpers.js'

t.test('a custom rule with $dnstype blocks only the types it names', async t => {
  const upstream = await answeringUpstream()
  t.teardown(() => upstream.close())
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const ask = (name: string, type: string) => dig(['@127.0.0.1', '-p', String(d.dnsPort), name, type, '+tries=1', '+time=3'])

  const added = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'v6only.example $dnstype=AAAA|HTTPS', comment: 'no IPv6 there' } })
  t.equal(added.status, 201, added.text)
  t.match(added.json.rule, { rule: 'v6only.example $dnstype=AAAA|HTTPS', kind: 'block' })
  const aaaa = await ask('www.v6only.example', 'AAAA')
  t.equal(aaaa.status, 'NXDOMAIN', 'AAAA is blocked')
  t.match(aaaa.ede ?? '', /15 \(Blocked\)/)
  t.equal((await ask('www.v6only.example', 'A')).status, 'NOERROR', 'A is answered')

  const check = await call(d.base, 'GET', '/api/v1/check?name=www.v6only.example&type=HTTPS', { token: TOKENS.viewer })
  t.match(check.json, { verdict: 'block', type: 'HTTPS', category: 'custom', rule: 'v6only.example $dnstype=AAAA|HTTPS' })
  const checkA = await call(d.base, 'GET', '/api/v1/check?name=www.v6only.example&type=A', { token: TOKENS.viewer })
  t.match(checkA.json, { verdict: 'allow', type: 'A' })
  const badType = await call(d.base, 'GET', '/api/v1/check?name=www.v6only.example&type=BOGUS', { token: TOKENS.viewer })
  t.equal(badType.status, 400)
  t.match(badType.json.message, /querystring\.type: not a DNS record type/)

  let rows: Array<{ qname: string, qtype: string, rule: string }> = []
  for (let i = 0; i < 50 && rows.length === 0; i++) {
    rows = (await call(d.base, 'GET', '/api/v1/blocks?domain=www.v6only.example', { token: TOKENS.viewer })).json.rows ?? []
    if (rows.length === 0) await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.match(rows, [{ qname: 'www.v6only.example', qtype: 'AAAA', rule: 'v6only.example $dnstype=AAAA|HTTPS' }], 'the block log shows the restriction')

  const bad = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'x.example $dnstype=A|~MX' } })
  t.equal(bad.status, 400)
  t.match(bad.json.message, /body\.rule: .*either every type negated with '~' or none/)
})
