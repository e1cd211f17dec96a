// The cache stage: a live entry answers here (next not called) with its age; a miss goes on, and
// what comes back resolved and cacheable is stored, at once or when it arrives later.

import t from 'tap'
import { AnswerCache } from '../../../src/dns/cache.js'
import { PENDING, type Outcome } from '../../../src/dns/contract.js'
import { cacheStage } from '../../../src/dns/stages/cache.js'
import { context, fakeNext, upstreamAnswer } from './helpers.js'

interface Row {
  readonly label: string
  /** Stored before, at time 0, with this TTL (none: nothing stored). */
  readonly stored?: number
  /** The time of the query, ms. */
  readonly at: number
  /** What next returns on a miss: a resolved answer with this TTL, a servfail, or PENDING then a resolved one. */
  readonly next: { ttl: number } | 'servfail' | { later: number }
  readonly hit?: { elapsed: number }
  /** Whether a query right after finds the name cached. */
  readonly storedAfter: boolean
}

const rows: Row[] = [
  { label: 'empty cache, resolved (TTL 60)', at: 0, next: { ttl: 60 }, storedAfter: true },
  { label: 'empty cache, resolved with TTL 0', at: 0, next: { ttl: 0 }, storedAfter: false },
  { label: 'empty cache, servfail', at: 0, next: 'servfail', storedAfter: false },
  { label: 'empty cache, resolved later', at: 0, next: { later: 60 }, storedAfter: true },
  { label: 'stored 2.5 s ago with TTL 60: a hit', stored: 60, at: 2500, next: 'servfail', hit: { elapsed: 2 }, storedAfter: true },
  { label: 'stored with TTL 60, asked at 61 s: expired, asked again', stored: 60, at: 61_000, next: { ttl: 30 }, storedAfter: true },
  { label: 'stored with TTL 60, asked at 61 s, servfail: nothing stored', stored: 60, at: 61_000, next: 'servfail', storedAfter: false }
]

t.test('rows of (cache, time, next) -> hit here or next called; stored or not', async t => {
  for (const row of rows) {
    let now = 0
    const cache = new AnswerCache({ maxEntries: 10, now: () => now })
    const ctx = context({ name: 'innocent.example' })
    const answer = (ttl: number): Outcome => ({ kind: 'resolved', answer: upstreamAnswer(ctx.q, ctx.msg, [{ type: 'A', data: '192.0.2.1' }], 'NOERROR', ttl), upstream: 'u' })
    if (row.stored !== undefined) cache.put(ctx.q.key, upstreamAnswer(ctx.q, ctx.msg, [{ type: 'A', data: '192.0.2.1' }], 'NOERROR', row.stored), 0, ctx.q.keyHash)
    now = row.at
    const n = row.next
    const servfail: Outcome = { kind: 'servfail', reason: 'x' }
    const next = fakeNext(n === 'servfail' ? servfail : 'later' in n ? PENDING : answer(n.ttl))
    const o = cacheStage(cache, () => now)(next)(ctx)
    t.equal(next.calls, row.hit !== undefined ? 0 : 1, `${row.label}: next ${row.hit !== undefined ? 'not ' : ''}called`)
    if (row.hit !== undefined) t.match(o, { kind: 'cached', elapsed: row.hit.elapsed }, `${row.label}: answered from the cache, ${row.hit.elapsed} s old`)
    else if (n !== 'servfail' && 'later' in n) {
      t.equal(o, PENDING, `${row.label}: PENDING passed on`)
      t.equal(cache.find(ctx.q.key, now, ctx.q.keyHash), -1, `${row.label}: nothing stored before the answer arrives`)
      ctx.finish(ctx, answer(n.later))
    } else t.equal(o, next(ctx), `${row.label}: next's outcome`)
    t.equal(cache.find(ctx.q.key, now, ctx.q.keyHash) !== -1, row.storedAfter, `${row.label}: ${row.storedAfter ? '' : 'not '}cached after`)
  }
})
