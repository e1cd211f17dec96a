// Event-loop delay for /metrics: how late a timer that should fire every `resolutionMs` actually
// fires. Not perf_hooks.monitorEventLoopDelay: on Node 20 it records the time between its timer's
// runs, so the sampling interval itself is counted (an idle loop reported p50 = 20 ms at a 20 ms
// resolution), and its reset() throws away the sample that spans it (a stall right after a scrape
// went unseen). Here the schedule is kept apart from the histogram, so taking the figures loses
// nothing, and what is recorded is only the lateness.

import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks'

export interface LagFigures {
  /** Samples since the previous take(). */
  readonly count: number
  /** Seconds. */
  readonly mean: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export class EventLoopLag {
  readonly resolutionMs: number
  #h: RecordableHistogram = createHistogram()
  #timer: NodeJS.Timeout | undefined
  /** When the running timer should fire (performance.now() ms). */
  #due = 0

  constructor (resolutionMs = 10) {
    this.resolutionMs = resolutionMs
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.#due = performance.now() + this.resolutionMs
    this.#timer = setTimeout(() => { this.#tick() }, this.resolutionMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #tick (): void {
    const now = performance.now()
    // Timers fire on the loop's cached millisecond clock, so an on-time timer may run a fraction
    // of a millisecond "early": that is no delay. record() wants an integer >= 1 (ns).
    this.#h.record(Math.max(1, Math.round((now - this.#due) * 1e6)))
    this.#due = now + this.resolutionMs
    this.#timer?.refresh()
  }

  /** The delay since the previous take() (zeros when no sample), then starts over. */
  take (): LagFigures {
    const h = this.#h
    const s = (ns: number): number => (Number.isFinite(ns) && ns > 1 ? ns : 0) / 1e9
    const f = h.count === 0
      ? { count: 0, mean: 0, p50: 0, p99: 0, max: 0 }
      : { count: h.count, mean: s(h.mean), p50: s(h.percentile(50)), p99: s(h.percentile(99)), max: s(h.max) }
    h.reset()
    return f
  }
}
