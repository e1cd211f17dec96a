// The maintained lists in blocklists/: every category loads, blocks its apex names and deep
// subdomains through real DNS with the EDE, and never blocks the parent companies' other services.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { buildEngine, readMeta } from '../../src/policy/build.js'
import { parseList } from '../../src/policy/parsers.js'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, testConfig } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'

const DIR = resolve(import.meta.dirname, '..', '..', 'blocklists')
const CATEGORIES = readdirSync(DIR, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name).sort()
const REQUIRED = ['telegram', 'whatsapp', 'viber', 'discord', 'teams', 'skype', 'snapchat', 'threema', 'wechat', 'gmail', 'signal', 'zoom', 'doh-bypass']
const OFF_BY_DEFAULT = ['signal', 'zoom']

/** A category's whole-domain entries (suffix rules for every query type; no exceptions). */
const entries = (cat: string): string[] => parseList(readFileSync(join(DIR, cat, 'domains.txt'), 'utf8'), 'plain').rules
  .filter(r => r.kind === 'suffix' && !r.allow && r.types === undefined).map(r => r.value)
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
  // name -> the query types that must stay answered (a mustNotBlock item may say `$dnstype=MX|TXT`).
  const names = new Map<string, number[]>()
  const ALL = [1, 28, 65, 15, 16]
  for (const cat of CATEGORIES) {
    for (const item of readMeta(join(DIR, cat, 'meta.yaml'), [])?.mustNotBlock ?? []) {
      const r = parseList(item, 'plain').rules[0]
      names.set(r.value, r.types === undefined ? ALL : [...r.types.types])
    }
  }
  for (const n of ['google.com', 'www.google.com', 'youtube.com', 'accounts.google.com', 'outlook.office.com', 'outlook.office365.com',
    'login.microsoftonline.com', 'office.com', 'microsoft.com', 'login.live.com', 'facebook.com', 'instagram.com', 'qq.com']) names.set(n, ALL)
  for (const [n, types] of names) for (const qtype of types) t.equal(engine.decideName(n, group, qtype), undefined, `${n} type ${qtype} stays allowed`)
  t.ok(names.size >= 40, `${names.size} names checked`)
  t.same(names.get('gmail.com'), [15, 16], 'gmail.com must stay answered for MX and TXT')
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

t.test('through real dig: gmail.com answers MX and TXT but not A; skype.com is blocked and its shared configuration hosts answered', async t => {
  const upstream = await startDnsmasq({
    auth: false,
    lines: [
      'host-record=gmail.com,192.0.2.21', 'mx-host=gmail.com,gmail-smtp-in.l.google.com,5', 'txt-record=gmail.com,"v=spf1 redirect=_spf.google.com"',
      'host-record=googlemail.com,192.0.2.22', 'mx-host=googlemail.com,gmail-smtp-in.l.google.com,5',
      'txt-record=_dmarc.gmail.com,"v=DMARC1; p=none"', 'host-record=mta-sts.gmail.com,192.0.2.23',
      'host-record=skype.com,192.0.2.31', 'host-record=web.skype.com,192.0.2.32', 'host-record=config.edge.skype.com,192.0.2.33',
      'host-record=edge.skype.com,192.0.2.34', 'host-record=pipe.skype.com,192.0.2.35', 'host-record=s2s.config.skype.com,192.0.2.36'
    ]
  })
  t.teardown(() => upstream.stop())
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const q = (name: string, type = 'A') => dig([`@${d.host}`, '-p', String(d.port), name, type])
  const mx = await q('gmail.com', 'MX')
  t.equal(mx.status, 'NOERROR', 'gmail.com MX is answered')
  t.match(mx.answers, [{ type: 'MX', data: /gmail-smtp-in\.l\.google\.com/ }])
  const txt = await q('gmail.com', 'TXT')
  t.equal(txt.status, 'NOERROR', 'gmail.com TXT is answered')
  t.match(txt.answers, [{ type: 'TXT', data: /v=spf1/ }])
  t.match((await q('_dmarc.gmail.com', 'TXT')).answers, [{ type: 'TXT', data: /DMARC1/ }], 'DMARC under gmail.com is answered')
  t.equal((await q('googlemail.com', 'MX')).status, 'NOERROR')
  for (const [name, type] of [['gmail.com', 'A'], ['gmail.com', 'AAAA'], ['gmail.com', 'HTTPS'], ['www.gmail.com', 'A'], ['googlemail.com', 'A']]) {
    const r = await q(name, type)
    t.equal(r.status, 'NXDOMAIN', `${name} ${type} is blocked`)
    t.match(r.ede ?? '', /15 \(Blocked\).*gmail is blocked/, `${name} ${type}: EDE 15`)
  }
  t.match((await q('mta-sts.gmail.com')).answers, [{ data: '192.0.2.23' }], 'the MTA-STS host (a pack exception) is answered')
  for (const name of ['skype.com', 'web.skype.com', 'new-host.skype.com']) {
    const r = await q(name)
    t.equal(r.status, 'NXDOMAIN', `${name} is blocked`)
    t.match(r.ede ?? '', /15 \(Blocked\)/, `${name}: EDE 15`)
  }
  for (const [name, address] of [['config.edge.skype.com', '192.0.2.33'], ['edge.skype.com', '192.0.2.34'], ['pipe.skype.com', '192.0.2.35'], ['s2s.config.skype.com', '192.0.2.36']]) {
    const r = await q(name)
    t.equal(r.status, 'NOERROR', `${name} (a documented configuration host) is answered`)
    t.match(r.answers, [{ data: address }])
  }
})
