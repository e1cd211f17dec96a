// Answer time to clients, by outcome: fixed buckets of plain counters, so recording costs a few
// compares and two increments (no allocation). /metrics renders them as a Prometheus histogram at
// scrape time (egressd_dns_answer_seconds).
//
// Times are milliseconds on performance.now()'s clock (Date.now()'s whole milliseconds are too
// coarse for the sub-millisecond buckets). A UDP answer given at once is not timed by itself: every
// answer of a UDP turn goes out at the end of the turn (udp-turn.ts), so such answers are held by
// outcome and released together with one clock read when the turn is over (`hold`, `release`).

import type { OutcomeKind } from './outcome-kind.js'

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
}

export class AnswerTimes {
  readonly series: Record<OutcomeKind, AnswerTimeSeries> = {
    cached: AnswerTimes.#series(),
    resolved: AnswerTimes.#series(),
    blocked: AnswerTimes.#series(),
    servfail: AnswerTimes.#series(),
    refused: AnswerTimes.#series()
  }

  static #series (): AnswerTimeSeries { return { counts: new Float64Array(BOUNDS_MS.length + 1), sumMs: 0 } }

  /** Answers held by outcome, not yet timed (see `hold`), and how many in all. */
  readonly #held: Record<OutcomeKind, number> = { cached: 0, resolved: 0, blocked: 0, servfail: 0, refused: 0 }
  #holding = 0

  /** One answer sent to a client `ms` after its query arrived. */
  observe (result: OutcomeKind, ms: number): void {
    const s = this.series[result]
    let i = 0
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]) i++
    s.counts[i]++
    s.sumMs += ms
  }

  /** One answer given now that goes out later with others (a UDP turn's): timed by `release`. */
  hold (result: OutcomeKind): void {
    this.#held[result]++
    this.#holding++
  }

  /** Whether answers are held (the caller then reads its clock for `release`). */
  get holding (): boolean { return this.#holding > 0 }

  /** The held answers went out `ms` after their queries arrived: each is counted at that time. */
  release (ms: number): void {
    if (this.#holding === 0) return
    let i = 0
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]) i++
    const held = this.#held
    for (const k in held) {
      const n = held[k as OutcomeKind]
      if (n === 0) continue
      const s = this.series[k as OutcomeKind]
      s.counts[i] += n
      s.sumMs += ms * n
      held[k as OutcomeKind] = 0
    }
    this.#holding = 0
  }
}
