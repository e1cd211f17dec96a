// The learner's memory of names (src/learn/learner.ts): once it holds max(10 000, 10 x queueMax)
// names, each new blocked name makes it forget the one resolved longest ago. That must not scan
// past names waiting in the queue: blocked() runs on the DNS path. Here the oldest names in the
// map are queued again (in reverse, so they stay queued while the queue drains), and the time
// spent inside blocked() for new names is measured. The upstream fails every question at once
// (fault injection: a resolution only has to end, so names reach the resolved state quickly); the
// clock is the test's, so tokens come only when the test advances it.

import t from 'tap'
import { Learner } from '../../src/learn/learner.js'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard } from '../../src/learn/guard.js'
import { LearnedStore } from '../../src/learn/store.js'
import { learningConfig, policyFile, quiet } from './fixtures.js'

const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

t.test('forgetting the oldest resolved name does not scan the queued ones', async t => {
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

  const took: number[] = []
  const base: number[] = []
  const n = 1000
  for (let i = 0; i < n; i++) {
    clock.now += 1 // one token
    let start = process.hrtime.bigint()
    learner.blocked('n0.example', 'snapchat') // queued: one Map lookup (the baseline)
    base.push(Number(process.hrtime.bigint() - start) / 1000)
    start = process.hrtime.bigint()
    learner.blocked(`new${i}.example`, 'snapchat')
    took.push(Number(process.hrtime.bigint() - start) / 1000)
    await new Promise(resolve => setTimeout(resolve, 0))
    for (let k = 0; k < 20 && learner.stats.inflight > 0; k++) await tick()
  }
  took.sort((a, b) => a - b)
  base.sort((a, b) => a - b)
  const median = took[n >> 1]
  t.comment(`blocked() of a new name with ~${learner.stats.queueDepth} older names queued: median ${median.toFixed(2)} µs, 90th ${took[Math.floor(n * 0.9)].toFixed(2)} µs; of a queued name ${base[n >> 1].toFixed(2)} µs`)
  t.ok(median < 30, `no scan past the queued names (median ${median.toFixed(2)} µs a call; a scan of ~9000 costs about 100 µs)`)
  t.equal(learner.stats.queued, total + (queueMax - 1) + n - learner.stats.dropped)
})
