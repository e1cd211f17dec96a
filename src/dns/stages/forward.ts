// The end of the chain: asks the upstream pool, which calls the query's context back with the
// `resolved` outcome itself, or with a total failure, which is answered SERVFAIL: never silence.

import { type Handler, PENDING } from '../contract.js'
import type { UpstreamPool } from '../upstream/pool.js'
import { upstreamQuestion } from '../wire.js'

export function forward (pool: UpstreamPool): Handler {
  return ctx => {
    ctx.asked = true
    pool.resolve(upstreamQuestion(ctx.msg, ctx.q), ctx.q.do, ctx)
    return PENDING
  }
}
