// The learner's memory of names (src/learn/learner.ts): once it holds max(10 000, 10 x queueMax)
// names, each new blocked name makes it forget the one resolved longest ago. That must not scan
// past names waiting in the queue, nor forget them: blocked() runs on the DNS path. Here the oldest
// names in the map are queued again (in reverse, so they stay queued while the queue drains), and
// new names past the bound must leave them known. The upstream fails every question at once
// (fault injection: a resolution only has to end, so names reach the resolved state quickly); the
// clock is the test's, so tokens come only when the test advances it.

import t from 'tap'
import { Learner } from '../../src/learn/learner.js'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard } from '../../src/learn/guard.js'
import { LearnedStore } from '../../src/learn/store.js'
import { learningConfig, policyFile, quiet } from './fixtures.js'

const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

t.test('forgetting the oldest resolved name leaves the queued ones known', async t => {
  const queueMax = 10_000
  const learning = learningConfig({ resolvesPerSecond: 1000, queueMax })
  const clock = { now: Date.UTC(2030, 0, 1) }
  const now = (): number => clock.now
  const db = policyFile().open()
  const log = quiet()
  const store = new LearnedStore({ db, log, now, guardWindowMs: 3_600_000 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [], store, log, now, interfaces: () => ({}) })
  const book = new LearnedBook({ learning, guard, store, log, now })
  const learner = new Learner({ learning, book, log, now, query: async () => { throw new Error('injected: upstream unreachable') } })
  t.teardown(async () => { await learner.close(); book.close(); db.close() })

  const settle = async (): Promise<void> => {
    for (let i = 0; i < 10_000 && (learner.stats.inflight > 0 || learner.stats.queueDepth > 0); i++) {
      clock.now += 1000
      await new Promise(resolve => setTimeout(resolve, 0))
      await tick()
    }
  }
  // 50 000 names (the map's bound), all resolved (failed: retried after a minute).
  const total = queueMax * 10
  for (let i = 0; i < total; i += queueMax) {
    for (let j = i; j < i + queueMax; j++) learner.blocked(`n${j}.example`, 'snapchat')
    await settle()
  }
  t.equal(learner.stats.started, total, 'every name resolved once')
  clock.now += 120_000
  // The oldest names come back, newest of them first, so the queue drains from the back of the run.
  for (let j = queueMax - 2; j >= 0; j--) learner.blocked(`n${j}.example`, 'snapchat')
  t.equal(learner.stats.queueDepth, queueMax - 1)
  // Let the bucket's burst go, then hold the clock: the oldest names stay queued.
  await new Promise(resolve => setTimeout(resolve, 0))
  for (let i = 0; i < 200 && learner.stats.inflight > 0; i++) await tick()
  t.ok(learner.stats.queueDepth >= queueMax - 1 - 1000, `still queued: ${learner.stats.queueDepth}`)

  // New names past the bound: each makes the learner forget the name resolved longest ago, never
  // one still waiting in the queue. (How long that takes is the benchmarks' business, not a
  // test's: bench/ab.sh W1 floods blocked() with distinct names.)
  const n = 1000
  for (let i = 0; i < n; i++) {
    clock.now += 1 // one token
    learner.blocked(`new${i}.example`, 'snapchat')
    await new Promise(resolve => setTimeout(resolve, 0))
    for (let k = 0; k < 20 && learner.stats.inflight > 0; k++) await tick()
  }
  t.ok(learner.stats.queueDepth < queueMax, 'the queue has room (a forgotten name would be queued again)')
  const queuedBefore = learner.stats.queued
  learner.blocked('n0.example', 'snapchat')
  t.equal(learner.stats.queued, queuedBefore, 'n0 (queued since, the oldest in the map) was not forgotten: blocking it again queues nothing')
  t.equal(learner.stats.queued, total + (queueMax - 1) + n - learner.stats.dropped)
})
