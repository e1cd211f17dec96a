// The terminal handler: hands the question to the upstream pool with the context as its callback
// and returns PENDING; the pool's answer arrives through the context.

import t from 'tap'
import { PENDING } from '../../../src/dns/contract.js'
import { forward } from '../../../src/dns/stages/forward.js'
import type { ResolveCallback, UpstreamPool } from '../../../src/dns/upstream/pool.js'
import { upstreamQuestion } from '../../../src/dns/wire.js'
import { context, upstreamAnswer } from './helpers.js'

t.test('rows of query -> the question and DO bit the pool is asked; the answer arrives through the context', async t => {
  const rows = [
    { label: 'no EDNS', name: 'Innocent.Example', edns: undefined, do: false },
    { label: 'EDNS 0', name: 'innocent.example', edns: 0, do: false },
    { label: 'EDNS 0 with DO', name: 'innocent.example', edns: 0, do: true }
  ]
  for (const row of rows) {
    const asked: Array<{ question: Buffer, do: boolean, cb: ResolveCallback }> = []
    const pool = { resolve: (question: Buffer, dnssecOk: boolean, cb: ResolveCallback) => { asked.push({ question, do: dnssecOk, cb }) } } as unknown as UpstreamPool
    const ctx = context({ name: row.name, edns: row.edns, do: row.do })
    t.equal(ctx.asked, false)
    t.equal(forward(pool)(ctx), PENDING, `${row.label}: PENDING`)
    t.equal(ctx.asked, true, `${row.label}: this query asked the upstream`)
    t.equal(asked.length, 1, `${row.label}: asked once`)
    t.same(asked[0].question, upstreamQuestion(ctx.msg, ctx.q), `${row.label}: the question`)
    t.equal(asked[0].do, row.do, `${row.label}: DO bit`)
    t.equal(asked[0].cb, ctx, `${row.label}: the context hears the outcome`)
    const r = { kind: 'resolved', answer: upstreamAnswer(ctx.q, ctx.msg, [{ type: 'A', data: '192.0.2.1' }]), upstream: 'u' } as const
    asked[0].cb.resolved(r)
    t.same(ctx.finished, [r], `${row.label}: resolved settles the query`)
    asked[0].cb.failed(new Error('all upstreams failed'))
    t.match(ctx.finished[1], { kind: 'servfail', reason: 'all upstreams failed' }, `${row.label}: failed settles it SERVFAIL`)
  }
})
