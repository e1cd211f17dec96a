// Answer time to clients, by outcome: fixed buckets of plain counters, so recording costs a few
// compares and two increments (no allocation). /metrics renders them as a Prometheus histogram at
// scrape time (egressd_dns_answer_seconds).
//
// Times are milliseconds on performance.now()'s clock (Date.now()'s whole milliseconds are too
// coarse for the sub-millisecond buckets). A UDP answer given at once (a block, a cache hit) costs
// nothing here when it is given: every answer of a UDP turn goes out at the end of the turn
// (udp-turn.ts), so the turn's answers are timed together when it is over, with one clock read
// (`release`). They are found without being counted twice: every answer is counted in
// DnsMetrics.outcomes when it is given, and those counted but not yet timed are the turn's.
// UDP answers are a sample: one turn in dns.udp.answerTimeSample (default 8) is timed, since two
// clock reads per turn cost about 1 % of a blocked answer's CPU (bench/ab.sh W1); the others are
// only accounted for (`skipped`). TCP answers are all timed.

import { OUTCOME_KINDS, type OutcomeKind } from './outcome-kind.js'

/** The answer-time clock: milliseconds, monotonic, sub-millisecond. */
export const answerClock = (): number => performance.now()

/** Upper bounds in seconds; an implicit +Inf bucket follows. */
export const ANSWER_TIME_BUCKETS_S: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
const BOUNDS_MS = ANSWER_TIME_BUCKETS_S.map(s => s * 1000)

export interface AnswerTimeSeries {
  /** Per bucket (not cumulative), ANSWER_TIME_BUCKETS_S.length + 1 entries, the last +Inf. */
  readonly counts: Float64Array
  /** Sum of answer times in milliseconds. */
  sumMs: number
  /** Answers timed: the sum of `counts`. */
  count: number
  /** Answers given outside the sample (a UDP turn not timed: dns.udp.answerTimeSample). */
  skipped: number
}

export class AnswerTimes {
  readonly series: Record<OutcomeKind, AnswerTimeSeries> = {
    cached: AnswerTimes.#series(),
    resolved: AnswerTimes.#series(),
    blocked: AnswerTimes.#series(),
    servfail: AnswerTimes.#series(),
    refused: AnswerTimes.#series()
  }

  static #series (): AnswerTimeSeries { return { counts: new Float64Array(BOUNDS_MS.length + 1), sumMs: 0, count: 0, skipped: 0 } }

  /** One answer sent to a client `ms` after its query arrived. */
  observe (result: OutcomeKind, ms: number): void {
    const s = this.series[result]
    if (ms !== ms) { // NaN: the query arrived in a turn outside the sample
      s.skipped++
      return
    }
    let i = 0
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]) i++
    s.counts[i]++
    s.sumMs += ms
    s.count++
  }

  /** How many answers of `given` (answers given by outcome: DnsMetrics.outcomes) are not timed yet. */
  untimed (given: Readonly<Record<OutcomeKind, number>>): number {
    const s = this.series
    return given.cached - s.cached.count - s.cached.skipped + given.resolved - s.resolved.count - s.resolved.skipped +
      given.blocked - s.blocked.count - s.blocked.skipped + given.servfail - s.servfail.count - s.servfail.skipped +
      given.refused - s.refused.count - s.refused.skipped
  }

  /**
   * The answers of `given` not timed yet went out `ms` after their queries arrived: each is timed
   * so (NaN: the turn was outside the sample, they are only accounted for).
   */
  release (given: Readonly<Record<OutcomeKind, number>>, ms: number): void {
    let i = 0
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]) i++
    for (const k of OUTCOME_KINDS) {
      const s = this.series[k]
      const n = given[k] - s.count - s.skipped
      if (n <= 0) continue
      if (ms !== ms) { // NaN: not in the sample
        s.skipped += n
        continue
      }
      s.counts[i] += n
      s.sumMs += ms * n
      s.count += n
    }
  }
}
