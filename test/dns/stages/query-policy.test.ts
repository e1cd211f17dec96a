// The query-policy stage: a listed query name is blocked before the upstream is asked (next not
// called) and reported; a monitor match is reported and goes on; anything else goes on silently.
// The decision is kept on the context for the answer-policy stage.

import t from 'tap'
import type { Verdict } from '../../../src/policy/engine.js'
import { queryPolicyStage } from '../../../src/dns/stages/query-policy.js'
import { context, engine, fakeNext } from './helpers.js'

const NEXT = { kind: 'servfail', reason: 'from next' } as const

t.test('rows of (name, policy, client) -> blocked here or next called; reported or not', async t => {
  const plain = engine()
  const monitored = engine({ categories: { telegram: { action: 'monitor' } } })
  const refusing = engine({ action: 'refused' })
  const custom = engine({ rules: { block: ['ads.example'], allow: ['ok.telegram.org'] } })
  const exempt = engine({ groups: [{ name: 'boss', clients: ['192.168.0.99'], exempt: true }] })
  const rows: Array<{ label: string, name: string, engine: typeof plain, client?: string, blocked: boolean, reported: boolean, action?: string, category?: string }> = [
    { label: 'unlisted name', name: 'innocent.example', engine: plain, blocked: false, reported: false },
    { label: 'listed name', name: 'telegram.org', engine: plain, blocked: true, reported: true, action: 'nxdomain', category: 'telegram' },
    { label: 'name under a listed one', name: 'web.telegram.org', engine: plain, blocked: true, reported: true, action: 'nxdomain', category: 'telegram' },
    { label: 'listed, category action refused', name: 'telegram.org', engine: refusing, blocked: true, reported: true, action: 'refused', category: 'telegram' },
    { label: 'listed, category in monitor mode', name: 'telegram.org', engine: monitored, blocked: false, reported: true, action: 'monitor', category: 'telegram' },
    { label: 'inline block rule', name: 'ads.example', engine: custom, blocked: true, reported: true, action: 'nxdomain' },
    { label: 'inline allow rule under a listed name', name: 'ok.telegram.org', engine: custom, blocked: false, reported: false },
    { label: 'listed, client in an exempt group', name: 'telegram.org', engine: exempt, client: '192.168.0.99', blocked: false, reported: false },
    { label: 'listed, client outside the exempt group', name: 'telegram.org', engine: exempt, client: '192.168.0.98', blocked: true, reported: true, action: 'nxdomain' }
  ]
  for (const row of rows) {
    const reports: Verdict[] = []
    const next = fakeNext(NEXT)
    const ctx = context({ name: row.name, engine: row.engine, client: row.client })
    const o = queryPolicyStage((_c, v) => { reports.push(v) })(next)(ctx)
    t.equal(next.calls, row.blocked ? 0 : 1, `${row.label}: next ${row.blocked ? 'not ' : ''}called`)
    if (row.blocked) {
      t.match(o, { kind: 'blocked', verdict: { action: row.action } }, `${row.label}: blocked (${row.action})`)
    } else {
      t.equal(o, NEXT, `${row.label}: next's outcome`)
    }
    t.equal(reports.length, row.reported ? 1 : 0, `${row.label}: reported ${row.reported ? 'once' : 'never'}`)
    if (row.category !== undefined) t.equal(reports[0]?.category, row.category, `${row.label}: category`)
    t.equal(ctx.nameVerdict === null, false, `${row.label}: the decision is kept for the answer stage`)
    t.equal(ctx.nameVerdict?.action, row.reported ? row.action ?? 'nxdomain' : undefined, `${row.label}: kept decision`)
  }
})
