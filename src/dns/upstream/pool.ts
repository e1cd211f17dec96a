// The upstream pool: turns configured upstreams into transports, asks them in order with failover,
// tracks their health (a failing upstream, one that timed out, could not be reached or sent an
// unusable answer, is tried last until it answers again; after `probeMs` it gets its configured
// place back so real traffic can show it has recovered), retries a truncated UDP answer over TCP,
// and validates every answer before anyone sees it.
// A SERVFAIL usually means the domain is broken (DNSSEC-bogus, lame delegation), not the upstream:
// it counts as that upstream's failure (failures, lastError, metrics.upstreamServfails), is never
// taken as its recovery, and the next upstream is asked; it is tried last (demoted) only when
// another upstream then gave a usable answer to the same question. When every upstream answered
// SERVFAIL nobody is demoted, so a client repeating a broken name cannot push traffic off the
// first upstream or make readiness fail.

import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import type { UpstreamConfig } from '../../config/types.js'
import { EgressdError, UpstreamError } from '../../errors.js'
import { buildUpstreamQuery, edeOptions, prepareAnswer, Rcode, type BadAnswer, type StoredAnswer, type TtlPolicy } from '../wire.js'
import type { DnsMetrics } from '../metrics.js'
import type { UdpTurn } from '../udp-turn.js'
import { DohTransport } from './doh-transport.js'
import { RandomIds } from './random-ids.js'
import { StreamTransport } from './stream-transport.js'
import { exchange, type DropReason, type Exchange, type Transport } from './transport.js'
import { UdpSocketPool } from './udp-socket-pool.js'

export interface UpstreamHealth {
  readonly url: string
  readonly healthy: boolean
  readonly queries: number
  readonly failures: number
  readonly consecutiveFailures: number
  readonly lastError: string | undefined
  /** Smoothed answer time in ms (EWMA), 0 before the first answer. */
  readonly latencyMs: number
}

interface Upstream {
  readonly cfg: UpstreamConfig
  readonly transport: Transport
  /** udp:// only: the TCP transport used when an answer comes back truncated. */
  readonly tcp: Transport | undefined
  queries: number
  failures: number
  consecutiveFailures: number
  lastFailureAt: number
  lastError: string | undefined
  latencyMs: number
  /** Answer times: count per LATENCY_BUCKETS_MS bucket (last: above them all), and their sum. */
  readonly latencyCounts: Uint32Array
  latencySumMs: number
}

/** Upper bounds (ms) of the answer-time histogram buckets, for /metrics. */
export const LATENCY_BUCKETS_MS: readonly number[] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]

/** One upstream's answer-time histogram (non-cumulative counts; the last is above every bound). */
export interface LatencyHistogram { readonly url: string, readonly counts: readonly number[], readonly sumMs: number }

export interface PoolOptions {
  readonly upstreams: readonly UpstreamConfig[]
  readonly udpSockets: number
  /** Where the UDP upstreams' answers are handled and queries sent (udp-turn.ts). */
  readonly turn: UdpTurn
  readonly ednsUdpSize: number
  readonly ttl: TtlPolicy
  readonly log: Logger
  readonly metrics: DnsMetrics
  readonly now: () => number
  /** How long a failed upstream stays at the back of the line before it is tried in order again. */
  readonly probeMs?: number
}

/** An answer and who gave it; shaped as the pipeline's `resolved` outcome, so it passes through as is. */
export interface Resolution { readonly kind: 'resolved', readonly answer: StoredAnswer, readonly upstream: string }

/** Who hears how a question was resolved: exactly one call, never synchronously from `resolve`. */
export interface ResolveCallback {
  resolved (r: Resolution): void
  /**
   * Every upstream failed (EGRESSD_ERR_ALL_UPSTREAMS_FAILED). `ede`: the Extended DNS Error
   * option(s) the first upstream that answered SERVFAIL with one sent, to pass on to the client.
   */
  failed (err: Error, ede?: Buffer): void
}

/** An upstream that answered a question SERVFAIL, and that SERVFAIL as an error (slow path only). */
interface ServfailedBy { readonly u: Upstream, readonly err: UpstreamError }

/** The slow path's outcome when no upstream gave an answer to pass on. */
interface Failure { readonly kind: 'failed', readonly err: Error, readonly ede: Buffer | undefined }

/** What the pool does when the first upstream asked answers or fails (see FirstAttempt). */
interface FirstAttemptHandler {
  answered (a: FirstAttempt, raw: Buffer): void
  failed (a: FirstAttempt, err: Error): void
}

/**
 * A question's first attempt: the exchange the transport carries and calls back, and what the pool
 * needs to go on from its answer (failover order, timing, who to tell). One object per forwarded
 * query, in place of a promise, its reactions and their closures.
 */
class FirstAttempt implements Exchange {
  deadline = 0
  via: unknown = undefined
  at = 0
  constructor (
    readonly wire: Buffer,
    readonly question: Buffer,
    readonly timeoutMs: number,
    readonly order: readonly Upstream[],
    readonly dnssecOk: boolean,
    readonly started: number,
    readonly cb: ResolveCallback,
    readonly handler: FirstAttemptHandler
  ) {}

  answer (raw: Buffer): void { this.handler.answered(this, raw) }
  fail (err: Error): void { this.handler.failed(this, err) }
}

export class UpstreamPool {
  readonly #opts: PoolOptions
  readonly #list: Upstream[]
  readonly #random = new RandomIds()
  readonly #log: Logger
  /** True while no upstream has an unanswered failure: the order is then simply the configured one. */
  #allHealthy = true

  constructor (opts: PoolOptions) {
    this.#opts = opts
    this.#log = opts.log.child({ mod: 'upstream' })
    this.#list = opts.upstreams.map(cfg => {
      const { transport, tcp } = this.#transports(cfg)
      return { cfg, transport, tcp, queries: 0, failures: 0, consecutiveFailures: 0, lastFailureAt: 0, lastError: undefined, latencyMs: 0, latencyCounts: new Uint32Array(LATENCY_BUCKETS_MS.length + 1), latencySumMs: 0 }
    })
  }

  #transports (cfg: UpstreamConfig): { transport: Transport, tcp: Transport | undefined } {
    const onDrop = (reason: DropReason): void => { this.#opts.metrics.upstreamDropped[reason]++ }
    const random = this.#random
    const tcpTo = (url: string): StreamTransport => new StreamTransport({
      url, random, onDrop, connect: () => net.connect({ host: cfg.host, port: cfg.port, noDelay: true })
    })
    switch (cfg.protocol) {
      case 'udp': {
        const transport = new UdpSocketPool({ url: cfg.url, host: cfg.host, port: cfg.port, size: this.#opts.udpSockets, random, turn: this.#opts.turn, onDrop })
        return { transport, tcp: tcpTo(cfg.url + ' (tcp)') }
      }
      case 'tcp':
        return { transport: tcpTo(cfg.url), tcp: undefined }
      case 'tls': {
        const ca = cfg.caFile === undefined ? undefined : readFileSync(cfg.caFile)
        const servername = cfg.servername ?? (net.isIP(cfg.host) === 0 ? cfg.host : undefined)
        const transport = new StreamTransport({
          url: cfg.url,
          random,
          onDrop,
          connect: () => tls.connect({ host: cfg.host, port: cfg.port, servername, ca, rejectUnauthorized: true, ALPNProtocols: ['dot'] })
        })
        return { transport, tcp: undefined }
      }
      case 'https':
        return {
          transport: new DohTransport({ url: cfg.url, host: cfg.host, port: cfg.port, path: cfg.path, servername: cfg.servername, caFile: cfg.caFile, onDrop }),
          tcp: undefined
        }
    }
  }

  /** Upstreams in the order to try now: healthy (or due for a probe) in configured order, then the rest. */
  #order (): Upstream[] {
    if (this.#allHealthy) return this.#list // the common case: no clock read, no arrays
    const probeMs = this.#opts.probeMs ?? 30_000
    const now = this.#opts.now()
    const first: Upstream[] = []
    const last: Upstream[] = []
    for (const u of this.#list) {
      if (u.consecutiveFailures === 0 || now - u.lastFailureAt >= probeMs) first.push(u)
      else last.push(u)
    }
    return last.length === 0 ? first : first.concat(last)
  }

  /**
   * Resolves one question (lower-cased question bytes) through the upstreams and tells `cb`. The
   * first usable answer wins. A SERVFAIL answer counts as the upstream's failure and the next
   * upstream is asked; the upstream is demoted only if a later one answers usably (see the header).
   * A REFUSED answer makes the next upstream try too, and is passed on when nobody answers better.
   * When every upstream failed, `cb.failed` hears EGRESSD_ERR_ALL_UPSTREAMS_FAILED, with the EDE an
   * upstream sent with its SERVFAIL, if any.
   */
  resolve (question: Buffer, dnssecOk: boolean, cb: ResolveCallback): void {
    // The common case (the first upstream gives a usable answer) is one FirstAttempt, called back
    // by the transport; anything else (a truncated answer to fetch again over TCP, an unusable one,
    // SERVFAIL/REFUSED, an error) goes on in #first, and failover in #rest, as promise code.
    const o = this.#opts
    const order = this.#order()
    const u = order[0]
    u.queries++
    u.transport.send(new FirstAttempt(buildUpstreamQuery(question, dnssecOk, o.ednsUdpSize), question, u.cfg.timeoutMs, order, dnssecOk, o.now(), cb, this.#firstHandler))
  }

  /** Tells `cb` the slow path's outcome. */
  #tell (p: Promise<Resolution | Failure>, cb: ResolveCallback): void {
    p.then(r => { if (r.kind === 'resolved') cb.resolved(r); else cb.failed(r.err, r.ede) }, (err: Error) => { cb.failed(err) })
  }

  /** `resolve` as a promise (tools, list host names). */
  query (question: Buffer, dnssecOk: boolean): Promise<Resolution> {
    return new Promise((resolve, reject) => { this.resolve(question, dnssecOk, { resolved: resolve, failed: reject }) })
  }

  readonly #firstHandler: FirstAttemptHandler = {
    answered: (a, raw) => {
      const o = this.#opts
      const u = a.order[0]
      const answer = prepareAnswer(raw, a.question, o.ttl, o.ednsUdpSize)
      if (typeof answer !== 'string' && answer.rcode !== Rcode.SERVFAIL && answer.rcode !== Rcode.REFUSED) {
        this.#succeeded(u, o.now() - a.started)
        a.cb.resolved({ kind: 'resolved', answer, upstream: u.cfg.url })
        return
      }
      this.#tell(this.#first(a.order, a.question, a.dnssecOk, a.started, this.#complete(u, a, a.dnssecOk, answer)), a.cb)
    },
    failed: (a, err) => {
      this.#failed(a.order[0], err)
      this.#tell(this.#rest(a.order, a.question, a.dnssecOk, undefined, [err.message], undefined, undefined), a.cb)
    }
  }

  /** The first upstream's answer, once complete (fetched again over TCP if it was truncated). */
  async #first (order: readonly Upstream[], question: Buffer, dnssecOk: boolean, started: number, complete: Promise<StoredAnswer>): Promise<Resolution | Failure> {
    const u = order[0]
    let answer: StoredAnswer
    try {
      answer = await complete
    } catch (err) {
      this.#failed(u, err)
      return await this.#rest(order, question, dnssecOk, undefined, [(err as Error).message], undefined, undefined)
    }
    if (answer.rcode === Rcode.SERVFAIL) {
      const ede = edeOptions(answer.opt)
      const err = servfailError(u, ede)
      this.#servfailed(u, err)
      return await this.#rest(order, question, dnssecOk, undefined, [err.message], ede, [{ u, err }])
    }
    this.#succeeded(u, this.#opts.now() - started)
    if (answer.rcode !== Rcode.REFUSED) return { kind: 'resolved', answer, upstream: u.cfg.url }
    return await this.#rest(order, question, dnssecOk, { kind: 'resolved', answer, upstream: u.cfg.url }, [`${u.cfg.url}: rcode ${answer.rcode}`], undefined, undefined)
  }

  /**
   * Asks order[1..] in turn. A REFUSED answer is kept as the last resort. A SERVFAIL is counted
   * against its upstream, and the first EDE sent with one is kept for the client; the upstreams in
   * `servfailed` (those that answered this question SERVFAIL) are demoted once another one gives a
   * usable answer, and left as they are when nobody does (the domain is broken, not they).
   */
  async #rest (order: readonly Upstream[], question: Buffer, dnssecOk: boolean, fallback: Resolution | undefined, errors: string[], ede: Buffer | undefined, servfailed: ServfailedBy[] | undefined): Promise<Resolution | Failure> {
    const now = this.#opts.now
    for (let i = 1; i < order.length; i++) {
      const u = order[i]
      const started = now()
      u.queries++
      try {
        const answer = await this.#ask(u, question, dnssecOk)
        if (answer.rcode === Rcode.SERVFAIL) {
          const sent = edeOptions(answer.opt)
          const err = servfailError(u, sent)
          this.#servfailed(u, err)
          errors.push(err.message)
          ede ??= sent
          ;(servfailed ??= []).push({ u, err })
          continue
        }
        this.#succeeded(u, now() - started)
        if (answer.rcode === Rcode.REFUSED) {
          fallback ??= { kind: 'resolved', answer, upstream: u.cfg.url }
          errors.push(`${u.cfg.url}: rcode ${answer.rcode}`)
          continue
        }
        if (servfailed !== undefined) {
          for (const s of servfailed) this.#demote(s.u, `${s.err.message}, but ${u.cfg.url} answered rcode ${answer.rcode}`)
        }
        return { kind: 'resolved', answer, upstream: u.cfg.url }
      } catch (err) {
        this.#failed(u, err)
        errors.push((err as Error).message)
      }
    }
    if (fallback !== undefined) return fallback
    return { kind: 'failed', err: new EgressdError('EGRESSD_ERR_ALL_UPSTREAMS_FAILED', `all upstreams failed: ${errors.join('; ')}`), ede }
  }

  /** One question to one upstream; a truncated UDP answer is asked again over TCP. */
  #ask (u: Upstream, question: Buffer, dnssecOk: boolean): Promise<StoredAnswer> {
    const o = this.#opts
    const x = { wire: buildUpstreamQuery(question, dnssecOk, o.ednsUdpSize), question, timeoutMs: u.cfg.timeoutMs }
    return exchange(u.transport, x).then(raw => this.#complete(u, x, dnssecOk, prepareAnswer(raw, question, o.ttl, o.ednsUdpSize)))
  }

  /** An answer to `x` as usable: a truncated UDP answer is asked again over TCP; a bad one rejects. */
  #complete (u: Upstream, x: { readonly question: Buffer, readonly timeoutMs: number }, dnssecOk: boolean, answer: StoredAnswer | BadAnswer): Promise<StoredAnswer> {
    const o = this.#opts
    if (answer === 'truncated' && u.tcp !== undefined) {
      o.metrics.upstreamTcpRetries++
      return exchange(u.tcp, { wire: buildUpstreamQuery(x.question, dnssecOk, o.ednsUdpSize), question: x.question, timeoutMs: x.timeoutMs })
        .then(raw => this.#usable(u, prepareAnswer(raw, x.question, o.ttl, o.ednsUdpSize)))
    }
    try {
      return Promise.resolve(this.#usable(u, answer))
    } catch (err) {
      // #usable's UpstreamError, passed on unchanged as the rejection (a caught value is unknown to the types).
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(err)
    }
  }

  #usable (u: Upstream, answer: StoredAnswer | BadAnswer): StoredAnswer {
    if (typeof answer !== 'string') return answer
    this.#opts.metrics.upstreamBadAnswers++
    throw new UpstreamError('EGRESSD_ERR_UPSTREAM_BAD_ANSWER', u.cfg.url, `unusable answer (${answer})`)
  }

  #succeeded (u: Upstream, ms: number): void {
    if (u.consecutiveFailures > 0) {
      this.#log.info({ upstream: u.cfg.url, after: u.consecutiveFailures }, 'upstream recovered')
      u.consecutiveFailures = 0
      this.#allHealthy = this.#list.every(x => x.consecutiveFailures === 0)
    }
    u.latencyMs = u.latencyMs === 0 ? ms : u.latencyMs * 0.9 + ms * 0.1
    let b = 0
    while (b < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[b]) b++
    u.latencyCounts[b]++
    u.latencySumMs += ms
  }

  /** A timeout, a network error, an unusable answer: counted, and the upstream is tried last. */
  #failed (u: Upstream, err: unknown): void {
    u.failures++
    u.lastError = (err as Error).message
    this.#opts.metrics.upstreamErrors++
    this.#demote(u, u.lastError)
  }

  /** A SERVFAIL answer: counted against the upstream, neither its recovery nor (yet) its demotion. */
  #servfailed (u: Upstream, err: Error): void {
    u.failures++
    u.lastError = err.message
    this.#opts.metrics.upstreamServfails++
  }

  /** The upstream is tried last until it answers again (or `probeMs` has passed). */
  #demote (u: Upstream, why: string): void {
    u.consecutiveFailures++
    this.#allHealthy = false
    u.lastFailureAt = this.#opts.now()
    if (u.consecutiveFailures === 1) this.#log.warn({ upstream: u.cfg.url, err: why }, 'upstream failed; trying it last until it recovers')
  }

  latency (): LatencyHistogram[] {
    return this.#list.map(u => ({ url: u.cfg.url, counts: Array.from(u.latencyCounts), sumMs: u.latencySumMs }))
  }

  health (): UpstreamHealth[] {
    return this.#list.map(u => ({
      url: u.cfg.url,
      healthy: u.consecutiveFailures === 0,
      queries: u.queries,
      failures: u.failures,
      consecutiveFailures: u.consecutiveFailures,
      lastError: u.lastError,
      latencyMs: Math.round(u.latencyMs * 100) / 100
    }))
  }

  close (): void {
    for (const u of this.#list) { u.transport.close(); u.tcp?.close() }
  }
}

/** An upstream's SERVFAIL as its failure; the message names the EDE info-code it came with. */
function servfailError (u: Upstream, ede: Buffer | undefined): UpstreamError {
  const code = ede === undefined ? '' : ` (EDE ${(ede[4] << 8) | ede[5]})`
  return new UpstreamError('EGRESSD_ERR_UPSTREAM_SERVFAIL', u.cfg.url, `answered SERVFAIL${code}`)
}
