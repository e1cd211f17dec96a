// The collateral guard (src/learn/guard.ts): the memory of allowed answers (window, bound, names
// per address, kept in a real policy.sqlite across a restart) and check() by text.

import t from 'tap'
import { CollateralGuard, MAX_SHARED_NAMES } from '../../src/learn/guard.js'
import { LearnedStore } from '../../src/learn/store.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import { learningConfig, policyFile, quiet } from './fixtures.js'

const T0 = Date.UTC(2030, 5, 1)
const answer = (a4: string[], a6: string[] = []): { v4: number[], v4Count: number, v6: string[], v6Count: number } =>
  ({ v4: a4.map(ipv4Number), v4Count: a4.length, v6: a6, v6Count: a6.length })

function guardOn (file: ReturnType<typeof policyFile>, clock: { now: number }, o: { max?: number, windowSeconds?: number } = {}): { guard: CollateralGuard, store: LearnedStore, close: () => void } {
  const learning = learningConfig({ maxAllowedAddresses: o.max ?? 200_000, guardWindowSeconds: o.windowSeconds ?? 3600 })
  const db = file.open()
  const now = (): number => clock.now
  const store = new LearnedStore({ db, log: quiet(), now, guardWindowMs: learning.guardWindowSeconds * 1000 })
  const guard = new CollateralGuard({ learning, lanCidrs: [], upstreamHosts: [], store, log: quiet(), now, interfaces: () => ({}) })
  guard.load()
  return { guard, store, close: () => { store.close(); db.close() } }
}

t.test('an allowed observation holds an address for the window, then no longer', async t => {
  const clock = { now: T0 }
  const g = guardOn(policyFile(), clock, { windowSeconds: 3600 })
  t.teardown(g.close)
  g.guard.observeAllowed('www.bing.com', answer(['13.107.21.200'], ['2620:1ec:c11:0:0:0:0:200']), clock.now)
  t.same(g.guard.check('13.107.21.200'), { reason: 'allowed-name', sharedWith: ['www.bing.com'] })
  t.same(g.guard.check('2620:1ec:c11::200'), { reason: 'allowed-name', sharedWith: ['www.bing.com'] }, 'canonical text finds the wire form')
  t.equal(g.guard.check('13.107.21.201'), undefined)
  clock.now += 3_600_001
  t.equal(g.guard.check('13.107.21.200'), undefined, 'outside the window')
})

t.test('names per address: the most recent first, at most MAX_SHARED_NAMES', async t => {
  const clock = { now: T0 }
  const g = guardOn(policyFile(), clock)
  t.teardown(g.close)
  for (let i = 0; i < 12; i++) g.guard.observeAllowed(`n${i}.example.org`, answer(['93.184.216.34']), clock.now++)
  const hold = g.guard.check('93.184.216.34')
  t.equal(hold?.reason, 'allowed-name')
  const names = hold !== undefined && hold.reason === 'allowed-name' ? hold.sharedWith : []
  t.equal(names.length, MAX_SHARED_NAMES)
  t.same(names.slice(0, 2), ['n11.example.org', 'n10.example.org'])
})

t.test('learning.maxAllowedAddresses bounds the memory: the least recently seen go first', async t => {
  const clock = { now: T0 }
  const g = guardOn(policyFile(), clock, { max: 1000 })
  t.teardown(g.close)
  const addr = (i: number): string => `52.${Math.floor(i / 65536) % 256}.${Math.floor(i / 256) % 256}.${i % 256}`
  for (let i = 0; i < 1500; i++) { clock.now++; g.guard.observeAllowed('s3.amazonaws.com', answer([addr(i)]), clock.now) }
  t.same(g.guard.stats, { allowedAddresses: 1000, evicted: 500, neverBlockRanges: g.guard.ranges.length })
  t.equal(g.guard.check(addr(0)), undefined, 'the first seen is gone')
  t.equal(g.guard.check(addr(499)), undefined)
  t.equal(g.guard.check(addr(500))?.reason, 'allowed-name')
  t.equal(g.guard.check(addr(1499))?.reason, 'allowed-name')
})

t.test('a restart keeps the observations within the window (evicted ones are gone from the file too)', async t => {
  const file = policyFile()
  const clock = { now: T0 }
  const a = guardOn(file, clock, { max: 1000 })
  a.guard.observeAllowed('teams.microsoft.com', answer(['52.112.0.1']), clock.now)
  a.guard.observeAllowed('outlook.office.com', answer(['52.112.0.1', '52.96.0.2']), clock.now)
  clock.now += 10
  for (let i = 0; i < 1000; i++) a.guard.observeAllowed('filler.example', answer([`60.0.${Math.floor(i / 256)}.${i % 256}`]), clock.now + i)
  // 52.112.0.1 and 52.96.0.2 were seen first: evicted.
  a.guard.observeAllowed('again.example', answer(['52.112.0.9']), clock.now + 2000)
  a.close()
  const b = guardOn(file, clock, { max: 1000 })
  t.teardown(b.close)
  t.equal(b.guard.check('52.96.0.2'), undefined, 'evicted before the restart')
  t.same(b.guard.check('52.112.0.9'), { reason: 'allowed-name', sharedWith: ['again.example'] })
  t.equal(b.guard.stats.allowedAddresses, 1000)
})

t.test('observations older than the window are not loaded', async t => {
  const file = policyFile()
  const clock = { now: T0 }
  const a = guardOn(file, clock, { windowSeconds: 600 })
  a.guard.observeAllowed('teams.microsoft.com', answer(['52.112.0.1']), clock.now)
  a.guard.observeAllowed('outlook.office.com', answer(['52.112.0.1']), clock.now + 1)
  a.guard.observeAllowed('old.example', answer(['52.113.0.1']), clock.now - 500_000)
  a.close()
  clock.now += 200_000
  const b = guardOn(file, clock, { windowSeconds: 600 })
  t.teardown(b.close)
  t.same(b.guard.check('52.112.0.1'), { reason: 'allowed-name', sharedWith: ['outlook.office.com', 'teams.microsoft.com'] })
  t.equal(b.guard.check('52.113.0.1'), undefined, 'seen 700 s before: outside the 600 s window')
})
