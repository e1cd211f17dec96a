// GET /api/v1/discovery on a real daemon over HTTP, its block log seeded before start with DNS
// blocks and firewall events written by the real writer: viewer and admin tokens read the report
// (installed app, single click, firewall-only client), a metrics token is refused, no token is a
// 401; bad parameters are 400s naming them; /api/v1/blocks?matched=firewall returns the firewall
// rows with port, proto and attempts, and matched=bogus is a 400 listing the valid values.

import t from 'tap'
import { join } from 'node:path'
import type { BlockEvent } from '../../src/store/block-event.js'
import { EventWriter } from '../../src/store/block-writer.js'
import { openDatabase } from '../../src/store/db.js'
import { firewallEvent } from '../../src/store/firewall-event.js'
import { tempDir } from '../helpers/tmp.js'
import { event } from '../store/helpers.js'
import { call, startApiDaemon, TOKENS } from './helpers.js'

const HOUR = 3_600_000
const NOW = Date.now()
const dataDir = tempDir('egressd-api-discovery-')
const fw = (ts: number, client: string, attempts: number): BlockEvent =>
  firewallEvent({ ts, client, destination: '157.240.1.1', family: 4, proto: 'tcp', port: 443, attempts }, { category: 'whatsapp', set: 'learned_whatsapp_v4', name: 'g.whatsapp.net', group: 'default' })
const seed = openDatabase(join(dataDir, 'egressd.sqlite'))
new EventWriter(seed).write([
  // 10.1.0.1: WhatsApp asked on three days, and rejected at the firewall.
  ...[3, 2, 1].map(d => event({ ts: NOW - d * 24 * HOUR, client: '10.1.0.1', qname: 'g.whatsapp.net', category: 'whatsapp' })),
  fw(NOW - 24 * HOUR + 60_000, '10.1.0.1', 7),
  // 10.1.0.2: two queries within a minute.
  event({ ts: NOW - 5 * HOUR, client: '10.1.0.2', qname: 't.me', category: 'telegram' }),
  event({ ts: NOW - 5 * HOUR + 30_000, client: '10.1.0.2', qname: 't.me', category: 'telegram', qtype: 28 }),
  // 10.1.0.3: only ever seen at the firewall.
  fw(NOW - 2 * HOUR, '10.1.0.3', 2)
].sort((a, b) => a.ts - b.ts))
seed.close()

const d = await startApiDaemon({}, { dataDir })
t.teardown(() => d.close())
const get = async (path: string, token: string | undefined = TOKENS.viewer): Promise<Awaited<ReturnType<typeof call>>> => await call(d.base, 'GET', path, { token })

t.test('the report, by role', async t => {
  const r = await get('/api/v1/discovery')
  t.equal(r.status, 200, r.text)
  const by = Object.fromEntries((r.json.clients as Array<{ client: string, categories: Array<{ perDay: unknown[] }> }>).map(c => [c.client, c]))
  t.match(by['10.1.0.1'], { pattern: 'installed-app', dnsAttempts: 3, firewallAttempts: 7, categories: [{ category: 'whatsapp', days: 3, firewallEvents: 1 }] })
  t.equal(by['10.1.0.1'].categories[0].perDay.length, 3)
  t.match(by['10.1.0.2'], { pattern: 'single-click', dnsAttempts: 2, firewallAttempts: 0, categories: [{ category: 'telegram' }] })
  t.match(by['10.1.0.3'], { pattern: 'single-click', dnsAttempts: 0, firewallAttempts: 2, categories: [{ category: 'whatsapp' }] }, 'firewall-only client')
  t.match(r.json.rule, /installed-app/)
  t.equal((await get('/api/v1/discovery', TOKENS.admin)).status, 200, 'admin may too')
  const none = await call(d.base, 'GET', '/api/v1/discovery')
  t.equal(none.status, 401)
  t.equal((await get('/api/v1/discovery', TOKENS.metrics)).status, 403)
  t.same((await get('/api/v1/discovery?client=10.1.0.0/30&category=telegram')).json.clients.map((c: { client: string }) => c.client), ['10.1.0.2'])
  t.same((await get('/api/v1/discovery?since=-3h')).json.clients.map((c: { client: string }) => c.client), ['10.1.0.3'])
})

t.test('bad parameters are 400s naming them', async t => {
  for (const [qs, parameter] of [['since=yesterday', 'since'], ['until=nope', 'until'], ['client=10.0.0.0/33', 'client'], ['since=-1h&until=-2h', 'since']]) {
    const r = await get(`/api/v1/discovery?${qs}`)
    t.equal(r.status, 400, qs)
    t.match(r.json, { parameter }, `${qs}: ${r.text}`)
  }
  const cat = await get('/api/v1/discovery?category=whatsap')
  t.equal(cat.status, 400)
  t.match(cat.json, { parameter: 'category', message: /unknown category "whatsap"; valid: .*whatsapp/ })
  const extra = await get('/api/v1/discovery?frobnicate=1')
  t.equal(extra.status, 400, extra.text)
  t.match(extra.json.message, /frobnicate/)
  t.equal((await get('/api/v1/discovery?limit=0')).status, 400)
})

t.test('the block search: matched=firewall, and a bogus matched names the valid values', async t => {
  const r = await get('/api/v1/blocks?matched=firewall&order=asc')
  t.equal(r.status, 200, r.text)
  t.match(r.json.rows, [
    { client: '10.1.0.1', matched: 'firewall', qname: 'g.whatsapp.net', value: '157.240.1.1', category: 'whatsapp', action: 'block', list: 'learned_whatsapp_v4', port: 443, proto: 'tcp', attempts: 7 },
    { client: '10.1.0.3', matched: 'firewall', attempts: 2 }
  ])
  t.equal(r.json.rows.length, 2)
  const dns = await get('/api/v1/blocks?matched=qname&client=10.1.0.2')
  t.match(dns.json.rows, [{ port: null, proto: null, attempts: null }, { port: null }])
  const csv = await get('/api/v1/blocks?matched=firewall&format=csv&order=asc')
  t.match(csv.text.split('\r\n')[0], /,port,proto,attempts$/)
  t.match(csv.text.split('\r\n')[1], /,learned_whatsapp_v4,,,,,,443,tcp,7$/)
  const bogus = await get('/api/v1/blocks?matched=bogus')
  t.equal(bogus.status, 400)
  t.match(bogus.json, { parameter: 'matched', message: 'matched: unknown matched "bogus"; valid: none, qname, cname, address, firewall' })
})
