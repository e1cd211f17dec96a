// The rule guard (src/policy/guard.ts) over the real collateral corpus: which block rules it
// refuses, what its message says they would block, force, and how fast it checks a big list.

import t from 'tap'
import { join } from 'node:path'
import { INSTALLATION_ROOT, loadCollateral } from '../../src/packs/collateral.js'
import { guardConfigRules, guardListRule, PROBE_NAMES, RuleGuard, type GuardReason } from '../../src/policy/guard.js'
import { parseList } from '../../src/policy/parsers.js'
import type { Rule } from '../../src/policy/rule.js'

const corpus = loadCollateral(INSTALLATION_ROOT, join(INSTALLATION_ROOT, 'blocklists')).names
const guard = new RuleGuard(corpus)

/** The one rule of a plain list line. */
function rule (line: string): Rule {
  const p = parseList(line, 'plain')
  if (p.rules.length !== 1 || p.issues.length > 0) throw new Error(`not one rule: ${line}`)
  return p.rules[0]
}

// rule -> undefined (accepted) or [reason, ...substrings of the message]
const TABLE: ReadonlyArray<readonly [string, readonly [GuardReason, ...string[]] | undefined]> = [
  // Public suffixes and top-level domains (PSL, ICANN and private sections).
  ['com', ['public-suffix', "'com' would block every name under the top-level domain com"]],
  ['co.uk', ['public-suffix', 'every name under the public suffix co.uk']],
  ['github.io', ['public-suffix', 'public suffix github.io', 'unrelated owners']],
  ['*.com', ['public-suffix', "'*.com' would block every name under the top-level domain com"]],
  ['=com', ['public-suffix', "'=com' would block the top-level domain com itself"]],
  ['*.co.uk', ['public-suffix', 'public suffix co.uk']],
  ['xn--p1ai', ['public-suffix', 'top-level domain xn--p1ai']],
  ['lan', ['public-suffix', 'top-level domain lan']],
  ['s3.amazonaws.com', ['public-suffix', 'public suffix s3.amazonaws.com']],
  ['*.googleapis.com', ['public-suffix', 'public suffix googleapis.com']],
  // Collateral: names of the corpus (sources/collateral/, mustNotBlock).
  ['google.com', ['collateral', "'google.com' would block", 'google.com, www.google.com', 'must keep working']],
  ['=google.com', ['collateral', 'would block 1 name that must keep working', 'google.com']],
  ['*.microsoftonline.com', ['collateral', 'login.microsoftonline.com']],
  ['amazonaws.com', ['collateral', 'amazonaws.com']],
  ['telegram.com', ['collateral', 'telegram.com, www.telegram.com']],
  ['t.co', ['collateral', 't.co']],
  ['microsoftonline.com', ['collateral', 'login.microsoftonline.com']],
  ['yandex.ru', ['collateral', "'yandex.ru' would block", 'yandex.ru, www.yandex.ru']],
  ['*.gosuslugi.ru', ['collateral', 'www.gosuslugi.ru, esia.gosuslugi.ru']],
  ['gmail.com', ['collateral', 'gmail.com']], // gmail mustNotBlock 'gmail.com $dnstype=MX|TXT': its name
  // Regexes: nearly every name, or corpus names.
  ['/.*/', ['every-name', "'/.*/' would block nearly every name", `matches ${PROBE_NAMES.length} of ${PROBE_NAMES.length}`, 'example.org']],
  ['/./', ['every-name', 'nearly every name']],
  ['/a/', ['every-name', 'nearly every name']],
  ['/^[a-z0-9._-]+$/', ['every-name', 'nearly every name']],
  ['/\\.com$/', ['collateral', 'microsoft.com, www.microsoft.com', ' more']],
  ['/^telegram\\./', ['collateral', 'telegram.com']],
  // Address ranges wider than /16 (IPv4) or /32 (IPv6).
  ['0.0.0.0/0', ['wide-cidr', "'0.0.0.0/0' would block 4,294,967,296 IPv4 addresses", 'wider than /16', 'blocklists.guard.maxPrefix.v4']],
  ['10.0.0.0/8', ['wide-cidr', '16,777,216 IPv4 addresses']],
  ['172.16.0.0/15', ['wide-cidr', 'wider than /16']],
  ['::/0', ['wide-cidr', "'::/0' would block 2^128 IPv6 addresses", 'wider than /32', 'maxPrefix.v6']],
  ['2001:db8::/31', ['wide-cidr', '2^97 IPv6 addresses']],
  // Accepted.
  ['telegram.org', undefined], // a banned service's own domain: not in the corpus
  ['mail.google.com', undefined], // Gmail's web host: not in the corpus (google.com is, but not what is under it)
  ['t.me', undefined],
  ['chat.example.org', undefined],
  ['myproject.github.io', undefined],
  ['*.chat.example.org', undefined],
  ['=mail.example.net', undefined],
  ['/^tracker[0-9]+\\.example\\.net$/', undefined],
  ['/^ads?[0-9]*\\.badnet\\.example$/', undefined],
  ['10.1.0.0/16', undefined],
  ['203.0.113.7', undefined],
  ['2001:db8::/32', undefined],
  ['2001:db8::1', undefined],
  // Allow rules are never refused.
  ['@@com', undefined],
  ['@@/.*/', undefined],
  ['@@0.0.0.0/0', undefined]
]

t.test('each rule: refused with what it would block, or accepted', async t => {
  t.ok(corpus.length > 500, `corpus of ${corpus.length} names`)
  for (const [line, want] of TABLE) {
    const f = guard.refuse(rule(line))
    if (want === undefined) { t.equal(f, undefined, `${line}: accepted${f === undefined ? '' : ` (refused: ${f.message})`}`); continue }
    const [reason, ...parts] = want
    t.equal(f?.reason, reason, `${line}: ${reason}`)
    for (const p of parts) t.ok(f?.message.includes(p), `${line}: message has ${JSON.stringify(p)}: ${f?.message}`)
  }
})

t.test('collateral: up to 5 names and the count', async t => {
  const f = guard.refuse(rule('google.com'))!
  t.ok(f.names.length <= 5 && f.names.length >= 2, `${f.names.join(', ')}`)
  t.ok(f.count > f.names.length, `count ${f.count}`)
  t.match(f.message, new RegExp(`would block ${f.count} names .*and ${f.count - f.names.length} more$`))
  const com = guard.refuse(rule('/\\.com$/'))!
  t.ok(com.count > 200, `a regex on .com catches ${com.count} corpus names`)
  t.equal(com.names.length, 5)
})

t.test('force: listed rules pass, others do not; bad force entries are config issues', async t => {
  const g = new RuleGuard(corpus, { maxPrefix: { v4: 16, v6: 32 }, force: ['com', '10.0.0.0/8', '/.*/', 'GOOGLE.com.', '@@x.example', 'bad name', ''] })
  for (const line of ['com', '10.0.0.0/8', '/.*/', 'google.com']) t.equal(g.refuse(rule(line)), undefined, `${line}: forced`)
  t.ok(g.forced(rule('com')))
  t.equal(g.check(rule('com'))?.reason, 'public-suffix', 'check() still says why')
  for (const line of ['*.com', '=com', 'co.uk', '10.0.0.0/7', 'www.google.com']) t.ok(g.refuse(rule(line)), `${line}: not forced (a different rule)`)
  t.same(g.forceIssues.map(i => i.path), ['blocklists.guard.force.4', 'blocklists.guard.force.5', 'blocklists.guard.force.6'])
  t.match(g.forceIssues[0].message, /allow rules are never refused/)
  t.match(g.forceIssues[1].message, /not a hostname/)
})

t.test('maxPrefix is configurable', async t => {
  const g = new RuleGuard([], { maxPrefix: { v4: 8, v6: 16 }, force: [] })
  t.equal(g.refuse(rule('10.0.0.0/8')), undefined)
  t.equal(g.refuse(rule('2001::/16')), undefined)
  t.equal(g.refuse(rule('0.0.0.0/7'))?.reason, 'wide-cidr')
  t.match(g.refuse(rule('::/15'))?.message, /wider than \/16/)
  const strict = new RuleGuard([], { maxPrefix: { v4: 32, v6: 128 }, force: [] })
  t.equal(strict.refuse(rule('192.0.2.1')), undefined, 'a single address is never too wide')
  t.equal(strict.refuse(rule('192.0.2.0/31'))?.reason, 'wide-cidr')
})

t.test('config rules: refused ones name their path; extra list lines become FILE:LINE issues', async t => {
  const issues = guardConfigRules({
    rules: { block: ['chat.example.org', 'com', '@@github.io'], allow: ['com'] },
    groups: [{ name: 'lab', clients: ['10.0.0.0/24'], categories: {}, exempt: false, rules: { block: ['10.0.0.0/8'], allow: [] } }]
  }, guard)
  t.same(issues.map(i => i.path), ['blocklists.rules.block.1', 'blocklists.groups.0.rules.block.0'])
  t.match(issues[0].message, /^'com' would block every name under the top-level domain com: .*; to keep it anyway, list it under blocklists\.guard\.force$/)
  t.match(issues[1].message, /'10\.0\.0\.0\/8' would block 16,777,216 IPv4 addresses/)
  const forced = new RuleGuard(corpus, { maxPrefix: { v4: 16, v6: 32 }, force: ['com'] })
  t.same(guardConfigRules({ rules: { block: ['com'], allow: [] }, groups: [] }, forced), [], 'forced in the config: no issue')

  const list = parseList('ok.example\ngoogle.com\n*.com\n# note\n0.0.0.0/0\n@@com\n', 'plain')
  const skipped = list.rules.map(r => guardListRule(guard, r)).filter(i => i !== undefined)
  t.same(skipped.map(i => i.line), [2, 3, 5])
  t.match(skipped[0], { line: 2, text: 'google.com', message: /^skipped: 'google\.com' would block/ })
})

t.test('fast enough for a 100k-line list', async t => {
  let seed = 7
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
  const word = (n: number): string => { let s = ''; for (let i = 0; i < n; i++) s += String.fromCharCode(97 + rnd() % 26); return s }
  const tlds = ['com', 'net', 'org', 'ru', 'io', 'info', 'de', 'co.uk']
  const rules = parseList(Array.from({ length: 100_000 }, () => `${word(3 + rnd() % 8)}.${word(4 + rnd() % 8)}.${tlds[rnd() % tlds.length]}`).join('\n'), 'plain').rules
  const started = performance.now()
  let refused = 0
  for (const r of rules) if (guard.refuse(r) !== undefined) refused++
  const ms = performance.now() - started
  t.comment(`guarded ${rules.length} random suffix rules in ${ms.toFixed(0)} ms (${(ms * 1000 / rules.length).toFixed(2)} µs a rule), ${refused} refused`)
  t.equal(rules.length, 100_000)
  // A scan of the corpus per rule would take 100k x 10k name compares (tens of seconds).
  t.ok(ms < 5000, `${ms.toFixed(0)} ms for 100k rules`)
})
