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
  t.match(explain(engine.decideName('x.a.test', def)), { category: 'alpha', list: fileOf('alpha'), line: 2, rule: 'a.test', matched: 'qname', value: 'x.a.test', action: 'nxdomain', policyRef: 'ref-alpha', group: 'default' })
  t.match(explain(engine.decideName('exact.a.test', def)), { category: 'alpha', line: 4, rule: '=exact.a.test' })
  t.match(explain(engine.decideName('x.wild.test', def)), { category: 'alpha', line: 5, rule: '*.wild.test' })
  t.match(explain(engine.decideName('b.test', def)), { category: 'beta', list: fileOf('beta'), line: 1, rule: 'b.test' })
  t.match(explain(engine.decideName('inline.test', def)), { category: 'custom', rule: 'inline.test' })
  t.match(explain(engine.decideAddress('198.51.100.7', def)), { category: 'alpha', list: join(dir, 'alpha', 'cidrs.txt'), line: 2, rule: '198.51.100.0/24', matched: 'address' })
  t.equal(engine.decideName('wild.test', def), undefined, '*.x does not match x')
})

t.test('a name in two categories: a rule that applies to the group decides', async t => {
  const v = engine.decideName('shared.test', engine.groupOf('192.0.2.1'))
  const r = v === undefined ? undefined : engine.rule(v.ruleId)
  t.match(explain(v), { rule: 'shared.test', group: 'default' })
  const fields = `${v?.category} ${r?.list} ${r?.line} ${v?.action}`
  t.ok(fields === `beta ${fileOf('beta')} 2 nxdomain` || fields === `gamma ${fileOf('gamma')} 3 refused`, `every field from the same rule: ${fields}`)
  // beta is off for "lab": the next rule for the same name, gamma's, decides with gamma's action.
  t.match(explain(engine.decideName('shared.test', engine.groupOf('10.1.2.3'))), { category: 'gamma', list: fileOf('gamma'), line: 3, action: 'refused', group: 'lab' })
  t.equal(engine.decideName('b.test', engine.groupOf('10.1.2.3')), undefined, 'beta only')
})
