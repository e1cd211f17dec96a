// Category changes through the API, checked with the real `dig`: disabled for one client group it
// applies to that group only; a new action applies to everyone; both survive a restart and are audited.

import t from 'tap'
import { dig } from '../helpers/dig.js'
import { answeringUpstream, call, startApiDaemon, TOKENS, type ApiDaemon } from './helpers.js'

let upstream: Awaited<ReturnType<typeof answeringUpstream>>
t.before(async () => { upstream = await answeringUpstream() })
t.teardown(() => upstream.close())

const ask = (d: ApiDaemon, name: string) =>
  dig(['@127.0.0.1', '-p', String(d.dnsPort), name, 'A', '+tries=1', '+time=3'])

t.test('categories: disable for one group, set the action for all, stored and audited', async t => {
  const config = {
    upstreams: [upstream.url],
    blocklists: { groups: [{ name: 'lab', clients: ['127.0.0.2/32'] }] }
  }
  let d = await startApiDaemon(config)
  t.teardown(() => d.close())
  const fromLab = (name: string) => dig(['@127.0.0.1', '-p', String(d.dnsPort), '-b', '127.0.0.2', name, 'A', '+tries=1', '+time=3'])
  t.equal((await ask(d, 'web.telegram.org')).status, 'NXDOMAIN')
  t.equal((await fromLab('web.telegram.org')).status, 'NXDOMAIN')

  const off = await call(d.base, 'PATCH', '/api/v1/categories/telegram', { token: TOKENS.admin, body: { group: 'lab', enabled: false } })
  t.equal(off.status, 200, off.text)
  t.same(off.json.before, {})
  t.same(off.json.after, { enabled: false })
  t.same(off.json.category.groups.map((g: { group: string, enabled: boolean }) => [g.group, g.enabled]), [['default', true], ['lab', false]])
  t.equal((await fromLab('web.telegram.org')).status, 'NOERROR', 'lab may reach telegram')
  t.equal((await ask(d, 'web.telegram.org')).status, 'NXDOMAIN', 'everyone else may not')

  const refused = await call(d.base, 'PATCH', '/api/v1/categories/telegram', { token: TOKENS.admin, body: { action: 'refused' } })
  t.equal(refused.status, 200)
  t.equal((await ask(d, 'web.telegram.org')).status, 'REFUSED')

  const cats = await call(d.base, 'GET', '/api/v1/categories', { token: TOKENS.viewer })
  const tg = cats.json.categories.find((c: { name: string }) => c.name === 'telegram')
  t.same(tg.overrides, { '*': { action: 'refused' }, lab: { enabled: false } })
  t.ok(tg.entries > 0)

  await d.close()
  d = await startApiDaemon(config, { dataDir: d.dataDir })
  t.equal((await ask(d, 'web.telegram.org')).status, 'REFUSED', 'the override survives a restart')
  t.equal((await fromLab('web.telegram.org')).status, 'NOERROR')
  const audit = await call(d.base, 'GET', '/api/v1/audit?action=category.update', { token: TOKENS.admin })
  t.match(audit.json.entries, [
    { target: 'telegram (group *)', before: {}, after: { action: 'refused' } },
    { target: 'telegram (group lab)', before: {}, after: { enabled: false } }
  ])
})
