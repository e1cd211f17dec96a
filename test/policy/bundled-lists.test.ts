// The maintained lists in blocklists/: every category loads, blocks its apex names and deep
// subdomains through real DNS with the EDE, and never blocks the parent companies' other services.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { buildEngine, readMeta } from '../../src/policy/build.js'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, testConfig } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'

const DIR = resolve(import.meta.dirname, '..', '..', 'blocklists')
const CATEGORIES = readdirSync(DIR, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name).sort()
const REQUIRED = ['telegram', 'whatsapp', 'viber', 'discord', 'teams', 'skype', 'snapchat', 'threema', 'wechat', 'gmail', 'signal', 'zoom', 'doh-bypass']
const OFF_BY_DEFAULT = ['signal', 'zoom']

const entries = (cat: string): string[] => readFileSync(join(DIR, cat, 'domains.txt'), 'utf8').split('\n')
  .map(l => l.replace(/#.*/, '').trim()).filter(l => l !== '')
/** The first entry of a category that no other category lists too (lync.com is Teams and Skype). */
const ownApex = (cat: string): string => {
  const others = new Set(CATEGORIES.filter(c => c !== cat).flatMap(entries))
  const own = entries(cat).find(e => !others.has(e))
  if (own === undefined) throw new Error(`${cat} has no entry of its own`)
  return own
}

t.test('every required category is shipped with meta, sources and the right default', async t => {
  t.same(CATEGORIES, [...REQUIRED].sort())
  for (const cat of CATEGORIES) {
    const problems: string[] = []
    const meta = readMeta(join(DIR, cat, 'meta.yaml'), problems)
    t.same(problems, [], `${cat}: meta.yaml is valid`)
    t.equal(meta?.enabled, !OFF_BY_DEFAULT.includes(cat), `${cat}: enabled by default = ${!OFF_BY_DEFAULT.includes(cat)}`)
    t.ok((meta?.policyRef.length ?? 99) <= 40, `${cat}: policyRef fits an EDE text`)
    const raw = readFileSync(join(DIR, cat, 'meta.yaml'), 'utf8')
    t.match(raw, /sources:\s*\n\s*- title: .*\n\s*url: https?:\/\//, `${cat}: sources with links`)
  }
})

t.test('the bundled lists compile without a skipped line', async t => {
  const { engine, warnings } = buildEngine(testConfig({}).blocklists, 1)
  t.same(warnings, [])
  t.ok(engine.stats().names > 100, `${engine.stats().names} name rules`)
  t.ok(engine.stats().addresses >= 14, `${engine.stats().addresses} address rules`)
})

t.test('no collateral damage: mustNotBlock names stay allowed even with every category on', async t => {
  const all = Object.fromEntries(CATEGORIES.map(c => [c, { enabled: true }]))
  const { engine } = buildEngine(testConfig({ blocklists: { categories: all } }).blocklists, 1)
  const group = engine.groupOf('192.0.2.1')
  const names = new Set<string>()
  for (const cat of CATEGORIES) for (const n of readMeta(join(DIR, cat, 'meta.yaml'), [])?.mustNotBlock ?? []) names.add(n)
  for (const n of ['google.com', 'www.google.com', 'youtube.com', 'accounts.google.com', 'outlook.office.com', 'outlook.office365.com',
    'login.microsoftonline.com', 'office.com', 'microsoft.com', 'login.live.com', 'facebook.com', 'instagram.com', 'qq.com']) names.add(n)
  for (const n of names) t.equal(engine.decideName(n, group, 1), undefined, `${n} stays allowed`)
  t.ok(names.size >= 40, `${names.size} names checked`)
})

t.test("Telegram's published ranges are blocked as answer addresses", async t => {
  const { engine } = buildEngine(testConfig({}).blocklists, 1)
  const g = engine.groupOf('192.0.2.1')
  for (const a of ['149.154.167.51', '91.108.56.130', '2001:67c:4e8:f004::a', '::ffff:149.154.175.50']) {
    t.match(engine.decideAddress(a, g), { category: 'telegram', matched: 'address' }, a)
  }
  t.equal(engine.decideAddress('149.154.176.1', g), undefined)
})

t.test('through real DNS: each category apex and a deep subdomain are blocked with NXDOMAIN and the EDE', async t => {
  const upstream = await startDnsmasq()
  t.teardown(() => upstream.stop())
  const d = await startTestDaemon({ upstreams: [upstream.url], blocklists: { categories: { signal: { enabled: true }, zoom: { enabled: true } } } })
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]
  for (const cat of CATEGORIES) {
    const apex = ownApex(cat)
    const [a, deep] = await Promise.all([dig([...at, apex]), dig([...at, `x1.deep-sub.${apex}`, 'AAAA'])])
    t.equal(a.status, 'NXDOMAIN', `${cat}: ${apex}`)
    t.match(a.ede ?? '', new RegExp(`15 \\(Blocked\\).*${cat} is blocked`), `${cat}: EDE`)
    t.equal(deep.status, 'NXDOMAIN', `${cat}: x1.deep-sub.${apex}`)
  }
  const off = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => off.close())
  for (const cat of OFF_BY_DEFAULT) {
    const r = await dig([`@${off.host}`, '-p', String(off.port), entries(cat)[0]])
    t.equal(r.ede, undefined, `${cat} is off by default`)
  }
})
