// From an Outcome to the bytes a client gets, once per answered query: rendered (ID, question
// case, TTLs, OPT; a block as its BlockAnswer with EDE 15 naming the category), counted in
// DnsMetrics (outcomes and results) and timed (AnswerTimes), cut to the client's UDP size. Not a
// stage of the chain: it sits after it, for outcomes known at once (`now`) and for those that
// arrive later (`finish`, which first runs the steps the stages queued on the context).
//
// A fault (an exception) while rendering is answered SERVFAIL and counted as that alone: the
// outcome that could not be rendered is not counted too.

import type { BlocklistsConfig, DnsConfig } from '../config/types.js'
import type { Verdict } from '../policy/engine.js'
import { parseIp } from '../policy/names.js'
import type { AnswerCache } from './cache.js'
import type { Finish, Outcome, QueryContext } from './contract.js'
import type { DnsMetrics } from './metrics.js'
import { blockResponse, edeOption, emptyResponse, type BlockAnswer, Rcode, renderAnswer, renderInPlace, truncateForUdp } from './wire.js'

/** EDE info-code 15 "Blocked" (RFC 8914 4.16). */
const EDE_BLOCKED = 15
/** EDE info-code 22 "No Reachable Authority" (RFC 8914 4.23). */
const EDE_NO_REACHABLE_AUTHORITY = 22

export interface ResponderDeps {
  readonly dns: DnsConfig
  readonly blocking: BlocklistsConfig
  readonly answers: AnswerCache
  readonly metrics: DnsMetrics
  /** The answer-time clock (milliseconds, performance.now()): read once per answer that was not given at once over UDP. */
  readonly clock: () => number
}

export class Responder {
  readonly #d: ResponderDeps
  readonly #m: DnsMetrics
  readonly #ednsSize: number
  readonly #servfailEde = edeOption(EDE_NO_REACHABLE_AUTHORITY, 'egressd: no upstream answered')
  readonly #blockOptions
  /** One EDE option per category (its text names the category and its policy reference), built on first use. */
  readonly #edes = new Map<string, Buffer>()

  constructor (d: ResponderDeps) {
    this.#d = d
    this.#m = d.metrics
    this.#ednsSize = d.dns.ednsUdpSize
    this.#blockOptions = {
      ttl: d.blocking.blockTtl,
      sinkhole4: ipBytes(d.blocking.sinkhole.ipv4),
      sinkhole6: ipBytes(d.blocking.sinkhole.ipv6),
      udpSize: this.#ednsSize
    }
  }

  /**
   * The answer to an outcome known at once (the listener sends it). A UDP answer is not timed here:
   * it goes out with the rest of its turn, and the listener times the turn's answers then.
   */
  now (ctx: QueryContext, o: Outcome): Buffer { return this.#answer(ctx, o, false) }

  /**
   * A PENDING outcome has arrived: the queued steps, innermost first, then the answer. A step that
   * throws makes the outcome SERVFAIL, and the remaining steps still run (so coalescing lets go of
   * the key and settles the queries waiting on it). This does not throw (a fault in rendering is
   * answered SERVFAIL), and neither does the listener's replier: it runs inside the upstream
   * socket's event handler. A query answered already (a fault after it was sent upstream) still
   * runs its steps, so that coalescing lets go of the key, but sends nothing.
   */
  readonly finish: Finish = (ctx, o) => {
    const steps = ctx.steps
    if (steps !== null) {
      for (let i = 0; i < ctx.stepCount; i++) {
        try {
          o = steps[i](ctx, o)
        } catch (err) {
          o = { kind: 'servfail', reason: (err as Error).message }
        }
      }
    }
    if (ctx.answered) return
    ctx.answered = true
    ctx.replier.reply(ctx.to, this.#answer(ctx, o, true))
  }

  /**
   * Renders `o` (SERVFAIL if that throws), then counts and times what is sent, once. `late`: the
   * answer is sent now, not with the rest of a UDP turn.
   */
  #answer (ctx: QueryContext, o: Outcome, late: boolean): Buffer {
    let resp: Buffer
    try {
      resp = this.#render(ctx, o)
    } catch (err) {
      o = { kind: 'servfail', reason: (err as Error).message }
      resp = this.#render(ctx, o)
    }
    const m = this.#m
    if (o.kind === 'local') {
      m.results[ctx.protocol][o.result]++
      return resp
    }
    m.outcomes[o.kind]++
    m.results[ctx.protocol][o.kind]++
    // A UDP answer given now is timed with the rest of its turn (counted in outcomes, not yet timed).
    // A late answer of a UDP turn outside the sample (arrival NaN) is accounted for without a clock read.
    if (late || ctx.protocol === 'tcp') m.answerTimes.observe(o.kind, ctx.arrival !== ctx.arrival ? NaN : this.#d.clock() - ctx.arrival) // NaN: outside the sample
    return resp
  }

  #render (ctx: QueryContext, o: Outcome): Buffer {
    const ednsSize = this.#ednsSize
    let resp: Buffer
    switch (o.kind) {
      case 'cached': resp = this.#d.answers.render(o.slot, ctx.msg, ctx.q, o.elapsed); break
      // The query that asked upstream sends the upstream's datagram back, changed in place (the
      // cache and the queries that waited on it have their copies by now: its steps run last).
      case 'resolved': resp = ctx.asked ? renderInPlace(o.answer, ctx.msg, ctx.q) : renderAnswer(o.answer, ctx.msg, ctx.q); break
      case 'servfail': resp = emptyResponse(ctx.msg, ctx.q, Rcode.SERVFAIL, ednsSize, o.ede ?? this.#servfailEde); break
      case 'refused': resp = emptyResponse(ctx.msg, ctx.q, Rcode.REFUSED, ednsSize); break
      case 'blocked': resp = blockResponse(ctx.msg, ctx.q, o.verdict.action as BlockAnswer, this.#blockOptions, ctx.q.edns ? this.#edeFor(o.verdict) : undefined); break
      case 'local': resp = o.answer; break
    }
    if (resp.length > 65535) resp = emptyResponse(ctx.msg, ctx.q, Rcode.SERVFAIL, ednsSize, this.#servfailEde) // cannot be framed
    if (ctx.protocol === 'udp') {
      const limit = ctx.q.udpSize < ednsSize ? ctx.q.udpSize : ednsSize
      if (resp.length > limit) {
        this.#m.truncated++
        resp = truncateForUdp(resp, ctx.msg, ctx.q, limit, ednsSize)
      }
    }
    return resp
  }

  #edeFor (v: Verdict): Buffer {
    let b = this.#edes.get(v.category)
    if (b === undefined) {
      b = edeOption(EDE_BLOCKED, `egressd: ${v.category} is blocked (${v.policyRef})`)
      if (this.#edes.size < 1024) this.#edes.set(v.category, b)
    }
    return b
  }
}

/** An IP literal as its 4 or 16 network-order bytes (config values, validated at load). */
function ipBytes (ip: string): Buffer {
  const parsed = parseIp(ip)
  let v = parsed?.value ?? 0n
  const b = Buffer.alloc(parsed?.family === 6 ? 16 : 4)
  for (let i = b.length - 1; i >= 0; i--) { b[i] = Number(v & 0xffn); v >>= 8n }
  return b
}
