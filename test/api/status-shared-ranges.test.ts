// GET /api/v1/status over the real API: firewall.sharedRanges lists the shared ranges that are on
// (none by default) with what they cut off, and the config summary echoes firewall.sharedRanges.

import t from 'tap'
import { call, startApiDaemon, TOKENS } from './helpers.js'

t.test('status: firewall.sharedRanges is empty by default and the schema carries it', async t => {
  const d = await startApiDaemon()
  t.teardown(() => d.close())
  const r = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.equal(r.status, 200, r.text)
  t.same(r.json.firewall.sharedRanges, [])
  t.same(r.json.config.firewall.sharedRanges, [])
  const spec = await call(d.base, 'GET', '/api/v1/openapi.json', { token: TOKENS.viewer })
  t.match(JSON.stringify(spec.json), /Shared ranges turned on by firewall\.sharedRanges/)
})

t.test('status: the config summary names the opted-in categories', async t => {
  const d = await startApiDaemon({ firewall: { sharedRanges: ['whatsapp'] } })
  t.teardown(() => d.close())
  const r = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.equal(r.status, 200, r.text)
  t.same(r.json.config.firewall.sharedRanges, ['whatsapp'])
  // What the firewall gets: the policy build's shared ranges (each with what it cuts off).
  const shared = d.daemon.policyBuild.extras.shared.get('whatsapp')
  t.ok(shared !== undefined && shared.v4.length > 0, 'the daemon built with WhatsApp\'s shared ranges on')
  t.match(r.json.firewall.sharedRanges, [{ category: 'whatsapp', ranges: (shared?.v4.length ?? 0) + (shared?.v6.length ?? 0) }])
  t.ok((r.json.firewall.sharedRanges[0]?.cutsOff as string[] | undefined)?.some(c => /Facebook/.test(c)), 'and names what else it cuts off')
})
