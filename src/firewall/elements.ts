// Incremental sync of the learned sets' elements (issue 24 item 3): the learner's add/remove calls
// (LearnedSink) are collected and written at most about once a second as ONE `nft -f -` batch of
// `add element` / `delete element` lines, never by reloading the table. The caller never waits:
// add() and remove() only touch a map; nft runs in the background.
//
// Removes do not wait: a remove (the guard releasing an address an allowed name now uses) starts a
// batch at once (when none runs; else right after it), taking the pending adds with it, so a
// client's first connection to a site sharing a just-held address is not rejected for a second.
// Adds wait up to flushMs to be batched.
//
// Coalescing: one pending change per (set, address), the later call wins. An add then a remove in
// the same window becomes a remove (the element may be in the kernel from an earlier batch), a
// remove then an add becomes an add.
//
// What a batch writes, per set (every line idempotent, so a batch never fails for an element that
// is or is not already there):
//   remove: add element {a}; delete element {a}            (nft has no "delete if present")
//   add:    add element {a}; delete element {a}; add element {a timeout Ns}
//           (an `add` of an element already there keeps its old timeout on older kernels: the
//           delete makes a re-learned address's new timeout stick; all in one transaction, so no
//           packet sees the address missing)
//
// Sets: after a full sync that succeeded and named the learned sets it rendered (afterFullSync's
// `sets`), changes to other sets (a category the table does not carry) are refused and counted,
// never put in a batch: nft would fail the whole batch for one missing set.
//
// Failure: a batch is one transaction; when it fails (no table yet, no nft) nothing of it is applied. Its changes are dropped, not retried in a loop: the
// failure is counted with its error, and `requestFullSync` (at most once a minute) asks for a full
// table sync, which writes the learned sets from the store (the source of truth) anyway.
//
// Full table syncs (firewall/sync.ts) replace the table, learned sets included. To keep an element
// batch from landing in the middle of one, the full sync brackets its work:
//   const token = elements.beginFullSync()   // before reading the store and rendering the script
//   ...render + nft -f...
//   elements.afterFullSync(token, ok, sets) // after nft finished; sets: the learned set names rendered
// Between the two, no batch of adds is started (one already running finishes first: beginFullSync's
// promise `token.idle` resolves when it has). Removes are written at once all the same, and stay
// queued: the full sync's script may have been rendered before them, so they are written again
// after it. With ok, the changes queued before beginFullSync are dropped (the script carried them);
// changes queued later are kept and written by the next batch (at once when one is a remove).

import { spawn } from 'node:child_process'
import type { Logger } from 'pino'
import type { FirewallConfig } from '../config/types.js'
import type { Family, LearnedSink } from '../learn/types.js'
import { isAddress, learnedSetName, timeoutText } from './nftables.js'

export interface ElementSyncState {
  /** Batches run (one nft spawn each). */
  batches: number
  /** Elements added (or refreshed) and removed by batches that succeeded. */
  added: number
  removed: number
  /** Batches nft refused, and the elements they carried (dropped). */
  failures: number
  droppedElements: number
  /** Changes refused: the pending map was full, the address was not an address, or the set is not in the table. */
  refused: number
  lastError: string | undefined
  lastOkAt: number | undefined
}

export interface ElementSyncDeps {
  /** The firewall settings in force (a reload applies): table name, and whether sync is on. */
  readonly firewall: () => FirewallConfig
  readonly log: Logger
  readonly now: () => number
  /** Asks the owner for a full table sync after a failed batch (called at most once a minute). */
  readonly requestFullSync?: () => void
  /** The nft command and leading arguments; default ['nft'] (tests: ['ip', 'netns', 'exec', NS, 'nft']). */
  readonly command?: readonly string[]
  /** Wait between the first pending change and its batch; default 1000 ms. */
  readonly flushMs?: number
  /** Distinct pending (set, address) changes kept at most; default 100000. */
  readonly maxPending?: number
  /** An nft batch taking longer is killed and counted as failed; default 30000 ms. */
  readonly nftTimeoutMs?: number
}

/** What a full table sync gets from beginFullSync and hands back to afterFullSync. */
export interface FullSyncToken {
  readonly seq: number
  /** Resolves when no element batch is running any more. */
  readonly idle: Promise<void>
}

export interface ElementChange { readonly set: string, readonly address: string, readonly timeout: string | undefined, readonly seq: number }

/** Lines are split so that no single nft command carries more than this many elements. */
const CHUNK = 500
const FULL_SYNC_REQUEST_GAP_MS = 60_000
/** A full sync that never calls afterFullSync does not hold batches back for longer than this. */
const MAX_PAUSE_MS = 120_000

export class ElementSync implements LearnedSink {
  readonly state: ElementSyncState = { batches: 0, added: 0, removed: 0, failures: 0, droppedElements: 0, refused: 0, lastError: undefined, lastOkAt: undefined }
  readonly #deps: ElementSyncDeps
  readonly #log: Logger
  readonly #flushMs: number
  readonly #maxPending: number
  /** Key `set address` → the latest change. */
  #pending = new Map<string, ElementChange>()
  #seq = 0
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #pausedUntil = 0
  #lastFullSyncRequest = -Infinity
  #closed = false
  /** When the timer fires (performance.now()), to bring it forward for a remove. */
  #timerDue = Infinity
  /** The learned sets the last successful full sync rendered (undefined: not told yet, all are taken). */
  #inTable: ReadonlySet<string> | undefined
  /** Removes already written while a full sync ran (written again after it). */
  #sentInPause = new WeakSet<ElementChange>()

  constructor (deps: ElementSyncDeps) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'firewall-elements' })
    this.#flushMs = deps.flushMs ?? 1000
    this.#maxPending = deps.maxPending ?? 100_000
  }

  /** Pending changes not yet written. */
  get pending (): number { return this.#pending.size }

  add (category: string, address: string, family: Family, timeoutSeconds: number): void {
    const timeout = timeoutText(timeoutSeconds)
    if (timeout === undefined) { this.remove(category, address, family); return }
    this.#queue(learnedSetName(category, family), address, family, timeout)
  }

  remove (category: string, address: string, family: Family): void {
    this.#queue(learnedSetName(category, family), address, family, undefined)
  }

  #queue (set: string, address: string, family: Family, timeout: string | undefined): void {
    if (this.#closed || !this.#deps.firewall().sync) return
    if (!isAddress(address, family) || (this.#inTable !== undefined && !this.#inTable.has(set))) { this.state.refused++; return }
    const key = `${set} ${address}`
    if (this.#pending.size >= this.#maxPending && !this.#pending.has(key)) { this.state.refused++; return }
    this.#pending.delete(key)
    this.#pending.set(key, { set, address, timeout, seq: ++this.#seq })
    this.#schedule(timeout === undefined ? 0 : this.#flushMs)
  }

  /** The wait before the next batch: none when a remove is pending (not yet written), else flushMs. */
  #nextWait (): number {
    for (const c of this.#pending.values()) if (c.timeout === undefined && !this.#sentInPause.has(c)) return 0
    return this.#flushMs
  }

  /** Starts the timer, or brings it forward; nothing while a batch runs (it schedules when done). */
  #schedule (ms: number): void {
    if (this.#running !== undefined || this.#closed) return
    const due = performance.now() + ms
    if (this.#timer !== undefined) {
      if (due >= this.#timerDue) return
      clearTimeout(this.#timer)
    }
    this.#timerDue = due
    this.#timer = setTimeout(() => { this.#timer = undefined; this.#timerDue = Infinity; void this.#flush() }, ms)
    this.#timer.unref()
  }

  /** Writes the pending changes now (after a running batch); resolves when nft has finished. Never rejects. */
  async flushNow (): Promise<void> {
    if (this.#timer !== undefined) { clearTimeout(this.#timer); this.#timer = undefined; this.#timerDue = Infinity }
    while (this.#running !== undefined) await this.#running
    await this.#flush(true)
  }

  /** Call before a full table sync reads the store; see the header. */
  beginFullSync (): FullSyncToken {
    this.#pausedUntil = this.#deps.now() + MAX_PAUSE_MS
    const running = this.#running
    return { seq: this.#seq, idle: running ?? Promise.resolve() }
  }

  /**
   * Call after the full sync's nft finished (ok: it succeeded), with the names of the learned sets
   * its script rendered (`learnedSetName` of each category, both families); see the header. After
   * a successful one, changes to other sets are refused.
   */
  afterFullSync (token: FullSyncToken, ok: boolean, sets?: Iterable<string>): void {
    this.#pausedUntil = 0
    if (ok && sets !== undefined) this.#inTable = new Set(sets)
    const inTable = this.#inTable
    for (const [key, c] of this.#pending) {
      if (ok && c.seq <= token.seq) this.#pending.delete(key)
      else if (inTable !== undefined && !inTable.has(c.set)) { this.#pending.delete(key); this.state.refused++ }
    }
    this.#sentInPause = new WeakSet()
    if (this.#pending.size > 0) this.#schedule(this.#nextWait())
  }

  /** Stops the timer and writes what is pending (when sync is still on). */
  async close (): Promise<void> {
    if (this.#closed) return
    await this.flushNow()
    this.#closed = true
    if (this.#timer !== undefined) { clearTimeout(this.#timer); this.#timer = undefined; this.#timerDue = Infinity }
  }

  #flush (force = false): Promise<void> {
    if (this.#running !== undefined) return this.#running
    if (this.#pending.size === 0) return Promise.resolve()
    const firewall = this.#deps.firewall()
    if (!firewall.sync) { this.#pending.clear(); return Promise.resolve() }
    let changes: ElementChange[]
    let keep = false
    if (!force && this.#deps.now() < this.#pausedUntil) {
      // A full sync runs: adds wait for it; removes not yet written go now and stay queued (see the header).
      changes = [...this.#pending.values()].filter(c => c.timeout === undefined && !this.#sentInPause.has(c))
      if (changes.length === 0) { this.#schedule(this.#flushMs); return Promise.resolve() }
      for (const c of changes) this.#sentInPause.add(c)
      keep = true
    } else {
      changes = [...this.#pending.values()]
      this.#pending = new Map()
    }
    this.#running = this.#apply(firewall.table, changes, keep).finally(() => {
      this.#running = undefined
      if (this.#pending.size > 0) this.#schedule(this.#nextWait())
    })
    return this.#running
  }

  /** One batch; `kept`: its changes stay queued (written during a full sync), so a failure drops nothing. */
  #apply (table: string, changes: readonly ElementChange[], kept = false): Promise<void> {
    const script = batchScript(table, changes)
    const state = this.state
    state.batches++
    const [cmd, ...args] = this.#deps.command ?? ['nft']
    return new Promise(resolve => {
      const nft = spawn(cmd, [...args, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] })
      const killer = setTimeout(() => { err += 'nft timed out; '; nft.kill('SIGKILL') }, this.#deps.nftTimeoutMs ?? 30_000)
      killer.unref()
      let err = ''
      nft.stderr.on('data', d => { if (err.length < 4096) err += String(d) })
      nft.on('error', e => { err += e.message })
      nft.on('close', code => {
        clearTimeout(killer)
        if (code === 0) {
          let added = 0
          for (const c of changes) if (c.timeout !== undefined) added++
          state.added += added
          state.removed += changes.length - added
          state.lastOkAt = this.#deps.now()
          state.lastError = undefined
          this.#log.debug({ added, removed: changes.length - added }, 'learned set elements written')
        } else {
          state.failures++
          if (!kept) state.droppedElements += changes.length
          state.lastError = err.trim().split('\n').slice(0, 5).join(' | ') || `nft exited with ${String(code)}`
          this.#log.error({ err: state.lastError, elements: changes.length }, 'learned set element batch failed; its changes wait for the next full table sync')
          const now = this.#deps.now()
          if (this.#deps.requestFullSync !== undefined && now - this.#lastFullSyncRequest >= FULL_SYNC_REQUEST_GAP_MS) {
            this.#lastFullSyncRequest = now
            try { this.#deps.requestFullSync() } catch (e) { this.#log.error({ err: e }, 'requestFullSync threw') }
          }
        }
        resolve()
      })
      nft.stdin.on('error', () => {})
      nft.stdin.end(script)
    })
  }
}

/** The nft batch for a list of changes (exported for tests and debugging). */
export function batchScript (table: string, changes: readonly ElementChange[]): string {
  const bySet = new Map<string, { add: ElementChange[], remove: ElementChange[] }>()
  for (const c of changes) {
    let s = bySet.get(c.set)
    if (s === undefined) bySet.set(c.set, s = { add: [], remove: [] })
    if (c.timeout === undefined) s.remove.push(c)
    else s.add.push(c)
  }
  const lines: string[] = []
  for (const [set, { add, remove }] of bySet) {
    const at = `inet ${table} ${set}`
    const all = [...remove, ...add]
    for (let i = 0; i < all.length; i += CHUNK) {
      const plain = all.slice(i, i + CHUNK).map(c => c.address).join(', ')
      lines.push(`add element ${at} { ${plain} }`, `delete element ${at} { ${plain} }`)
    }
    for (let i = 0; i < add.length; i += CHUNK) {
      lines.push(`add element ${at} { ${add.slice(i, i + CHUNK).map(c => `${c.address} timeout ${c.timeout as string}`).join(', ')} }`)
    }
  }
  return lines.join('\n') + '\n'
}
