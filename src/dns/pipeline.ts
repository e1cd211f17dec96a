// The query path as a chain of stages (STYLE.md), composed once in `createPipeline`:
//
//   bytes ─▶ readQuery ─▶ [observe] ─▶ [answer policy] ─▶ [cache] ─▶ [query policy] ─▶ [coalesce] ─▶ forward
//                                                                               ◀── Outcome ──┘
//   Outcome ─▶ [queued steps] ─▶ count ─▶ render (ID, question case, TTLs, OPT) ─▶ truncate for UDP ─▶ bytes
//
// A stage is `(next) => (ctx) => Outcome | PENDING`. A stage that can answer by itself (a block,
// a cache hit) returns its Outcome without calling `next`. PENDING means the outcome comes later,
// through the query's context: a forwarded query's context is what the upstream pool calls back
// (`resolved` / `failed`), so a forwarded query has no promise of its own and no promise reaction
// between the upstream's datagram and the answer to the client. The Outcome is a discriminated
// union; metrics read it and never look at packets again.
//
// A stage that works on the outcome on its way back (store it, inspect it) does so at once when
// the outcome is there. When it is PENDING, the stage queues its step on the context (`later`),
// and the context runs the queued steps, innermost first, when the outcome arrives, then renders
// and sends the answer.

import type { BlocklistsConfig, CacheConfig, DnsConfig } from '../config/types.js'
import type { Engine, GroupPlan, Verdict } from '../policy/engine.js'
import { parseIp } from '../policy/names.js'
import { type AnswerCache, FORGOTTEN, MISS } from './cache.js'
import type { ClientAcl } from './client-acl.js'
import { InflightQueries } from './inflight.js'
import type { DnsMetrics } from './metrics.js'
import type { Resolution, ResolveCallback, UpstreamPool } from './upstream/pool.js'
import { LATER, type Replier, type Serve } from './listener.js'
import {
  AnswerTargets, answerTargets, blockResponse, edeOption, emptyResponse, type BlockAnswer, headerOnlyResponse, malformedRcode, QClass, QType, readQuery, renderAnswer,
  renderInPlace, Rcode, truncateForUdp, txtRdata, txtResponse, upstreamQuestion, type Query, type StoredAnswer
} from './wire.js'

export type Protocol = 'udp' | 'tcp'

/** What a stage returns when the outcome comes later, through the query's context. */
export const PENDING = 0
export type Pending = typeof PENDING

/** Runs a context's queued steps on its outcome, renders it and sends it (one per pipeline). */
type Finish = (ctx: QueryContext, o: Outcome) => void

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

  constructor (
    /** The client's bytes; response builders copy header and question from here. */
    readonly msg: Buffer,
    readonly q: Query,
    readonly protocol: Protocol,
    readonly client: string,
    /** The policy snapshot this query is decided with, from start to end (a swap does not split it). */
    readonly engine: Engine,
    readonly group: GroupPlan,
    /** The listener's way to send the answer to a PENDING outcome: `replier.reply(to, answer)`. */
    readonly replier: Replier,
    readonly to: unknown,
    readonly finish: Finish
  ) {}

  /** The outcome of a PENDING query: runs the queued steps, then answers the client. */
  settle (o: Outcome): void { this.finish(this, o) }
  resolved (r: Resolution): void { this.finish(this, r) }
  failed (err: Error, ede?: Buffer): void { this.finish(this, { kind: 'servfail', reason: err.message, ede }) }
}

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
  if (ctx.steps === null) ctx.steps = new Array<Step>(4)
  ctx.steps[ctx.stepCount++] = step
  return o
}

export type Outcome =
  /** An answer from the cache: `slot` is valid while the query is handled synchronously (see AnswerCache). */
  | { readonly kind: 'cached', readonly slot: number, readonly elapsed: number }
  | { readonly kind: 'resolved', readonly answer: StoredAnswer, readonly upstream: string }
  | { readonly kind: 'blocked', readonly verdict: Verdict }
  /** `ede`: the EDE option(s) an upstream sent with its SERVFAIL, passed on in place of our own EDE 22. */
  | { readonly kind: 'servfail', readonly reason: string, readonly ede?: Buffer | undefined }
  | { readonly kind: 'refused', readonly reason: string }

/** Called for every policy match: blocks, and `monitor` matches that are answered normally. */
export type ReportMatch = (ctx: QueryContext, verdict: Verdict) => void

/**
 * Called for every query answered without a block (store.logQueries: all): its outcome, the rcode
 * the client gets, and the milliseconds it took.
 */
export type ObserveAnswer = (ctx: QueryContext, outcome: Outcome, rcode: number, ms: number) => void

/** Where the current policy snapshot lives; swapping `engine` applies to the next query. */
export interface PolicyRef { engine: Engine }

export type Handler = (ctx: QueryContext) => Outcome | Pending
export type Stage = (next: Handler) => Handler

/** Folds stages around a terminal handler: the first stage in the array runs first. */
export function compose (stages: readonly Stage[], terminal: Handler): Handler {
  return stages.reduceRight<Handler>((next, stage) => stage(next), terminal)
}

/** Hands every answer that is not a block to `observe`, with its rcode and time to answer. */
export function observeStage (observe: ObserveAnswer, cache: AnswerCache, now: () => number): Stage {
  const rcodeOf = (o: Outcome): number =>
    o.kind === 'resolved' ? o.answer.rcode : o.kind === 'cached' ? cache.rcode(o.slot) : o.kind === 'servfail' ? Rcode.SERVFAIL : Rcode.REFUSED
  const seen = (ctx: QueryContext, o: Outcome, started: number): Outcome => {
    if (o.kind !== 'blocked') observe(ctx, o, rcodeOf(o), now() - started)
    return o
  }
  return next => ctx => {
    const started = now()
    const o = next(ctx)
    return o === PENDING ? later(ctx, o, (c, r) => seen(c, r, started)) : seen(ctx, o, started)
  }
}

/**
 * Blocks by the query name before the upstream is asked (a `monitor` match goes on). Below the
 * cache: cached answers get their name checked by the answer stage, once per snapshot and group.
 */
export function queryPolicyStage (report: ReportMatch): Stage {
  return next => ctx => {
    const v = ctx.nameVerdict = ctx.engine.decideName(ctx.q.qname, ctx.group)
    if (v === undefined) return next(ctx)
    report(ctx, v)
    return v.action === 'monitor' ? next(ctx) : { kind: 'blocked', verdict: v }
  }
}

/**
 * Decides every answer, fresh or cached, under the client's policy: the query name, then the
 * answer's CNAME targets, A/AAAA addresses and HTTPS/SVCB hints (an allow rule on the query name
 * covers its whole answer). Above the cache, so a list change applies to cached answers at once.
 * The decision on a cached answer is remembered in its cache slot per (snapshot, group): a cache
 * hit costs one comparison, not a name walk. A fresh answer is decided once per query.
 */
export function answerPolicyStage (report: ReportMatch, cache: AnswerCache): Stage {
  const targets = new AnswerTargets() // refilled for each answer inspected (synchronously)
  const decideFresh = (ctx: QueryContext, a: StoredAnswer): Verdict | undefined => {
    const { engine, group } = ctx
    // The query name was decided below (only `monitor` lets a listed name through).
    const byName = ctx.nameVerdict !== null ? ctx.nameVerdict : engine.decideName(ctx.q.qname, group)
    if (byName !== undefined) return byName
    if (engine.allowsName(ctx.q.qname, group)) return undefined
    return engine.decideAnswer(answerTargets(a, targets), group)
  }
  const decideCached = (ctx: QueryContext, slot: number): Verdict | undefined => {
    const { engine, group } = ctx
    // By the group's index and the snapshot's token: a reference to either would keep an old
    // snapshot's lists in memory as long as the slot is neither hit nor evicted.
    const remembered = cache.recall(slot, group.index, engine.token)
    if (remembered !== FORGOTTEN) return remembered as Verdict | undefined
    let v = engine.decideName(ctx.q.qname, group)
    if (v === undefined && !engine.allowsName(ctx.q.qname, group)) v = engine.decideAnswer(cache.targets(slot, targets), group)
    cache.remember(slot, group.index, engine.token, v)
    return v
  }
  const inspect: Step = (ctx, o) => {
    let v: Verdict | undefined
    if (o.kind === 'resolved') v = decideFresh(ctx, o.answer)
    else if (o.kind === 'cached') v = decideCached(ctx, o.slot)
    else return o
    if (v === undefined) return o
    // A fresh answer's name was decided (and reported) by the query stage below; only `monitor`
    // lets one through, and it must not be reported twice.
    if (o.kind === 'cached' || v.matched !== 'qname') report(ctx, v)
    return v.action === 'monitor' ? o : { kind: 'blocked', verdict: v }
  }
  return next => ctx => ctx.engine.inspectsAnswers ? later(ctx, next(ctx), inspect) : next(ctx)
}

/** Serves live cache entries; stores what comes back resolved and cacheable. */
export function cacheStage (cache: AnswerCache, now: () => number): Stage {
  const store: Step = (ctx, o) => {
    if (o.kind === 'resolved') cache.put(ctx.q.key, o.answer, now(), ctx.q.keyHash)
    return o
  }
  return next => ctx => {
    // No clock for a miss (every blocked and every forwarded query): the cache reads it on a hit.
    const slot = cache.find(ctx.q.key, undefined, ctx.q.keyHash)
    if (slot !== MISS) return { kind: 'cached', slot, elapsed: Math.floor((cache.checkedAt - cache.storedAt(slot)) / 1000) }
    return later(ctx, next(ctx), store)
  }
}

/**
 * One upstream query per distinct key in flight: later identical queries wait for the first one's
 * outcome. Also caps how many distinct upstream queries may be in flight (REFUSED beyond that).
 * The first query's step takes the key out again and settles the queries that waited on it, each
 * of which then runs its own steps (store, inspect) and answers its own client.
 */
export function coalesceStage (metrics: DnsMetrics, maxInflight: number): Stage {
  const inflight = new InflightQueries<QueryContext>()
  const done: Step = (ctx, o) => {
    inflight.remove(ctx.q.keyHash, ctx)
    const waiting = ctx.followers
    if (waiting !== null) {
      ctx.followers = null
      for (let i = 0; i < waiting.length; i++) waiting[i].settle(o)
    }
    return o
  }
  return next => ctx => {
    const first = inflight.get(ctx.q.key, ctx.q.keyHash)
    if (first !== undefined) {
      metrics.coalesced++
      ;(first.followers ??= []).push(ctx)
      return PENDING
    }
    if (inflight.size >= maxInflight) {
      metrics.overloaded++
      return { kind: 'refused', reason: 'too many upstream queries in flight' }
    }
    const o = next(ctx)
    if (o === PENDING) {
      inflight.add(ctx.q.keyHash, ctx)
      later(ctx, o, done)
    }
    return o
  }
}

/**
 * The terminal handler: asks the upstream pool, which calls the context back with the `resolved`
 * outcome itself, or with a total failure, which is answered SERVFAIL: never silence.
 */
export function forward (pool: UpstreamPool): Handler {
  return ctx => {
    ctx.asked = true
    pool.resolve(upstreamQuestion(ctx.msg, ctx.q), ctx.q.do, ctx)
    return PENDING
  }
}

export interface PipelineDeps {
  readonly dns: DnsConfig
  readonly cache: CacheConfig
  readonly blocking: BlocklistsConfig
  readonly policy: PolicyRef
  readonly report: ReportMatch
  /** Only when every query is logged (store.logQueries: all); absent, the stage is not in the chain. */
  readonly observe?: ObserveAnswer
  readonly answers: AnswerCache
  readonly pool: UpstreamPool
  readonly metrics: DnsMetrics
  readonly now: () => number
  /** Which clients are answered (dns.allowClients); the others get REFUSED. */
  readonly acl: ClientAcl
}

/** EDE info-code 15 "Blocked" (RFC 8914 4.16). */
const EDE_BLOCKED = 15
/** EDE info-code 18 "Prohibited" (RFC 8914 4.19): a client the resolver does not serve. */
const EDE_PROHIBITED = 18

/** EDE info-code 21 "Not Supported" (RFC 8914 4.22): a zone transfer asked of a forwarder. */
const EDE_NOT_SUPPORTED = 21
/** EDE info-code 22 "No Reachable Authority" (RFC 8914 4.23). */
const EDE_NO_REACHABLE_AUTHORITY = 22

/** CHAOS-class TXT names that ask a server about itself (BIND, NSD, Unbound, RFC 4892): dns.chaos.answer answers them. */
const CHAOS_NAMES: ReadonlySet<string> = new Set(['version.bind', 'version.server', 'hostname.bind', 'id.server', 'authors.bind'])

/**
 * Builds the query path once and returns the function listeners call with a client's bytes.
 * It returns the answer bytes (cache hits, blocks, malformed packets), null to send nothing, or
 * LATER and hands the answer to the listener's replier once the outcome is known (a forwarded query).
 */
export function createPipeline (d: PipelineDeps): Serve {
  const stages: Stage[] = [
    ...(d.observe !== undefined ? [observeStage(d.observe, d.answers, d.now)] : []),  // logQueries: all
    answerPolicyStage(d.report, d.answers),                        // above the cache: cached answers follow list changes
    ...(d.cache.enabled ? [cacheStage(d.answers, d.now)] : []),  // hits answer here, synchronously
    queryPolicyStage(d.report),                         // a miss: blocked names never leave the gateway
    coalesceStage(d.metrics, d.dns.maxInflight)         // identical misses share one upstream query
  ]
  const handle = compose(stages, forward(d.pool))
  const ednsSize = d.dns.ednsUdpSize
  const servfailEde = edeOption(EDE_NO_REACHABLE_AUTHORITY, 'egressd: no upstream answered')
  const acl = d.acl
  const prohibitedEde = edeOption(EDE_PROHIBITED, '') // no text: the answer stays as small as the query allows
  const blockOptions = {
    ttl: d.blocking.blockTtl,
    sinkhole4: ipBytes(d.blocking.sinkhole.ipv4),
    sinkhole6: ipBytes(d.blocking.sinkhole.ipv6),
    udpSize: ednsSize
  }
  // One EDE option per category (its text names the category and its policy reference), built on first use.
  const edes = new Map<string, Buffer>()
  const edeFor = (v: Verdict): Buffer => {
    let b = edes.get(v.category)
    if (b === undefined) {
      b = edeOption(EDE_BLOCKED, `egressd: ${v.category} is blocked (${v.policyRef})`)
      if (edes.size < 1024) edes.set(v.category, b)
    }
    return b
  }

  // Queries answered here, before cache, policy and upstream, and without an Outcome (like a refused
  // client): an EDNS version we do not implement (RFC 6891 6.1.3: BADVERS, our OPT says version 0),
  // CHAOS class (version.bind & co.: forwarded, the upstream's answer would tell its software and
  // version), zone transfers (a forwarder has no zones to transfer; RFC 5936 defines AXFR over TCP
  // only, but either way the answer is REFUSED, as Unbound's). An ordinary query (IN, version 0,
  // no transfer) does not get here: `serve` tests for all three at once.
  const m = d.metrics
  const chaosTxt = d.dns.chaos.answer === undefined ? undefined : txtRdata(d.dns.chaos.answer)
  const notSupportedEde = edeOption(EDE_NOT_SUPPORTED, '')
  const local = (msg: Buffer, q: Query, protocol: Protocol): Buffer | null => {
    let resp: Buffer
    if (q.ednsVersion !== 0) {
      m.localAnswers.badvers++
      m.results[protocol].badvers++
      resp = emptyResponse(msg, q, Rcode.BADVERS, ednsSize)
    } else if (q.qclass === QClass.CH) {
      m.localAnswers.chaos++
      if (chaosTxt !== undefined && (q.qtype === QType.TXT || q.qtype === QType.ANY) && CHAOS_NAMES.has(q.qname)) {
        m.results[protocol].local++
        resp = txtResponse(msg, q, chaosTxt, ednsSize)
      } else {
        m.results[protocol].refused++
        resp = emptyResponse(msg, q, Rcode.REFUSED, ednsSize)
      }
    } else if (q.qtype === QType.AXFR || q.qtype === QType.IXFR) {
      m.localAnswers['zone-transfer']++
      m.results[protocol].refused++
      resp = emptyResponse(msg, q, Rcode.REFUSED, ednsSize, notSupportedEde)
    } else {
      return null // another class than IN or CH: forwarded as before
    }
    if (protocol === 'udp') {
      const limit = q.udpSize < ednsSize ? q.udpSize : ednsSize
      if (resp.length > limit) {
        m.truncated++
        resp = truncateForUdp(resp, msg, q, limit, ednsSize)
      }
    }
    return resp
  }

  // Every outcome is counted here, whoever produced it, on its way to the client (not as a stage
  // of its own: that would cost every forwarded query one more promise hop).
  const render = (ctx: QueryContext, o: Outcome): Buffer => {
    m.outcomes[o.kind]++
    m.results[ctx.protocol][o.kind]++
    let resp: Buffer
    switch (o.kind) {
      case 'cached': resp = d.answers.render(o.slot, ctx.msg, ctx.q, o.elapsed); break
      // The query that asked upstream sends the upstream's datagram back, changed in place (the
      // cache and the queries that waited on it have their copies by now: its steps run last).
      case 'resolved': resp = ctx.asked ? renderInPlace(o.answer, ctx.msg, ctx.q) : renderAnswer(o.answer, ctx.msg, ctx.q); break
      case 'servfail': resp = emptyResponse(ctx.msg, ctx.q, Rcode.SERVFAIL, ednsSize, o.ede ?? servfailEde); break
      case 'refused': resp = emptyResponse(ctx.msg, ctx.q, Rcode.REFUSED, ednsSize); break
      case 'blocked': resp = blockResponse(ctx.msg, ctx.q, o.verdict.action as BlockAnswer, blockOptions, ctx.q.edns ? edeFor(o.verdict) : undefined); break
    }
    if (resp.length > 65535) resp = emptyResponse(ctx.msg, ctx.q, Rcode.SERVFAIL, ednsSize, servfailEde) // cannot be framed
    if (ctx.protocol === 'udp') {
      const limit = ctx.q.udpSize < ednsSize ? ctx.q.udpSize : ednsSize
      if (resp.length > limit) {
        m.truncated++
        resp = truncateForUdp(resp, ctx.msg, ctx.q, limit, ednsSize)
      }
    }
    return resp
  }

  // A fault (an exception) anywhere on the query path is answered SERVFAIL: it must neither reach
  // the socket's event handler (an uncaught exception stops the daemon) nor escape a promise
  // reaction that nobody awaits.
  const answer = (ctx: QueryContext, o: Outcome): Buffer => {
    try {
      return render(ctx, o)
    } catch (err) {
      return render(ctx, { kind: 'servfail', reason: (err as Error).message })
    }
  }

  // A PENDING outcome has arrived: the queued steps, innermost first, then the answer. A step that
  // throws makes the outcome SERVFAIL, and the remaining steps still run (so coalescing lets go of
  // the key and settles the queries waiting on it). `answer` does not throw (a fault in rendering
  // is answered SERVFAIL), and neither does the listener's replier: this runs inside the upstream
  // socket's event handler.
  // A query answered already (a fault after it was sent upstream) still runs its steps, so that
  // coalescing lets go of the key, but sends nothing.
  const finish: Finish = (ctx, o) => {
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
    ctx.replier.reply(ctx.to, answer(ctx, o))
  }

  return (msg, protocol, client, replier, to) => {
    d.metrics.queries[protocol]++
    const q = readQuery(msg)
    if (typeof q === 'string') {
      d.metrics.malformed[q]++
      const rcode = malformedRcode(q)
      d.metrics.results[protocol][rcode < 0 ? 'dropped' : rcode === Rcode.NOTIMP ? 'notimp' : 'formerr']++
      return rcode < 0 ? null : headerOnlyResponse(msg, rcode)
    }
    // Checked after the header is read, so that a refused client gets an answer it can match
    // (REFUSED is no larger than the query: nothing to amplify).
    if (!acl.allows(client)) {
      d.metrics.refusedClients++
      d.metrics.results[protocol].refused++
      return emptyResponse(msg, q, Rcode.REFUSED, ednsSize, prohibitedEde)
    }
    // One test for what `local` answers; an ordinary query (IN, EDNS version 0, no zone transfer) passes it.
    if (q.ednsVersion !== 0 || q.qclass !== QClass.IN || q.qtype === QType.AXFR || q.qtype === QType.IXFR) {
      const resp = local(msg, q, protocol)
      if (resp !== null) return resp
    }
    const engine = d.policy.engine
    const ctx = new QueryContext(msg, q, protocol, client, engine, engine.groupOf(client), replier, to, finish)
    try {
      const o = handle(ctx)
      if (o !== PENDING) return render(ctx, o)
      return LATER
    } catch (err) {
      // Answered now; if the query did reach the upstream, its outcome finds it answered.
      ctx.answered = true
      return answer(ctx, { kind: 'servfail', reason: (err as Error).message })
    }
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
