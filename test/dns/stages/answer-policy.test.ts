// The answer-policy stage: every answer, fresh (resolved) or cached, is decided under the client's
// policy on its way back: query name, CNAME targets, addresses; an allow rule on the query name
// covers the whole answer; a monitor match on the name goes through unreported (the query stage
// reported it). Cached decisions are remembered per snapshot and group.

import t from 'tap'
import { AnswerCache, FORGOTTEN } from '../../../src/dns/cache.js'
import { PENDING, type Outcome } from '../../../src/dns/contract.js'
import type { Engine, Verdict } from '../../../src/policy/engine.js'
import { answerPolicyStage } from '../../../src/dns/stages/answer-policy.js'
import { tempDir } from '../../helpers/tmp.js'
import { context, engine, fakeNext, upstreamAnswer } from './helpers.js'

type Records = Parameters<typeof upstreamAnswer>[2]

const plain = engine()
const withRules = engine({ rules: { block: [], allow: ['ok.telegram.org'] } })
const monitored = engine({ categories: { telegram: { action: 'monitor' } } })

interface Row {
  readonly label: string
  readonly name: string
  readonly records: Records
  readonly engine: Engine
  /** What the query stage decided about the name (monitor lets it through); null: it did not run. */
  readonly byName?: 'monitor'
  readonly blocked: boolean
  readonly reported: number
  readonly matched?: string
}

const fresh: Row[] = [
  { label: 'an address nobody lists', name: 'innocent.example', records: [{ type: 'A', data: '192.0.2.1' }], engine: plain, blocked: false, reported: 0 },
  { label: 'an address in Telegram\'s ranges', name: 'innocent.example', records: [{ type: 'A', data: '149.154.167.51' }], engine: plain, blocked: true, reported: 1, matched: 'address' },
  { label: 'a CNAME to a listed name', name: 'innocent.example', records: [{ type: 'CNAME', data: 'web.telegram.org' }, { type: 'A', data: '192.0.2.1', name: 'web.telegram.org' }], engine: plain, blocked: true, reported: 1, matched: 'cname' },
  { label: 'an allowed query name covers its answer', name: 'ok.telegram.org', records: [{ type: 'A', data: '149.154.167.51' }], engine: withRules, blocked: false, reported: 0 },
  { label: 'a listed name the query stage let through (monitor): not reported again', name: 'telegram.org', records: [{ type: 'A', data: '192.0.2.1' }], engine: monitored, byName: 'monitor', blocked: false, reported: 0 },
  { label: 'a monitored address: reported, answered', name: 'innocent.example', records: [{ type: 'A', data: '149.154.167.51' }], engine: monitored, blocked: false, reported: 1, matched: 'address' }
]

t.test('fresh answers: rows of (answer, policy) -> blocked or passed, reported or not, at once and later', async t => {
  const cache = new AnswerCache({ maxEntries: 10, now: () => 0 })
  for (const row of fresh) {
    for (const later of [false, true]) {
      const label = `${row.label}${later ? ', later' : ''}`
      const reports: Verdict[] = []
      const ctx = context({ name: row.name, engine: row.engine })
      if (row.byName === 'monitor') ctx.nameVerdict = row.engine.decideName(row.name, ctx.group, 1)!
      const resolved: Outcome = { kind: 'resolved', answer: upstreamAnswer(ctx.q, ctx.msg, row.records), upstream: 'u' }
      const next = fakeNext(later ? PENDING : resolved)
      let o = answerPolicyStage((_c, v) => { reports.push(v) }, cache)(next)(ctx)
      t.equal(next.calls, 1, `${label}: next called`)
      if (later) {
        t.equal(o, PENDING, `${label}: PENDING passed on`)
        t.equal(reports.length, 0, `${label}: nothing decided before the answer arrives`)
        ctx.finish(ctx, resolved)
        o = ctx.finished[0]
      }
      if (row.blocked) t.match(o, { kind: 'blocked', verdict: { matched: row.matched } }, `${label}: blocked by its ${row.matched}`)
      else t.equal(o, resolved, `${label}: the answer goes on`)
      t.equal(reports.length, row.reported, `${label}: reported ${row.reported} time(s)`)
      if (row.matched !== undefined && row.reported > 0) t.equal(reports[0].matched, row.matched, `${label}: report names the ${row.matched}`)
    }
  }
})

t.test('outcomes that are not answers pass untouched; a policy without answer rules queues no step', async t => {
  const cache = new AnswerCache({ maxEntries: 10, now: () => 0 })
  const nothing = engine({ dir: tempDir('egressd-no-lists-') })
  t.equal(nothing.inspectsAnswers, false)
  const rows: Array<{ label: string, o: Outcome, engine: Engine }> = [
    { label: 'servfail', o: { kind: 'servfail', reason: 'x' }, engine: plain },
    { label: 'refused', o: { kind: 'refused', reason: 'x' }, engine: plain },
    { label: 'blocked by the query stage', o: { kind: 'blocked', verdict: plain.decideName('telegram.org', plain.groups[0], 1)! }, engine: plain }
  ]
  for (const row of rows) {
    const stage = answerPolicyStage(() => { t.fail('nothing to report') }, cache)
    t.equal(stage(fakeNext(row.o))(context({ name: 'innocent.example', engine: row.engine })), row.o, `${row.label}: unchanged`)
  }
  const ctx = context({ name: 'innocent.example', engine: nothing })
  const resolved: Outcome = { kind: 'resolved', answer: upstreamAnswer(ctx.q, ctx.msg, [{ type: 'A', data: '149.154.167.51' }]), upstream: 'u' }
  t.equal(answerPolicyStage(() => { t.fail('nothing to report') }, cache)(fakeNext(resolved))(ctx), resolved, 'no lists: the answer goes on')
  t.equal(answerPolicyStage(() => {}, cache)(fakeNext(PENDING))(ctx), PENDING)
  t.equal(ctx.stepCount, 0, 'no lists: no step queued for a later answer')
})

t.test('cached answers: decided under the snapshot and group of the query, the decision remembered in the slot', async t => {
  const cache = new AnswerCache({ maxEntries: 10, now: () => 1000 })
  const first = context({ name: 'innocent.example', engine: plain })
  cache.put(first.q.key, upstreamAnswer(first.q, first.msg, [{ type: 'A', data: '149.154.167.51' }]), 1000, first.q.keyHash)
  const slot = cache.find(first.q.key, 1000, first.q.keyHash)
  const cached: Outcome = { kind: 'cached', slot, elapsed: 0 }
  const allowing = engine({ rules: { block: [], allow: ['innocent.example'] } })
  const rows: Array<{ label: string, engine: Engine, blocked: boolean, remembered: boolean }> = [
    { label: 'first hit: decided (an address in Telegram\'s ranges)', engine: plain, blocked: true, remembered: false },
    { label: 'second hit, same snapshot: the remembered decision', engine: plain, blocked: true, remembered: true },
    { label: 'a new snapshot that allows the name: decided again', engine: allowing, blocked: false, remembered: false },
    { label: 'the new snapshot again: remembered', engine: allowing, blocked: false, remembered: true }
  ]
  for (const row of rows) {
    const reports: Verdict[] = []
    const ctx = context({ name: 'innocent.example', engine: row.engine })
    t.equal(cache.recall(slot, ctx.group.index, row.engine.token) !== FORGOTTEN, row.remembered, `${row.label}: remembered before`)
    const next = fakeNext(cached)
    const o = answerPolicyStage((_c, v) => { reports.push(v) }, cache)(next)(ctx)
    if (row.blocked) t.match(o, { kind: 'blocked', verdict: { matched: 'address' } }, `${row.label}: blocked`)
    else t.equal(o, cached, `${row.label}: the cached answer goes on`)
    t.equal(reports.length, row.blocked ? 1 : 0, `${row.label}: a cached block is reported on every hit`)
    t.not(cache.recall(slot, ctx.group.index, row.engine.token), FORGOTTEN, `${row.label}: remembered after`)
  }
})
