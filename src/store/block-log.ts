// The block log as the DNS thread sees it: `push(event)` appends to a bounded in-memory queue and
// returns; nothing here waits on storage. A timer hands the queue to the writer worker every
// `batchMs` (sooner when a full batch is waiting), one batch in flight at a time. A failed batch
// (SQLITE_BUSY from another process's write lock, SQLITE_FULL, I/O errors) stays queued and is
// retried with backoff; new events queue behind it, and once the queue holds `queueMax` events
// new ones are dropped and counted (metric + a warning at most every 10 s). Writing resumes by
// itself when the fault clears. `close()` writes what is queued (bounded wait), then checkpoints.
// A crash of the process loses at most what was queued: about one batch interval.
//
// If the writer thread dies (a bug, out of memory), the batch it held goes back to the front of
// the queue and a new writer starts after the same backoff; a batch that three writers in a row
// died on is dropped and counted, so one poisoned batch cannot stop the log. A batch committed in
// the instant between its transaction and the writer's death is written again (a duplicate, never
// a loss).
//
// Live tail: subscribers get every pushed event synchronously (the SSE route filters and buffers).

import type { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import type { BlockEvent } from './block-event.js'
import type { FromWriter, ToWriter, WriterWorkerData } from './block-log-worker.js'
import type { RetentionLimits } from './block-writer.js'
import { EventBatchBuilder, STRIDE, type EventBatch } from './event-batch.js'
import { startWorker } from './worker-url.js'
import { threadTimes, type ThreadPriority, type ThreadTimes } from './thread-priority.js'
import { threadCpu } from './thread-cpu.js'

export interface BlockLogOptions {
  readonly path: string
  readonly synchronous: 'NORMAL' | 'FULL'
  readonly busyTimeoutMs: number
  readonly queueMax: number
  readonly batchMs: number
  readonly retention: RetentionLimits
  readonly log: Logger
  readonly now?: () => number
  /**
   * Largest batch per transaction (default 10,000, at most queueMax / 4). The batch in flight counts
   * against queueMax, so a batch as large as the queue made every event pushed during its write a
   * drop; a transaction costs about the same per event from 2,000 events up (bench/blocklog-writer.mjs).
   */
  readonly maxBatch?: number
  /** How often retention runs (default 5 min; the first run 10 s after open). */
  readonly retentionEveryMs?: number
  readonly checkpointEveryMs?: number
  /** How long close() waits for the last batches (default 5 s). */
  readonly closeTimeoutMs?: number
  /** Tests only: PRAGMA max_page_count on the writer's connection. */
  readonly maxPageCount?: number
  /** The writer thread's nice value (store.threadNice); left alone when undefined. */
  readonly threadNice?: number
  /** Tests only: every writer thread dies on its first write. */
  readonly testCrashOnWrite?: boolean
  /** At most one drop warning per this many ms (default 10 s). */
  readonly dropWarnEveryMs?: number
}

/** The last failed write attempt (or writer death): its SQLite code, message and time (ms). */
export interface BlockLogError { readonly code: string, readonly message: string, readonly at: number }

export interface BlockLogStats {
  /**
   * Whether the log can write, from the outcome of its write attempts: `failing` from a failed
   * attempt (SQLITE_FULL, SQLITE_BUSY, I/O error, a writer thread that died or cannot start) until
   * the next one succeeds; `stalled` when a write has been in flight longer than STALLED_MS.
   */
  readonly state: 'ok' | 'failing' | 'stalled'
  /** Events queued or in flight (failed batches waiting to be retried included). */
  readonly depth: number
  /** The bound of `depth` (store.queueMax): events pushed beyond it are dropped and counted. */
  readonly queueMax: number
  readonly written: number
  readonly dropped: number
  /** Failed batch writes (each retried) and writer deaths, since start. */
  readonly failures: number
  /** Failed attempts since the last successful write (0: the last attempt succeeded). */
  readonly consecutiveFailures: number
  /** When a batch was last committed (ms); undefined before the first. */
  readonly lastOkAt: number | undefined
  /** The last failure, kept after writing resumes (compare `at` with lastOkAt). */
  readonly lastError: BlockLogError | undefined
  /** How long the write in flight has been running (ms; 0: none). */
  readonly inflightMs: number
  /** When an event was last dropped (ms); undefined: never. */
  readonly lastDropAt: number | undefined
  /** Batches held back because the DNS thread needs its whole core and the writer shares it (DNS first). */
  readonly heldForDns: boolean
  /** The writer thread's time in write transactions since start: wall, on a CPU, and runnable but waiting for a CPU (ms; the last two 0 where the kernel does not tell). */
  readonly writer: { readonly busyMs: number, readonly cpuMs: number, readonly cpuWaitMs: number }
  readonly retentionDeleted: number
}

export type BlockSubscriber = (e: BlockEvent) => void

/** A write in flight for longer than this makes the log `stalled` (a hung disk, a lock never released). */
const STALLED_MS = 30_000
const BACKOFF_MIN_MS = 100
const BACKOFF_MAX_MS = 5000
const DROP_WARN_EVERY_MS = 10_000
/** The DNS thread on a CPU or waiting for one at least this share of an interval: it needs its whole core. */
const DNS_SATURATED = 0.9
/** The writer waited for a CPU at least this share of its recent write time: it shares a core. */
const WRITER_CONTENDED = 0.5
/**
 * While held, one probe of at most PROBE_EVENTS events goes to the writer every PROBE_EVERY_MS:
 * without writes the writer's wait share would never be measured again, and a writer that got a
 * core of its own (the competing work ended, the scheduler moved it) would stay held all flood.
 * A probe costs DNS, if the writer does share its core, a few ms of CPU a second.
 */
const PROBE_EVERY_MS = 1000
const PROBE_EVENTS = 256
/** A batch is dropped after this many writer threads died while writing it. */
const WRITER_DEATHS_PER_BATCH = 3

export class BlockLog {
  /** The writer thread; undefined between a writer's death and its replacement. */
  #worker: Worker | undefined
  readonly #data: WriterWorkerData
  readonly #o: BlockLogOptions
  readonly #log: Logger
  readonly #now: () => number
  readonly #maxBatch: number
  /** Sealed batches waiting for the writer, oldest first, then the one being filled. */
  #pending: EventBatch[] = []
  #pendingEvents = 0
  #building = new EventBatchBuilder()
  #inflight: EventBatch | undefined
  #seq = 0
  #sentAt = 0
  #written = 0
  #dropped = 0
  #droppedWarned = 0
  #lastDropWarn = 0
  #failures = 0
  #consecutiveFailures = 0
  #lastError: BlockLogError | undefined
  #lastOkAt: number | undefined
  #lastDropAt: number | undefined
  #busyMs = 0
  /** The DNS thread's CPU counters at the last tick, and when (performance.now()). */
  #dnsTimes: ThreadTimes | undefined
  #dnsTimesAt = 0
  /** Share of the writer's recent write time spent waiting for a CPU (moving average). */
  #writerWait = 0
  /** The CPU the writer's last write ended on, and the one the DNS thread was on at the last tick (-1: unknown). */
  #writerCpu = -1
  #dnsCpu = -1
  /** DNS first: batches are held while the DNS thread needs its whole core and the writer competes with it. */
  #held = false
  /** While held: when the last probe went (performance.now()), and the seq of the one in flight (0: none). */
  #probeAt = 0
  #probeSeq = 0
  #cpuMs = 0
  #cpuWaitMs = 0
  /** The writer's figures at the last drop warning, to say what it did since. */
  #warned = { busyMs: 0, cpuMs: 0, cpuWaitMs: 0, at: 0 }
  #retentionDeleted = 0
  #retryTimer: NodeJS.Timeout | undefined
  #restartTimer: NodeJS.Timeout | undefined
  /** The batch the last writer died on, and how many writers in a row died on it. */
  #deadlyBatch: EventBatch | undefined
  #deaths = 0
  #soon: NodeJS.Immediate | undefined
  readonly #timers: NodeJS.Timeout[] = []
  readonly #subscribers = new Set<BlockSubscriber>()
  readonly #idleWaiters: Array<() => void> = []
  #closed = false
  #priority: ThreadPriority | undefined
  #onClosed: (() => void) | undefined

  private constructor (worker: Worker, priority: ThreadPriority | undefined, o: BlockLogOptions, data: WriterWorkerData) {
    this.#data = data
    this.#priority = priority
    this.#o = o
    this.#log = o.log
    this.#now = o.now ?? Date.now
    this.#maxBatch = Math.max(1, Math.min(o.maxBatch ?? 10_000, Math.floor(o.queueMax / 4)))
    this.#attach(worker)
    const every = (ms: number, fn: () => void): void => { const t = setInterval(fn, ms); t.unref(); this.#timers.push(t) }
    every(o.batchMs, () => { this.#checkDns(); this.#send() })
    every(o.checkpointEveryMs ?? 30_000, () => this.#post({ type: 'checkpoint' }))
    const retentionEvery = o.retentionEveryMs ?? 300_000
    const first = setTimeout(() => this.runRetention(), Math.min(10_000, retentionEvery))
    first.unref()
    this.#timers.push(first)
    every(retentionEvery, () => this.runRetention())
  }

  /** Starts the writer thread on `o.path` (already created and migrated); rejects if it cannot open. */
  static open (o: BlockLogOptions): Promise<BlockLog> {
    const data: WriterWorkerData = {
      path: o.path, synchronous: o.synchronous, busyTimeoutMs: o.busyTimeoutMs, maxPageCount: o.maxPageCount, nice: o.threadNice, crashOnWrite: o.testCrashOnWrite
    }
    return startWorker(import.meta.url, 'block-log-worker', data).then(({ worker, ready }) => new BlockLog(worker, ready.priority, o, data))
  }

  /** The writer thread's id and nice value, as it set them (or why it could not). */
  get priority (): ThreadPriority | undefined { return this.#priority }

  #attach (worker: Worker): void {
    this.#worker = worker
    worker.on('message', (m: FromWriter) => { if (this.#worker === worker) this.#onMessage(m) })
    worker.on('error', err => { this.#died(worker, err.message) })
    worker.on('exit', code => { this.#died(worker, `exited with code ${code}`) })
    worker.unref()
  }

  /** The writer thread is gone: keep its batch (unless it is the third writer to die on it) and start another. */
  #died (worker: Worker, why: string): void {
    if (this.#worker !== worker || this.#closed) return
    this.#worker = undefined
    this.#failures++
    this.#consecutiveFailures++
    this.#lastError = { code: 'WRITER_DIED', message: `writer thread died: ${why}`, at: this.#now() }
    const batch = this.#inflight
    this.#inflight = undefined
    if (batch !== undefined) {
      this.#deaths = batch === this.#deadlyBatch ? this.#deaths + 1 : 1
      this.#deadlyBatch = batch
      if (this.#deaths >= WRITER_DEATHS_PER_BATCH) {
        this.#deadlyBatch = undefined
        this.#dropped += batch.n
        this.#log.error({ events: batch.n, deaths: this.#deaths }, 'block log batch dropped: writer threads kept dying on it')
      } else {
        this.#pending.unshift(batch)
        this.#pendingEvents += batch.n
      }
    }
    const delay = this.#backoff()
    this.#log.error({ err: why, queued: this.#depth(), restartMs: delay }, 'block log writer thread died; events stay queued and a new writer starts')
    this.#scheduleRestart(delay)
  }

  #scheduleRestart (delay: number): void {
    this.#restartTimer = setTimeout(() => { this.#restartTimer = undefined; this.#restart() }, delay)
    this.#restartTimer.unref()
  }

  #restart (): void {
    if (this.#closed) return
    startWorker(import.meta.url, 'block-log-worker', this.#data).then(({ worker, ready }) => {
      if (this.#closed) { void worker.terminate(); return }
      this.#priority = ready.priority
      this.#attach(worker)
      this.#log.info({ queued: this.#depth() }, 'block log writer thread restarted')
      this.#send()
    }, (err: Error) => {
      if (this.#closed) return
      this.#consecutiveFailures++
      this.#failures++
      this.#lastError = { code: 'WRITER_START', message: `writer thread cannot start: ${err.message}`, at: this.#now() }
      const delay = this.#backoff()
      this.#log.error({ err, restartMs: delay }, 'block log writer thread cannot start; trying again')
      this.#scheduleRestart(delay)
    })
  }

  /** Wait before the next attempt after `#consecutiveFailures` failures in a row. */
  #backoff (): number {
    return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(10, this.#consecutiveFailures - 1))
  }

  /** Queues one event; never blocks. Returns false when it was dropped (queue full or closed). */
  push (e: BlockEvent): boolean {
    for (const fn of this.#subscribers) {
      try { fn(e) } catch { /* a subscriber's problem never reaches DNS */ }
    }
    if (this.#closed || this.#depth() >= this.#o.queueMax) {
      this.#dropped++
      this.#warnDrops()
      return false
    }
    this.#building.push(e)
    if (this.#building.length >= this.#maxBatch) {
      this.#seal()
      if (this.#inflight === undefined && this.#soon === undefined) this.#soon = setImmediate(() => { this.#soon = undefined; this.#send() })
    }
    return true
  }

  /** Live tail: `fn` sees every event as it is pushed. Returns the unsubscribe function. */
  subscribe (fn: BlockSubscriber): () => void {
    this.#subscribers.add(fn)
    return () => { this.#subscribers.delete(fn) }
  }

  get stats (): BlockLogStats {
    const inflightMs = this.#inflight === undefined ? 0 : Math.max(0, this.#now() - this.#sentAt)
    return {
      state: this.#consecutiveFailures > 0 ? 'failing' : inflightMs > STALLED_MS ? 'stalled' : 'ok',
      depth: this.#depth(),
      queueMax: this.#o.queueMax,
      written: this.#written,
      dropped: this.#dropped,
      failures: this.#failures,
      consecutiveFailures: this.#consecutiveFailures,
      lastOkAt: this.#lastOkAt,
      lastError: this.#lastError,
      inflightMs,
      lastDropAt: this.#lastDropAt,
      heldForDns: this.#held,
      writer: { busyMs: this.#busyMs, cpuMs: this.#cpuMs, cpuWaitMs: this.#cpuWaitMs },
      retentionDeleted: this.#retentionDeleted
    }
  }

  /** Resolves once everything queued before the call is written (or `timeoutMs` passed: false). */
  flush (timeoutMs = 10_000): Promise<boolean> {
    if (this.#depth() === 0) return Promise.resolve(true)
    this.#send()
    return new Promise(resolve => {
      const t = setTimeout(() => { resolve(false) }, timeoutMs)
      this.#idleWaiters.push(() => { clearTimeout(t); resolve(true) })
    })
  }

  /** Starts a retention pass in the writer (age, rows, size); it runs in small steps. */
  runRetention (): void {
    this.#post({ type: 'retain', now: this.#now(), limits: this.#o.retention })
  }

  /** Tests only: runs a PRAGMA on the writer's connection. */
  pragma (sql: string): void { this.#post({ type: 'pragma', sql }) }

  /** Tests only: the writer thread dies now, as one with a bug would. */
  crashWriter (): void { this.#post({ type: 'crash' }) }

  /** Writes what is queued (waits at most closeTimeoutMs), then checkpoints and stops the writer. */
  async close (): Promise<void> {
    if (this.#closed) return
    const written = await this.flush(this.#o.closeTimeoutMs ?? 5000)
    this.#closed = true
    for (const t of this.#timers) clearInterval(t)
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer)
    if (this.#soon !== undefined) clearImmediate(this.#soon)
    this.#subscribers.clear()
    const lost = this.#depth()
    if (!written || lost > 0) this.#log.error({ lost, lastError: this.#lastError }, 'block log closed with events not written')
    // Totals since start; drops after the last periodic warning are only counted here.
    const totals = { written: this.#written, dropped: this.#dropped, failures: this.#failures }
    if (this.#dropped > 0) this.#log.warn(totals, 'block log closed; events were dropped while the queue was full')
    else this.#log.info(totals, 'block log closed')
    const worker = this.#worker
    if (worker === undefined) return // it died and no other has started: nothing to close
    const closed = new Promise<void>(resolve => { this.#onClosed = resolve })
    this.#post({ type: 'close' })
    const t = setTimeout(() => { this.#onClosed?.() }, 5000)
    await closed
    clearTimeout(t)
    await worker.terminate()
  }

  /** To the writer thread; dropped while there is none (checkpoints and retention come again). */
  #post (m: ToWriter): void {
    if (this.#closed && m.type !== 'close') return
    this.#worker?.postMessage(m)
  }

  /** Events queued or in flight. */
  #depth (): number { return this.#pendingEvents + this.#building.length + (this.#inflight?.n ?? 0) }

  /** Closes the batch being filled and queues it. */
  #seal (): void {
    if (this.#building.length === 0) return
    const b = this.#building.done()
    this.#building = new EventBatchBuilder()
    this.#pending.push(b)
    this.#pendingEvents += b.n
  }

  /**
   * DNS first. The writer runs at a lower priority (store.threadNice) but still takes its share of
   * a contended core, so that other work on that core cannot starve it while DNS has room. When
   * the DNS thread itself used its whole core over the last interval and the writer was competing
   * with it (its writes mostly waited for a CPU, and its last one ended on the CPU DNS runs on), no
   * batch goes to the writer until DNS has room again: events queue, and beyond queueMax they are
   * dropped and counted (cause: DNS saturated). A writer that waits on another CPU waits for other
   * work, not DNS: not held. While held, a small probe batch goes every PROBE_EVERY_MS and measures
   * the writer afresh: the hold ends as soon as a probe finds it not competing (on another CPU, or
   * not waiting). Runs once per batch interval, never per event.
   */
  #checkDns (): void {
    const t = threadTimes()
    const at = performance.now()
    const prev = this.#dnsTimes
    const prevAt = this.#dnsTimesAt
    this.#dnsTimes = t
    this.#dnsTimesAt = at
    if (t === undefined || prev === undefined || at <= prevAt) { this.#held = false; return }
    // On a CPU or runnable and waiting for one: how much of the interval DNS wanted a core.
    const dnsShare = (t.cpuNs - prev.cpuNs + t.waitNs - prev.waitNs) / 1e6 / (at - prevAt)
    this.#dnsCpu = threadCpu()
    const held = dnsShare >= DNS_SATURATED && this.#competing()
    if (held !== this.#held) this.#log.debug({ held, dnsShare, writerWait: this.#writerWait, writerCpu: this.#writerCpu, dnsCpu: this.#dnsCpu }, held ? 'block log held: DNS needs its core' : 'block log resumed: DNS has room')
    if (held && !this.#held) this.#probeAt = at
    this.#held = held
  }

  /** Whether the writer competes with DNS for its core: its writes mostly wait for a CPU, on DNS's (where known). */
  #competing (): boolean {
    return this.#writerWait >= WRITER_CONTENDED && (this.#writerCpu < 0 || this.#dnsCpu < 0 || this.#writerCpu === this.#dnsCpu)
  }

  #send (): void {
    if (this.#inflight !== undefined || this.#retryTimer !== undefined || this.#worker === undefined || this.#closed) return
    // Held for DNS, unless someone waits for the queue to drain (flush, close); then only a probe
    // now and then.
    const probe = this.#held && this.#idleWaiters.length === 0
    if (probe && performance.now() - this.#probeAt < PROBE_EVERY_MS) return
    if (this.#pending.length === 0) this.#seal()
    const batch = probe ? this.#probeBatch() : this.#pending.shift()
    if (batch === undefined) return
    this.#pendingEvents -= batch.n
    this.#inflight = batch
    this.#sentAt = this.#now()
    this.#post({ type: 'write', seq: ++this.#seq, batch })
    if (probe) {
      this.#probeAt = performance.now()
      this.#probeSeq = this.#seq
    }
  }

  /**
   * The oldest PROBE_EVENTS queued events, taken off the front of the queue (the rest of their batch
   * stays first, so order is kept). The probe shares its batch's strings: the writer only looks up
   * the ones its events use.
   */
  #probeBatch (): EventBatch | undefined {
    const first = this.#pending[0]
    if (first === undefined || first.n <= PROBE_EVENTS) return this.#pending.shift()
    const cut = PROBE_EVENTS * STRIDE
    this.#pending[0] = { n: first.n - PROBE_EVENTS, nums: first.nums.slice(cut), strings: first.strings }
    return { n: PROBE_EVENTS, nums: first.nums.slice(0, cut), strings: first.strings }
  }

  #onMessage (m: FromWriter): void {
    switch (m.type) {
      case 'written': {
        if (m.seq !== this.#seq) return
        this.#spent(m, m.seq === this.#probeSeq)
        this.#written += m.n
        this.#inflight = undefined
        this.#deadlyBatch = undefined
        this.#lastOkAt = this.#now()
        const waiting = this.#pendingEvents + this.#building.length
        if (this.#consecutiveFailures > 0) {
          this.#log.info({ failures: this.#consecutiveFailures, lastError: this.#lastError, queued: this.#depth() }, 'block log writes resumed')
          this.#consecutiveFailures = 0
        }
        // Send the next batch at once when one is full, someone waits for the queue to drain, or
        // the writer is behind (this batch took a whole interval): waiting for the timer would
        // leave the writer idle while events pile up.
        if (this.#pending.length > 0 || (waiting > 0 &&
          (this.#idleWaiters.length > 0 || this.#now() - this.#sentAt >= this.#o.batchMs))) this.#send()
        else if (waiting === 0) this.#wakeIdle()
        break
      }
      case 'failed': {
        if (m.seq !== this.#seq) return
        this.#spent(m, m.seq === this.#probeSeq)
        this.#failures++
        this.#consecutiveFailures++
        this.#lastError = { code: m.code, message: m.message, at: this.#now() }
        // Keep the batch: it goes back to the front of the queue and is written again later.
        const batch = this.#inflight
        this.#inflight = undefined
        if (batch !== undefined) {
          this.#pending.unshift(batch)
          this.#pendingEvents += batch.n
        }
        const delay = this.#backoff()
        if (this.#consecutiveFailures === 1 || this.#consecutiveFailures % 20 === 0) {
          this.#log.warn({ code: m.code, err: m.message, queued: this.#depth(), retryMs: delay }, 'block log write failed; events stay queued and are retried')
        }
        this.#retryTimer = setTimeout(() => { this.#retryTimer = undefined; this.#send() }, delay)
        this.#retryTimer.unref()
        break
      }
      case 'retained':
        this.#retentionDeleted += m.deleted
        if (m.deleted > 0 || m.names > 0) this.#log.info({ deleted: m.deleted, names: m.names, ms: Math.round(m.ms) }, 'block log retention')
        if (m.overBytes > 0) {
          this.#log.warn({ overBytes: m.overBytes, maxBytes: this.#o.retention.maxBytes },
            'block log over store.retention.maxBytes after retention: the last hour of events is kept whatever its size')
        }
        break
      case 'retain-failed':
        this.#log.warn({ code: m.code, err: m.message }, 'block log retention failed; it runs again later')
        break
      case 'closed':
        this.#onClosed?.()
        break
      default:
        break
    }
  }

  #wakeIdle (): void {
    const waiters = this.#idleWaiters.splice(0)
    for (const w of waiters) w()
  }

  #warnDrops (): void {
    const t = this.#now()
    this.#lastDropAt = t
    if (t - this.#lastDropWarn < (this.#o.dropWarnEveryMs ?? DROP_WARN_EVERY_MS)) return
    this.#lastDropWarn = t
    // What the writer did since the last warning says why: failing writes, or writes that spent
    // their time waiting for a CPU (the core is saturated: DNS and anything else come first), or
    // a writer on a CPU all along that is still slower than the events come in.
    const w = this.#warned
    const busy = this.#busyMs - w.busyMs
    const waitShare = busy > 0 ? (this.#cpuWaitMs - w.cpuWaitMs) / busy : 0
    const cause = this.#consecutiveFailures > 0
      ? 'store failing'
      : this.#held ? 'DNS saturated: the writer is held while DNS needs its core' : waitShare >= 0.5 ? 'CPU saturated: the writer waits for a core' : 'writer slower than the event rate'
    this.#log.warn({
      dropped: this.#dropped - this.#droppedWarned,
      total: this.#dropped,
      queueMax: this.#o.queueMax,
      cause,
      lastError: this.#consecutiveFailures > 0 ? this.#lastError : undefined,
      writerBusyShare: w.at > 0 && t > w.at ? Math.round(busy / (t - w.at) * 100) / 100 : undefined,
      writerCpuWaitShare: Math.round(waitShare * 100) / 100
    }, 'block log queue full: events dropped')
    this.#droppedWarned = this.#dropped
    this.#warned = { busyMs: this.#busyMs, cpuMs: this.#cpuMs, cpuWaitMs: this.#cpuWaitMs, at: t }
  }

  /**
   * Adds one write's time to the writer's totals and its wait estimate. After a probe (sent while
   * held) the hold ends at once when the writer no longer competes with DNS: its write ended on
   * another CPU, or probes that did not wait brought the estimate under WRITER_CONTENDED (a single
   * short write can slip in without waiting on a contended core, so one does not decide alone).
   */
  #spent (m: { ms: number, cpuMs: number, waitMs: number, cpu: number }, probe: boolean): void {
    this.#busyMs += m.ms
    this.#writerCpu = m.cpu
    if (m.waitMs >= 0 && m.ms > 0) this.#writerWait = 0.7 * this.#writerWait + 0.3 * Math.min(1, m.waitMs / m.ms)
    if (probe && this.#held && !this.#competing()) {
      this.#held = false
      this.#log.debug({ writerWait: this.#writerWait, writerCpu: m.cpu, dnsCpu: this.#dnsCpu, probeMs: m.ms }, 'block log resumed: a probe found the writer not competing with DNS')
    }
    if (probe) this.#probeSeq = 0
    if (m.cpuMs >= 0) this.#cpuMs += m.cpuMs
    if (m.waitMs >= 0) this.#cpuWaitMs += m.waitMs
  }
}
