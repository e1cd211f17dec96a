// Runs the scheduled resolutions: each enabled pack's probe names (learned as 'probe') and the
// guard's everyday allowed names (fed to the guard), every learning.probeIntervalSeconds, the first
// run soon after start. It only queues names: the Learner's bounded queue and rate do the work, so
// a run never adds load beyond learning.resolvesPerSecond. The two kinds wait in separate rings of
// the Learner (the ~660 everyday names cannot push out the ~110 probe names), which resolves the
// guard's names first, so the addresses they share are known before the probe names' addresses
// are judged.

import type { Logger } from 'pino'
import type { Learner } from './learner.js'

export interface ProbeSchedulerDeps {
  readonly learner: Pick<Learner, 'probe' | 'seedGuard'>
  /** Each enabled category's probe names, read at every run (a reload may change them). */
  readonly probeNames: () => ReadonlyMap<string, readonly string[]>
  /** Allowed everyday names whose addresses the guard should know (read at every run). */
  readonly guardNames: () => readonly string[]
  readonly intervalSeconds: number
  /** Delay of the first run after start (default 10 s). */
  readonly firstDelayMs?: number
  readonly log: Logger
}

export class ProbeScheduler {
  readonly #deps: ProbeSchedulerDeps
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #runs = 0

  constructor (deps: ProbeSchedulerDeps) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'learn-probes' })
  }

  /** Runs completed (queued) so far. */
  get runs (): number { return this.#runs }

  start (): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#arm(this.#deps.firstDelayMs ?? 10_000)
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Queues one run now (the timer's job; also for an admin's "probe now"). */
  runNow (): void {
    try {
      const seeds = this.#deps.guardNames()
      const probes = this.#deps.probeNames()
      this.#deps.learner.seedGuard(seeds)
      this.#deps.learner.probe(probes)
      this.#runs++
      let n = 0
      for (const l of probes.values()) n += l.length
      this.#log.debug({ guardNames: seeds.length, probeNames: n, categories: probes.size }, 'probe names queued')
    } catch (err) {
      this.#log.warn({ err }, 'queuing the probe names failed')
    }
  }

  #arm (ms: number): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.runNow()
      this.#arm(this.#deps.intervalSeconds * 1000)
    }, ms)
    this.#timer.unref()
  }
}
