// GET /api/v1/learned through a real daemon that learned from a real dnsmasq upstream
// (learning-daemon.ts): A in whatsapp's learned set from the blocked query's background
// resolution, B held back with the allowed name that shares it; the viewer role, the category
// filter (an unknown one a 400 naming querystring.category with the valid ones), and with learning
// off `enabled: false` and nothing listed.

import t from 'tap'
import { call, startApiDaemon, TOKENS } from './helpers.js'
import { A, ALLOWED_B, B, BANNED_A, BANNED_B, lookUp, startLearningDaemon, waitLearned } from './learning-daemon.js'

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

t.test('with learning on: the learned and the held addresses, by category', async t => {
  const d = await startLearningDaemon(t)
  const before = await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.viewer })
  t.equal(before.status, 200)
  t.match(before.json, { enabled: true, learned: [], held: [] }, 'nothing learned before the lookups')
  await lookUp(t, d)
  await waitLearned(d)

  const r = await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.viewer })
  t.equal(r.status, 200)
  t.equal(r.json.enabled, true)
  const a = r.json.learned.find((l: { address: string }) => l.address === A)
  t.match(a, { address: A, family: 4, category: 'whatsapp', name: BANNED_A, via: 'query', firstSeen: ISO, lastSeen: ISO, expiresAt: ISO }, 'A: learned for whatsapp from the blocked name')
  t.ok(Date.parse(a.expiresAt) > Date.now() + 3600_000, 'expiring no sooner than learning.minExpirySeconds (6 h by default)')
  t.notOk(r.json.learned.some((l: { address: string }) => l.address === B), 'B is in no learned set')
  const b = r.json.held.find((h: { address: string }) => h.address === B)
  t.match(b, { address: B, category: 'whatsapp', name: BANNED_B, reason: 'allowed-name', range: null }, 'B: held back')
  t.ok(b.sharedWith.includes(ALLOWED_B), `B is shared with the allowed name: ${JSON.stringify(b.sharedWith)}`)
  // The book's counters agree with what it lists (a new row was once counted active twice).
  t.match(r.json.counters, { active: r.json.learned.length, held: r.json.held.length, added: r.json.learned.length }, `counters: ${JSON.stringify(r.json.counters)}`)

  const whatsapp = await call(d.base, 'GET', '/api/v1/learned?category=whatsapp', { token: TOKENS.viewer })
  t.equal(whatsapp.status, 200)
  t.same(whatsapp.json.learned.map((l: { address: string }) => l.address), r.json.learned.filter((l: { category: string }) => l.category === 'whatsapp').map((l: { address: string }) => l.address))
  t.ok(whatsapp.json.held.some((h: { address: string }) => h.address === B))
  const telegram = await call(d.base, 'GET', '/api/v1/learned?category=telegram', { token: TOKENS.viewer })
  t.equal(telegram.status, 200)
  t.same([telegram.json.learned, telegram.json.held], [[], []], 'another category: nothing of whatsapp\'s')

  const unknown = await call(d.base, 'GET', '/api/v1/learned?category=whatsap', { token: TOKENS.viewer })
  t.equal(unknown.status, 400)
  t.match(unknown.json.message, /^querystring\.category: no category "whatsap"; valid: .*\btelegram\b.*/)
  t.match(unknown.json.message, /\bwhatsapp\b/, 'the valid ones listed')

  const admin = await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.admin })
  t.equal(admin.status, 200, 'admin may read too')
  const none = await call(d.base, 'GET', '/api/v1/learned')
  t.equal(none.status, 401, 'no token: 401')
  t.notMatch(none.text, A, 'and nothing learned in it')
  const metrics = await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.metrics })
  t.equal(metrics.status, 403, 'the metrics token is not a viewer')
})

t.test('with learning off: enabled false, nothing listed', async t => {
  const d = await startApiDaemon({ learning: { enabled: false } })
  t.teardown(() => d.close())
  const r = await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.viewer })
  t.equal(r.status, 200)
  t.same(r.json, { enabled: false, learned: [], held: [], counters: {} })
  const unknown = await call(d.base, 'GET', '/api/v1/learned?category=nope', { token: TOKENS.viewer })
  t.equal(unknown.status, 400, 'the category is still checked')
  t.match(unknown.json.message, /^querystring\.category: /)
})
