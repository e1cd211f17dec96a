// The coalesce stage: one upstream query per key in flight; identical queries wait for its outcome
// and are settled with it; past dns.maxInflight distinct keys, REFUSED. Rows are steps of one
// sequence against one stage.

import t from 'tap'
import { PENDING, type Outcome } from '../../../src/dns/contract.js'
import { DnsMetrics } from '../../../src/dns/metrics.js'
import { coalesceStage } from '../../../src/dns/stages/coalesce.js'
import { context, fakeNext, type TestContext } from './helpers.js'

type Step =
  | { readonly label: string, readonly ask: string, readonly type?: string, readonly nextCalled: boolean, readonly result: 'pending' | 'refused' | 'sync' }
  | { readonly label: string, readonly settle: string, readonly settled: string[] }

t.test('a sequence of queries and outcomes -> next called or not, who is settled', async t => {
  const metrics = new DnsMetrics()
  const stage = coalesceStage(metrics, 2)
  const sync: Outcome = { kind: 'servfail', reason: 'answered at once' }
  const contexts = new Map<string, TestContext>()
  const steps: Step[] = [
    { label: 'a: first asks', ask: 'a', nextCalled: true, result: 'pending' },
    { label: 'a again: waits on the first', ask: 'a', nextCalled: false, result: 'pending' },
    { label: 'a, AAAA: another key', ask: 'a', type: 'AAAA', nextCalled: true, result: 'pending' },
    { label: 'b: a third key past maxInflight 2: refused', ask: 'b', nextCalled: false, result: 'refused' },
    { label: 'a settles: both a queries get its outcome', settle: 'a', settled: ['a#0', 'a#1'] },
    { label: 'a again: asks anew (the key was let go)', ask: 'a', nextCalled: true, result: 'pending' },
    { label: 'b: still past maxInflight (a and a AAAA in flight)', ask: 'b', nextCalled: false, result: 'refused' },
    { label: 'a AAAA settles alone', settle: 'aAAAA', settled: ['aAAAA#0'] },
    { label: 'b now fits', ask: 'b', nextCalled: true, result: 'pending' },
    { label: 'b settles alone', settle: 'b', settled: ['b#2'] },
    { label: 'c: next answers at once, so nothing is kept in flight', ask: 'c', nextCalled: true, result: 'sync' },
    { label: 'c again: asks again', ask: 'c', nextCalled: true, result: 'sync' }
  ]
  const count = new Map<string, number>()
  const all: Array<{ id: string, ctx: TestContext }> = []
  for (const s of steps) {
    if ('settle' in s) {
      const first = contexts.get(s.settle)!
      const o: Outcome = { kind: 'refused', reason: `outcome of ${s.settle}` }
      first.finish(first, o)
      t.same(all.filter(x => x.ctx.finished.includes(o)).map(x => x.id), s.settled, s.label)
      continue
    }
    const key = `${s.ask}${s.type ?? ''}`
    const n = count.get(key) ?? 0
    count.set(key, n + 1)
    const ctx = context({ name: `${s.ask}.example`, type: s.type })
    all.push({ id: `${key}#${n}`, ctx })
    const next = fakeNext(s.ask === 'c' ? sync : PENDING)
    const o = stage(next)(ctx)
    t.equal(next.calls, s.nextCalled ? 1 : 0, `${s.label}: next ${s.nextCalled ? '' : 'not '}called`)
    if (s.result === 'pending') t.equal(o, PENDING, `${s.label}: PENDING`)
    else if (s.result === 'sync') t.equal(o, sync, `${s.label}: next's outcome`)
    else t.match(o, { kind: 'refused', reason: /in flight/ }, `${s.label}: REFUSED`)
    if (s.nextCalled && s.result === 'pending') contexts.set(key, ctx)
  }
  t.equal(metrics.coalesced, 1, 'one query joined another')
  t.equal(metrics.overloaded, 2, 'two refused for maxInflight')
})
