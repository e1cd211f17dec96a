// The answer-policy stage's hand-over to the collateral guard (learning): every fresh answer that
// reaches the client unblocked is handed over with its query name and parsed targets, now or when
// a PENDING outcome arrives; cache hits, blocks, failures and a monitored name's answer are not.

import t from 'tap'
import { AnswerCache } from '../../../src/dns/cache.js'
import { PENDING, type Outcome } from '../../../src/dns/contract.js'
import { answerPolicyStage, type AllowedAnswer } from '../../../src/dns/stages/answer-policy.js'
import { ipv4Text } from '../../../src/policy/names.js'
import { context, engine, fakeNext, upstreamAnswer } from './helpers.js'

/** The answer-policy stage with a hand-over and nothing reported (no row here is a block of its own). */
const learnStage = (allowed: AllowedAnswer, cache = new AnswerCache({ maxEntries: 10, now: () => 1000 })) => answerPolicyStage(() => {}, cache, allowed)

t.test('rows of outcome from next -> handed to the guard or not', async t => {
  const ctx0 = context({ name: 'innocent.example' })
  const ok = upstreamAnswer(ctx0.q, ctx0.msg, [{ type: 'A', data: '192.0.2.1' }])
  const cache = new AnswerCache({ maxEntries: 10, now: () => 1000 })
  cache.put(ctx0.q.key, ok, 1000, ctx0.q.keyHash)
  const slot = cache.find(ctx0.q.key, 1000, ctx0.q.keyHash)
  const verdict = engine().decideName('telegram.org', engine().groups[0], 1)!
  const rows: Array<{ label: string, o: Outcome, monitored?: boolean, handed: boolean }> = [
    { label: 'a fresh answer', o: { kind: 'resolved', answer: ok, upstream: 'u' }, handed: true },
    { label: 'a fresh answer of a monitored name', o: { kind: 'resolved', answer: ok, upstream: 'u' }, monitored: true, handed: false },
    { label: 'a cache hit', o: { kind: 'cached', slot, elapsed: 0 }, handed: false },
    { label: 'a block', o: { kind: 'blocked', verdict }, handed: false },
    { label: 'servfail', o: { kind: 'servfail', reason: 'x' }, handed: false },
    { label: 'refused', o: { kind: 'refused', reason: 'x' }, handed: false }
  ]
  for (const row of rows) {
    for (const pending of [false, true]) {
      const seen: string[] = []
      const stage = learnStage((c, found) => {
        seen.push(`${c.q.qname} ${found.v4.slice(0, found.v4Count).map(ipv4Text).join(',')}`)
      }, cache)
      const next = fakeNext(() => pending ? PENDING : row.o)
      const ctx = context({ name: 'innocent.example' })
      if (row.monitored === true) ctx.nameVerdict = { ...verdict, action: 'monitor' }
      const r = stage(next)(ctx)
      const label = `${row.label}${pending ? ', later' : ''}`
      if (pending) {
        t.equal(r, PENDING, `${label}: PENDING passed on`)
        t.same(seen, [], `${label}: nothing before the outcome arrives`)
        ctx.finish(ctx, row.o)
        t.same(ctx.finished, [row.o], `${label}: the outcome goes on unchanged`)
      } else {
        t.equal(r, row.o, `${label}: the outcome goes on unchanged`)
      }
      t.same(seen, row.handed ? ['innocent.example 192.0.2.1'] : [], `${label}: ${row.handed ? 'handed over once' : 'not handed over'}`)
    }
  }
})

t.test('clients of other groups: handed over only when the default group would allow the answer too', async t => {
  const e = engine({
    groups: [
      { name: 'soc', clients: ['10.20.0.0/24'], exempt: true },
      { name: 'sales', clients: ['10.30.0.0/24'], categories: { telegram: { enabled: false } } }
    ]
  })
  const rows = [
    { label: 'an exempt client resolving a banned name', client: '10.20.0.5', name: 'web.telegram.org', data: '192.0.2.1', handed: false },
    { label: 'a group with the category off resolving a banned name', client: '10.30.0.5', name: 'web.telegram.org', data: '192.0.2.1', handed: false },
    { label: 'that group resolving a name whose answer is in Telegram\'s ranges', client: '10.30.0.5', name: 'innocent.example', data: '149.154.167.51', handed: false },
    { label: 'that group resolving an allowed name', client: '10.30.0.5', name: 'innocent.example', data: '192.0.2.1', handed: true },
    { label: 'a default-group client resolving an allowed name', client: '192.168.0.10', name: 'innocent.example', data: '192.0.2.1', handed: true }
  ]
  for (const row of rows) {
    const ctx = context({ name: row.name, client: row.client, engine: e })
    const answer = upstreamAnswer(ctx.q, ctx.msg, [{ type: 'A', data: row.data }])
    const seen: string[] = []
    const stage = learnStage(c => { seen.push(c.q.qname) })
    stage(fakeNext(() => ({ kind: 'resolved', answer, upstream: 'u' })))(ctx)
    t.same(seen, row.handed ? [row.name] : [], `${row.label}: ${row.handed ? 'handed over' : 'not handed over'}`)
  }
})
