// Answer time to clients, by outcome: fixed buckets of plain counters, so recording costs a few
// compares and two increments (no allocation). /metrics renders them as a Prometheus histogram at
// scrape time (egressd_dns_answer_seconds).

import type { OutcomeKind } from './metrics.js'

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

  /** One answer sent to a client `ms` after its query arrived. */
  observe (result: OutcomeKind, ms: number): void {
    const s = this.series[result]
    let i = 0
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]) i++
    s.counts[i]++
    s.sumMs += ms
  }
}
