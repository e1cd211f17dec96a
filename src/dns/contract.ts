// The contract of the DNS path, in one module so that its parts meet here and import nothing of
// each other: the listener hands each query to a `Serve` (the pipeline) and gets the answer back
// now or later through its `Replier`; the pipeline's stages are `(next) => (ctx) => Outcome |
// PENDING` over a QueryContext. listener.ts, pipeline.ts, respond.ts and stages/ import this;
// this imports only types (policy, wire, the upstream pool's callback).

import type { Engine, GroupPlan, Verdict } from '../policy/engine.js'
import type { Resolution, ResolveCallback } from './upstream/pool.js'
import type { Query, StoredAnswer } from './wire.js'

export type Protocol = 'udp' | 'tcp'

/**
 * What `Serve` and a stage return when the answer comes later (the only such sentinel): `Serve`
 * then answers through `replier.reply`, a stage's outcome arrives through the query's context.
 */
export const PENDING = 0
export type Pending = typeof PENDING

/** Sends a later answer: one Replier per socket or connection, `to` tells the client apart. */
export interface Replier { reply (to: unknown, answer: Buffer): void }

/**
 * Answers one query: returns the answer bytes now, null to send nothing, or PENDING when the
 * answer comes later through `replier.reply(to, answer)` (called exactly once, never
 * synchronously). A callback, not a promise: a forwarded query then costs no promise of the
 * listener's own. One Replier per socket or connection, and `to` what tells the client apart (the
 * UDP sender's address): no closure per query.
 *
 * `arrival`: when the query arrived, in milliseconds on the answer-time clock (performance.now()):
 * for UDP, when its turn began handling datagrams (UdpTurn.arrivedAt: one clock read per turn),
 * for TCP when its bytes were read. A UDP answer returned now goes out with the rest of its turn,
 * so it is only counted (DnsMetrics.outcomes), and the listener times the turn's answers once the
 * turn is over (AnswerTimes.release: one clock read per turn); every other answer is timed when it
 * is given.
 */
export type Serve = (msg: Buffer, protocol: Protocol, client: string, replier: Replier, to: unknown, arrival: number) => Buffer | null | Pending

/** What a query on a socket egressd answers by itself before policy counts as in DnsMetrics.results. */
export type LocalResult = 'refused' | 'badvers' | 'local'

/**
 * What became of a query: a discriminated union that metrics, logs and answer times read, never
 * the packets again. `local` is an answer egressd gave by itself before policy (a client outside
 * dns.allowClients, BADVERS, CHAOS, zone transfers): its bytes, and what it counts as; it is not a
 * pipeline outcome (DnsMetrics.outcomes and answer times leave it out).
 */
export type Outcome =
  /** An answer from the cache: `slot` is valid while the query is handled synchronously (see AnswerCache). */
  | { readonly kind: 'cached', readonly slot: number, readonly elapsed: number }
  | { readonly kind: 'resolved', readonly answer: StoredAnswer, readonly upstream: string }
  | { readonly kind: 'blocked', readonly verdict: Verdict }
  /** `ede`: the EDE option(s) an upstream sent with its SERVFAIL, passed on in place of our own EDE 22. */
  | { readonly kind: 'servfail', readonly reason: string, readonly ede?: Buffer | undefined }
  | { readonly kind: 'refused', readonly reason: string }
  | { readonly kind: 'local', readonly result: LocalResult, readonly answer: Buffer }

/** Runs a context's queued steps on its outcome, renders it and sends it (one per pipeline). */
export type Finish = (ctx: QueryContext, o: Outcome) => void

/**
 * One query on its way through the pipeline. For a forwarded query it is also what hears the
 * outcome: the upstream pool calls `resolved` or `failed`, and identical queries waiting on it
 * (coalescing) are settled with the same outcome.
 */
export class QueryContext implements ResolveCallback {
  /**
   * The query stage's decision on the query name (undefined: not listed or allowed), or null until
   * it has run; the answer stage reuses it instead of deciding the name again.
   */
  nameVerdict: Verdict | undefined | null = null
  /** Steps queued for an outcome that comes later, innermost stage first; see `later`. */
  steps: Step[] | null = null
  /** How many of `steps` are queued (the array is made with room for a few more). */
  stepCount = 0
  /** Identical queries waiting for this one's outcome (see coalesceStage). */
  followers: QueryContext[] | null = null
  /** Answered already: a later outcome is not sent again. */
  answered = false
  /** This query asked the upstream (it is not one waiting on an identical query): its answer is its own to change. */
  asked = false
  #group: GroupPlan | undefined = undefined

  constructor (
    /** The client's bytes; response builders copy header and question from here. */
    readonly msg: Buffer,
    readonly q: Query,
    readonly protocol: Protocol,
    readonly client: string,
    /** The policy snapshot this query is decided with, from start to end (a swap does not split it). */
    readonly engine: Engine,
    /** The listener's way to send the answer to a PENDING outcome: `replier.reply(to, answer)`. */
    readonly replier: Replier,
    readonly to: unknown,
    /** When the query arrived (see Serve), for its answer time. */
    readonly arrival: number,
    readonly finish: Finish
  ) {}

  /**
   * The client's policy group in `engine`, looked up when a stage first asks: a client the ACL
   * refuses costs no lookup.
   */
  get group (): GroupPlan { return this.#group ??= this.engine.groupOf(this.client) }

  /** The outcome of a PENDING query: runs the queued steps, then answers the client. */
  settle (o: Outcome): void { this.finish(this, o) }
  resolved (r: Resolution): void { this.finish(this, r) }
  failed (err: Error, ede?: Buffer): void { this.finish(this, { kind: 'servfail', reason: err.message, ede }) }
}

export type Handler = (ctx: QueryContext) => Outcome | Pending
/** A link of the chain: given the next handler, the handler that runs this stage first. */
export type Stage = (next: Handler) => Handler

/** What a stage does with an outcome on its way back to the client. */
export type Step = (ctx: QueryContext, o: Outcome) => Outcome

/**
 * Applies `step` to the outcome `o` now, or, when `o` is PENDING, queues it on the context for
 * when the outcome arrives (it runs on every outcome, a failure too: then a SERVFAIL). Returns
 * what the stage returns.
 */
export function later (ctx: QueryContext, o: Outcome | Pending, step: Step): Outcome | Pending {
  if (o !== PENDING) return step(ctx, o)
  // Room for four at once (every stage with a step): growing from one element by push would
  // allocate room for 17.
  ctx.steps ??= new Array<Step>(4)
  ctx.steps[ctx.stepCount++] = step
  return o
}

/** Called for every policy match: blocks, and `monitor` matches that are answered normally. */
export type ReportMatch = (ctx: QueryContext, verdict: Verdict) => void

/**
 * Called for every query answered without a block (store.logQueries: all): its outcome, the rcode
 * the client gets, and the milliseconds it took.
 */
export type ObserveAnswer = (ctx: QueryContext, outcome: Outcome, rcode: number, ms: number) => void
