// The policy engine on its own: every field of a verdict comes from the rule that matched (its
// category, list file, line and text), for rules spread over several lists and categories, and a
// category disabled for a group passes the name on to the next rule that applies.

import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildEngine } from '../../src/policy/build.js'
import type { Verdict } from '../../src/policy/engine.js'
import { testConfig } from '../helpers/daemon.js'
import { tempDir } from '../helpers/tmp.js'

const dir = tempDir('egressd-engine-')
function category (name: string, domains: string, cidrs?: string): void {
  mkdirSync(join(dir, name))
  writeFileSync(join(dir, name, 'meta.yaml'), `title: ${name}\ndescription: test\npolicyRef: "ref-${name}"\nenabled: true\nlastReviewed: 2026-12-05\nsources: []\nmustNotBlock: []\n`)
  writeFileSync(join(dir, name, 'domains.txt'), domains)
  if (cidrs !== undefined) writeFileSync(join(dir, name, 'cidrs.txt'), cidrs)
}
category('alpha', '# alpha\na.test\n\n=exact.a.test\n*.wild.test\n', '# ranges\n198.51.100.0/24\n')
// beta's cidrs.txt holds no rule: a list without ids, between beta's domains and gamma's.
category('beta', 'b.test\nshared.test\n', '# none yet\n')
category('gamma', '# gamma lists the same name as beta, later\n\nshared.test\n')

const cfg = testConfig({
  blocklists: {
    dir,
    categories: { gamma: { action: 'refused' } },
    rules: { block: ['inline.test'] },
    groups: [{ name: 'lab', clients: ['10.0.0.0/8'], categories: { beta: { enabled: false } } }]
  }
})
const { engine } = buildEngine(cfg.blocklists, 1)
const fileOf = (c: string): string => join(dir, c, 'domains.txt')
/** A verdict with its rule's list, line and text (looked up through the engine, as the daemon's log does). */
const explain = (v: Verdict | undefined): object | undefined => v === undefined ? undefined : { ...v, ...engine.rule(v.ruleId) }

t.test('a verdict names the rule that matched: category, list, line, rule text, action', async t => {
  const def = engine.groupOf('192.0.2.1')
  t.match(explain(engine.decideName('x.a.test', def, 1)), { category: 'alpha', list: fileOf('alpha'), line: 2, rule: 'a.test', matched: 'qname', value: 'x.a.test', action: 'nxdomain', policyRef: 'ref-alpha', group: 'default' })
  t.match(explain(engine.decideName('exact.a.test', def, 1)), { category: 'alpha', line: 4, rule: '=exact.a.test' })
  t.match(explain(engine.decideName('x.wild.test', def, 1)), { category: 'alpha', line: 5, rule: '*.wild.test' })
  t.match(explain(engine.decideName('b.test', def, 1)), { category: 'beta', list: fileOf('beta'), line: 1, rule: 'b.test' })
  t.match(explain(engine.decideName('inline.test', def, 1)), { category: 'custom', rule: 'inline.test' })
  t.match(explain(engine.decideAddress('198.51.100.7', def)), { category: 'alpha', list: join(dir, 'alpha', 'cidrs.txt'), line: 2, rule: '198.51.100.0/24', matched: 'address' })
  t.equal(engine.decideName('wild.test', def, 1), undefined, '*.x does not match x')
})

t.test('a name in two categories: a rule that applies to the group decides', async t => {
  const v = engine.decideName('shared.test', engine.groupOf('192.0.2.1'), 1)
  const r = v === undefined ? undefined : engine.rule(v.ruleId)
  t.match(explain(v), { rule: 'shared.test', group: 'default' })
  const fields = `${v?.category} ${r?.list} ${r?.line} ${v?.action}`
  t.ok(fields === `beta ${fileOf('beta')} 2 nxdomain` || fields === `gamma ${fileOf('gamma')} 3 refused`, `every field from the same rule: ${fields}`)
  // beta is off for "lab": the next rule for the same name, gamma's, decides with gamma's action.
  t.match(explain(engine.decideName('shared.test', engine.groupOf('10.1.2.3'), 1)), { category: 'gamma', list: fileOf('gamma'), line: 3, action: 'refused', group: 'lab' })
  t.equal(engine.decideName('b.test', engine.groupOf('10.1.2.3'), 1), undefined, 'beta only')
})

t.test('$dnstype: a rule applies to the query types it names, and shows them in its text', async t => {
  const d = tempDir('egressd-engine-typed-')
  mkdirSync(join(d, 'mail'))
  writeFileSync(join(d, 'mail', 'meta.yaml'), 'title: mail\ndescription: test\npolicyRef: "ref-mail"\nenabled: true\nlastReviewed: 2026-12-07\nsources: []\nmustNotBlock: []\n')
  writeFileSync(join(d, 'mail', 'domains.txt'), 'mail.test $dnstype=~MX|~TXT\nweb.mail.test\n=v6.test $dnstype=AAAA\n')
  const typed = buildEngine(testConfig({ blocklists: { dir: d, rules: { block: ['custom.test $dnstype=HTTPS|SVCB'], allow: ['ok.v6.test $dnstype=AAAA'] } } }).blocklists, 1).engine
  const def = typed.groups[0]
  const T = { A: 1, MX: 15, TXT: 16, AAAA: 28, SVCB: 64, HTTPS: 65 }
  const rows: Array<[name: string, qtype: number, blocked: string | undefined]> = [
    ['mail.test', T.A, 'mail.test $dnstype=~MX|~TXT'],
    ['mail.test', T.AAAA, 'mail.test $dnstype=~MX|~TXT'],
    ['mail.test', T.HTTPS, 'mail.test $dnstype=~MX|~TXT'],
    ['mail.test', T.MX, undefined],
    ['mail.test', T.TXT, undefined],
    ['_dmarc.mail.test', T.TXT, undefined],
    ['x.mail.test', T.A, 'mail.test $dnstype=~MX|~TXT'],
    // An untyped rule under a typed one blocks every type.
    ['web.mail.test', T.MX, 'web.mail.test'],
    ['v6.test', T.AAAA, '=v6.test $dnstype=AAAA'],
    ['v6.test', T.A, undefined],
    ['custom.test', T.HTTPS, 'custom.test $dnstype=SVCB|HTTPS'],
    ['custom.test', T.SVCB, 'custom.test $dnstype=SVCB|HTTPS'],
    ['custom.test', T.A, undefined]
  ]
  for (const [name, qtype, rule] of rows) {
    const v = typed.decideName(name, def, qtype)
    t.equal(v === undefined ? undefined : typed.rule(v.ruleId).rule, rule, `${name} type ${qtype}`)
  }
  t.ok(typed.typed, 'the engine knows it has typed rules')
  t.notOk(engine.typed, 'an engine without them takes the plain path')
  t.notOk(typed.allowsName('ok.v6.test', def, T.A), 'a typed allow rule: not for other types')
  t.ok(typed.allowsName('ok.v6.test', def, T.AAAA), 'a typed allow rule: for its type')
  const answer = { names: ['mail.test'], nameCount: 1, v4: [], v4Count: 0, v6: [], v6Count: 0 }
  t.equal(typed.decideAnswer(answer, def, T.MX), undefined, 'a CNAME to the name is judged by the query type too')
  t.equal(typed.decideAnswer(answer, def, T.A)?.matched, 'cname')
})

t.test('pack exceptions: an @@ entry of a bundled category lifts only that category', async t => {
  const d = tempDir('egressd-engine-except-')
  const cat = (name: string, domains: string): void => {
    mkdirSync(join(d, name))
    writeFileSync(join(d, name, 'meta.yaml'), `title: ${name}\ndescription: test\npolicyRef: "ref-${name}"\nenabled: true\nlastReviewed: 2026-12-07\nsources: []\nmustNotBlock: []\n`)
    writeFileSync(join(d, name, 'domains.txt'), domains)
  }
  cat('chat', 'chat.test\n@@config.chat.test\n@@=exact.chat.test\n@@/^re\\./\n')
  cat('other', 'shared.config.chat.test\n')
  const build = buildEngine(testConfig({ blocklists: { dir: d, rules: { block: ['forced.config.chat.test'] } } }).blocklists, 1)
  const e = build.engine
  const def = e.groups[0]
  const rows: Array<[name: string, category: string | undefined]> = [
    ['chat.test', 'chat'],
    ['www.chat.test', 'chat'],
    ['config.chat.test', undefined],
    ['a.config.chat.test', undefined],
    ['exact.chat.test', undefined],
    ['sub.exact.chat.test', 'chat'],
    // Another category's entry under the exception still blocks: the exception is chat's own.
    ['shared.config.chat.test', 'other'],
    // So does a custom rule.
    ['forced.config.chat.test', 'custom']
  ]
  for (const [name, category] of rows) t.equal(e.decideName(name, def, 1)?.category, category, name)
  t.equal(e.stats().exceptions, 2, 'two name exceptions')
  t.same(build.warnings.map(w => w.replace(d, 'DIR')), ['DIR/chat/domains.txt:4: a pack exception must be a name (@@name or @@=name)'])
  const off = buildEngine(testConfig({ blocklists: { dir: d, categories: { chat: { enabled: false } } } }).blocklists, 1).engine
  t.equal(off.decideName('shared.config.chat.test', off.groups[0], 1)?.category, 'other', 'with chat off, other still blocks')
})
