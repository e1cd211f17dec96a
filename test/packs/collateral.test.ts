// The collateral corpus (src/packs/collateral.ts): our own list of everyday services
// (sources/collateral/*.txt) plus every category's mustNotBlock; read from the real files, then
// from small folders written here.

import t from 'tap'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CORPUS_DIR, INSTALLATION_ROOT, loadCollateral, loadRuleGuard } from '../../src/packs/collateral.js'
import { parseList } from '../../src/policy/parsers.js'

const ROOT = INSTALLATION_ROOT
const PACKS = join(ROOT, 'blocklists')

/** What the bundled packs block, as plain rules (every domains.txt). */
function packRules (): Array<{ category: string, kind: string, value: string, text: string }> {
  const out: Array<{ category: string, kind: string, value: string, text: string }> = []
  for (const category of readdirSync(PACKS, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name)) {
    let text: string
    try { text = readFileSync(join(PACKS, category, 'domains.txt'), 'utf8') } catch { continue }
    for (const r of parseList(text, 'plain').rules) if (!r.allow) out.push({ category, kind: r.kind, value: r.value, text: r.text })
  }
  return out
}

t.test('the bundled corpus loads: our everyday names, then every mustNotBlock', async t => {
  const c = loadCollateral(ROOT, PACKS)
  t.same(c.problems, [], 'every file reads, every line is a name')
  const read = c.files.get('everyday.txt') ?? 0
  t.ok(read >= 400 && read <= 800, `everyday.txt has ${read} names`)
  t.equal(c.names.length, new Set(c.names).size, 'no name twice')
  const names = new Set(c.names)
  // The parent companies' other services, shared infrastructure, Russian government and everyday sites.
  for (const n of ['google.com', 'youtube.com', 'microsoft.com', 'login.microsoftonline.com', 'outlook.office.com', 'facebook.com', 'qq.com',
    'rakuten.co.jp', 'apple.com', 'amazonaws.com', 'akamaized.net', 'github.com', 'gosuslugi.ru', 'nalog.gov.ru', 'yandex.ru', 'vk.com', 'wikipedia.org']) {
    t.ok(names.has(n), `in the corpus: ${n}`)
  }
  // Every category's mustNotBlock is in the corpus, after the corpus files' names.
  t.ok(c.mustNotBlock.size >= 10, `${c.mustNotBlock.size} categories have mustNotBlock names`)
  for (const [category, list] of c.mustNotBlock) {
    for (const n of list) t.ok(names.has(n), `${category} mustNotBlock ${n}`)
  }
  t.ok(names.has('telegram.com') && names.has('t.co'), 'mustNotBlock names not in everyday.txt are added')
  t.ok(c.names.indexOf('google.com') < c.names.indexOf('telegram.com'), 'corpus files first, then mustNotBlock')
  t.comment(`corpus ${c.names.length} names (${read} from everyday.txt)`)
})

t.test('the corpus lists no banned service and no resolver host: no bundled pack blocks a corpus file name', async t => {
  const c = loadCollateral(ROOT, PACKS)
  const own = new Set<string>()
  for (const file of readdirSync(join(ROOT, CORPUS_DIR)).filter(f => f.endsWith('.txt'))) {
    for (const r of parseList(readFileSync(join(ROOT, CORPUS_DIR, file), 'utf8'), 'plain').rules) own.add(r.value)
  }
  t.ok(own.size > 0)
  const blocks = (kind: string, value: string, name: string): boolean =>
    kind === 'exact' ? name === value : kind === 'suffix' ? name === value || name.endsWith(`.${value}`) : kind === 'wildcard' ? name.endsWith(`.${value}`) : false
  const rules = packRules()
  t.ok(rules.length > 100, `${rules.length} pack entries`)
  const hits: string[] = []
  for (const name of own) for (const r of rules) if (blocks(r.kind, r.value, name)) hits.push(`${name} (${r.category}: ${r.text})`)
  t.same(hits, [], 'no corpus name is blocked by a pack')
  for (const n of ['telegram.org', 't.me', 'whatsapp.com', 'viber.com', 'discord.com', 'teams.microsoft.com', 'skype.com', 'snapchat.com',
    'threema.ch', 'wechat.com', 'mail.google.com', 'signal.org', 'zoom.us', 'dns.google', 'cloudflare-dns.com']) {
    t.notOk(own.has(n), `not in the corpus files: ${n}`)
  }
  t.ok(c.names.length > own.size)
})

t.test('several corpus files, comments, bad lines and mustNotBlock with $dnstype; problems are named, nothing throws', async t => {
  const dir = t.testdir({})
  mkdirSync(join(dir, CORPUS_DIR), { recursive: true })
  writeFileSync(join(dir, CORPUS_DIR, 'b.txt'), '# header\n# group\nWWW.Example.org.\nexample.org # trailing comment\nbad name\n=exact.example\n@@allow.example\n*.wild.example\nkeep.example\n')
  writeFileSync(join(dir, CORPUS_DIR, 'a.txt'), 'first.example\nexample.org\n')
  writeFileSync(join(dir, CORPUS_DIR, 'notes.md'), 'not.read.example\n')
  const packs = join(dir, 'packs')
  mkdirSync(join(packs, 'svc'), { recursive: true })
  // A pack that blocks a corpus name hides nothing: the name stays in the corpus.
  writeFileSync(join(packs, 'svc', 'domains.txt'), 'example.org\n')
  writeFileSync(join(packs, 'svc', 'meta.yaml'), 'title: S\npolicyRef: r\nenabled: true\nmustNotBlock:\n  - Look-Alike.example\n  - keep.example\n  - "mx.example $dnstype=MX|TXT"\n  - "no good"\n  - "*.wild.example"\n')
  mkdirSync(join(packs, 'broken'))
  const c = loadCollateral(dir, packs)
  t.same(c.names, ['first.example', 'example.org', 'www.example.org', 'keep.example', 'look-alike.example', 'mx.example'],
    'files in name order; names normalized; each once; a pack entry removes nothing; the name part of a $dnstype item')
  t.same([...c.files], [['a.txt', 2], ['b.txt', 3]])
  t.same(c.mustNotBlock.get('svc'), ['look-alike.example', 'keep.example', 'mx.example'])
  const problems = c.problems.join('\n')
  t.match(problems, /b\.txt:5: not a hostname/)
  t.match(problems, /b\.txt:6: "=exact\.example": expected a host name/)
  t.match(problems, /b\.txt:7: "@@allow\.example": expected a host name/)
  t.match(problems, /b\.txt:8: "\*\.wild\.example": expected a host name/)
  t.match(problems, /svc.meta\.yaml: mustNotBlock "no good"/)
  t.match(problems, /svc.meta\.yaml: mustNotBlock "\*\.wild\.example"/)
  t.match(problems, /broken.meta\.yaml/)
  t.notMatch(problems, /notes\.md/)
  const none = loadCollateral(join(dir, 'nowhere'), join(dir, 'nowhere'))
  t.same(none.names, [])
  t.equal(none.problems.length, 2, 'a missing corpus folder and a missing blocklists folder are problems')
  t.match(none.problems[0], /cannot read the collateral corpus folder: ENOENT/)
})

t.test('loadRuleGuard: the corpus of the config\'s blocklists dir, its limits and force list', async t => {
  const { guard, collateral } = loadRuleGuard({ dir: PACKS, guard: { maxPrefix: { v4: 8, v6: 32 }, force: ['google.com'] } })
  t.equal(guard.corpusSize, collateral.names.length)
  const rule = (value: string, kind: 'suffix' | 'cidr' = 'suffix') => ({ kind, value, allow: false })
  t.equal(guard.refuse(rule('google.com')), undefined, 'forced')
  t.equal(guard.refuse(rule('yandex.ru'))?.reason, 'collateral')
  t.equal(guard.refuse(rule('github.com'))?.reason, 'collateral')
  t.equal(guard.refuse(rule('10.0.0.0/8', 'cidr')), undefined, 'maxPrefix v4 8')
  t.equal(loadRuleGuard({ dir: PACKS }).guard.refuse(rule('10.0.0.0/8', 'cidr'))?.reason, 'wide-cidr', 'defaults without guard config')
})
