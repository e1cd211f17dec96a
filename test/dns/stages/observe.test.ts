// The observe stage (store.logQueries: all): every answer that is not a block is handed on with
// its rcode and the time it took; a PENDING outcome when it arrives.

import t from 'tap'
import { AnswerCache } from '../../../src/dns/cache.js'
import { PENDING, type Outcome } from '../../../src/dns/contract.js'
import { observeStage } from '../../../src/dns/stages/observe.js'
import { context, engine, fakeNext, upstreamAnswer } from './helpers.js'

t.test('rows of outcome from next -> observed (rcode, ms) or not', async t => {
  const ctx0 = context({ name: 'innocent.example' })
  const nx = upstreamAnswer(ctx0.q, ctx0.msg, [], 'NXDOMAIN')
  const ok = upstreamAnswer(ctx0.q, ctx0.msg, [{ type: 'A', data: '192.0.2.1' }])
  const cache = new AnswerCache({ maxEntries: 10, now: () => 1000 })
  cache.put(ctx0.q.key, nx, 1000, ctx0.q.keyHash)
  const slot = cache.find(ctx0.q.key, 1000, ctx0.q.keyHash)
  t.not(slot, -1, 'stored')
  const verdict = engine().decideName('telegram.org', engine().groups[0], 1)!
  const rows: Array<{ label: string, o: Outcome, rcode?: number }> = [
    { label: 'resolved NOERROR', o: { kind: 'resolved', answer: ok, upstream: 'u' }, rcode: 0 },
    { label: 'resolved NXDOMAIN', o: { kind: 'resolved', answer: nx, upstream: 'u' }, rcode: 3 },
    { label: 'cached NXDOMAIN (rcode from the cache slot)', o: { kind: 'cached', slot, elapsed: 0 }, rcode: 3 },
    { label: 'servfail', o: { kind: 'servfail', reason: 'x' }, rcode: 2 },
    { label: 'refused (overloaded)', o: { kind: 'refused', reason: 'x' }, rcode: 5 },
    { label: 'blocked: reported by the policy stages, not observed', o: { kind: 'blocked', verdict } }
  ]
  for (const row of rows) {
    for (const pending of [false, true]) {
      let clock = 100
      const seen: Array<{ rcode: number, ms: number, o: Outcome }> = []
      const stage = observeStage((_c, o, rcode, ms) => { seen.push({ rcode, ms, o }) }, cache, () => clock)
      const next = fakeNext(() => { clock += 7; return pending ? PENDING : row.o })
      const ctx = context({ name: 'innocent.example' })
      const r = stage(next)(ctx)
      const label = `${row.label}${pending ? ', later' : ''}`
      t.equal(next.calls, 1, `${label}: next called`)
      if (pending) {
        t.equal(r, PENDING, `${label}: PENDING passed on`)
        t.same(seen, [], `${label}: nothing observed before the outcome arrives`)
        clock += 5
        ctx.finish(ctx, row.o)
        t.same(ctx.finished, [row.o], `${label}: the outcome goes on unchanged`)
      } else {
        t.equal(r, row.o, `${label}: the outcome goes on unchanged`)
      }
      if (row.rcode === undefined) { t.same(seen, [], `${label}: not observed`); continue }
      t.same(seen.map(s => [s.rcode, s.ms]), [[row.rcode, pending ? 12 : 7]], `${label}: observed once with rcode ${row.rcode} and its time`)
    }
  }
})
