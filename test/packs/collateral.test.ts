// The collateral corpus (src/packs/collateral.ts): the vendored Tranco top 10,000 minus the banned
// services' own domains, plus every category's mustNotBlock; read from the real files.

import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatRemoval, INSTALLATION_ROOT, loadCollateral, loadRuleGuard, RANKING_FILE } from '../../src/packs/collateral.js'

const ROOT = INSTALLATION_ROOT
const PACKS = join(ROOT, 'blocklists')

t.test('the bundled corpus loads: the ranking, without the banned services, with every mustNotBlock', async t => {
  const c = loadCollateral(ROOT, PACKS)
  t.same(c.problems, [], 'every file reads')
  t.equal(c.ranked, 10_000, 'the ranking has 10,000 names')
  t.equal(c.names.length, new Set(c.names).size, 'no name twice')
  const names = new Set(c.names)
  // Known removals: each service's own domain in the ranking, named with its category.
  const removed = c.removed.map(formatRemoval)
  for (const r of ['telegram.org (telegram)', 't.me (telegram)', 'whatsapp.com (whatsapp)', 'wa.me (whatsapp)', 'signal.org (signal)',
    'viber.com (viber)', 'zoom.us (zoom)', 'discord.com (discord)', 'snapchat.com (snapchat)', 'threema.ch (threema)', 'dns.google (doh-bypass)']) {
    t.ok(removed.includes(r), `removed: ${r}`)
    t.notOk(names.has(r.split(' ')[0]), `${r.split(' ')[0]} is not in the corpus`)
  }
  const kept = c.ranked - c.removed.length
  const mustNotBlock = new Set([...c.mustNotBlock.values()].flat())
  t.ok(c.names.slice(kept).every(n => mustNotBlock.has(n)), 'after the kept ranking names come only mustNotBlock names')
  t.ok(c.names.slice(kept).length > 0 && c.names.slice(kept).length <= mustNotBlock.size)
  // Shared infrastructure the lists must not catch stays, even when ranked next to a banned service.
  for (const n of ['google.com', 'cloudflare.com', 'microsoft.com', 'github.com', 'apple.com', 'facebook.com']) t.ok(names.has(n), `kept: ${n}`)
  // Every category's mustNotBlock is in the corpus.
  t.ok(c.mustNotBlock.size >= 10, `${c.mustNotBlock.size} categories have mustNotBlock names`)
  for (const [category, list] of c.mustNotBlock) {
    for (const n of list) t.ok(names.has(n), `${category} mustNotBlock ${n}`)
  }
  t.ok(names.has('telegram.com') && names.has('storage.googleapis.com') && names.has('login.microsoftonline.com'), 'mustNotBlock names not in the ranking are added')
  t.ok(c.names.indexOf('google.com') < c.names.indexOf('telegram.com'), 'ranking first, then mustNotBlock')
  t.comment(`corpus ${c.names.length} names; removed ${c.removed.length}: ${removed.join(', ')}`)
})

t.test('a category covers ranking names by suffix, exact and wildcard entries; problems are named, nothing throws', async t => {
  const dir = t.testdir({})
  mkdirSync(join(dir, 'sources', 'tranco'), { recursive: true })
  writeFileSync(join(dir, RANKING_FILE), '# header\nchat.example\nwww.chat.example\nexact.example\nsub.exact.example\nwild.example\na.wild.example\nkeep.example\nbad name\nkeep.example\n')
  const packs = join(dir, 'packs')
  mkdirSync(join(packs, 'svc'), { recursive: true })
  writeFileSync(join(packs, 'svc', 'domains.txt'), 'chat.example\n=exact.example\n*.wild.example\n@@keep.example\n')
  writeFileSync(join(packs, 'svc', 'meta.yaml'), 'title: S\npolicyRef: r\nenabled: true\nmustNotBlock:\n  - Look-Alike.example\n  - keep.example\n  - "no good"\n')
  mkdirSync(join(packs, 'broken'))
  const c = loadCollateral(dir, packs)
  t.same(c.removed.map(formatRemoval), [
    'chat.example (svc)', 'www.chat.example (svc: chat.example)', 'exact.example (svc: =exact.example)', 'a.wild.example (svc: *.wild.example)'
  ])
  t.same(c.names, ['sub.exact.example', 'wild.example', 'keep.example', 'look-alike.example'], 'an allow entry covers nothing; duplicates once; mustNotBlock normalized')
  t.equal(c.ranked, 8)
  t.match(c.problems.join('\n'), /top-10k\.txt:9: not a hostname/)
  t.match(c.problems.join('\n'), /svc.meta\.yaml: mustNotBlock "no good"/)
  t.match(c.problems.join('\n'), /broken.domains\.txt: cannot read: ENOENT/)
  const none = loadCollateral(join(dir, 'nowhere'), join(dir, 'nowhere'))
  t.same(none.names, [])
  t.equal(none.problems.length, 2, 'a missing ranking and a missing blocklists folder are problems')
})

t.test('loadRuleGuard: the corpus of the config\'s blocklists dir, its limits and force list', async t => {
  const { guard, collateral } = loadRuleGuard({ dir: PACKS, guard: { maxPrefix: { v4: 8, v6: 32 }, force: ['google.com'] } })
  t.equal(guard.corpusSize, collateral.names.length)
  const rule = (value: string, kind: 'suffix' | 'cidr' = 'suffix') => ({ kind, value, allow: false })
  t.equal(guard.refuse(rule('google.com')), undefined, 'forced')
  t.equal(guard.refuse(rule('github.com'))?.reason, 'collateral')
  t.equal(guard.refuse(rule('10.0.0.0/8', 'cidr')), undefined, 'maxPrefix v4 8')
  t.equal(loadRuleGuard({ dir: PACKS }).guard.refuse(rule('10.0.0.0/8', 'cidr'))?.reason, 'wide-cidr', 'defaults without guard config')
})
