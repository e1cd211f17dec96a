// The daemon's SQLite files, opened together at start and closed together: the policy file
// (policy.sqlite: custom rules, category overrides, audit log), the block log (egressd.sqlite) with
// its writer and search threads. Damage or a missing file disables the part it hits, loudly, never
// DNS: readiness and the status say what is unavailable.

import type { Logger } from 'pino'
import type { Config } from '../config/types.js'
import type { PolicyInputs } from '../policy/build.js'
import { BlockLog } from './block-log.js'
import { BlockSearch } from './block-reader.js'
import { CustomPolicy } from './custom-policy.js'
import { openDatabase, type Db } from './db.js'
import { openPolicyStore, policyPath, type PolicyStoreStatus } from './policy-db.js'

/**
 * Block-log writer figures for /metrics, status and readiness: what the last write attempts did
 * (state, last success, last error with its code, failures in a row), the queue (failed batches
 * waiting for a retry included) and its bound, and what was written and dropped.
 */
export interface BlockLogFigures {
  readonly queueDepth: number
  readonly dropped: number
  readonly written?: number
  /** ok; failing (the last write attempt failed, until one succeeds); stalled (a write in flight too long). */
  readonly state?: 'ok' | 'failing' | 'stalled'
  readonly queueMax?: number
  readonly failures?: number
  readonly consecutiveFailures?: number
  /** ms */
  readonly lastOkAt?: number
  readonly lastError?: { readonly code: string, readonly message: string, readonly at: number }
  /** ms */
  readonly lastDropAt?: number
  /** Batches held back while DNS needs its whole core (DNS first): drops then are saturation. */
  readonly heldForDns?: boolean
  /** The writer thread's time in writes (ms): wall, on a CPU, runnable but waiting for a CPU. */
  readonly writer?: { readonly busyMs: number, readonly cpuMs: number, readonly cpuWaitMs: number }
}

export interface StoresDeps {
  readonly log: Logger
  readonly now: () => number
  /** Rebuilds the policy with changed custom rules or overrides (the policy manager's update). */
  readonly apply: (inputs: PolicyInputs, reason: string) => void
}

export class Stores {
  /** The policy file; undefined when it cannot be opened at all. */
  readonly policyDb: Db | undefined
  /** Custom rules, category overrides and the audit log; undefined when the policy file is unavailable. */
  readonly customPolicy: CustomPolicy | undefined
  /** The block log's read-write connection on the main thread; undefined when it could not be opened. */
  readonly db: Db | undefined
  readonly #policyPath: string
  readonly #policyError: string | undefined
  #blockLog: BlockLog | undefined
  #blockSearch: BlockSearch | undefined

  private constructor (config: Config, deps: StoresDeps) {
    this.#policyPath = policyPath(config.dataDir)
    // The policy file first: on the first start after the split it takes the policy rows out of the
    // block log, whose migration 5 then drops their tables (and refuses to while rows are left).
    const policyStore = openPolicyStore({
      path: this.#policyPath,
      blockLogPath: config.store.path,
      synchronous: config.store.synchronous,
      busyTimeoutMs: config.store.busyTimeoutMs,
      log: deps.log,
      now: deps.now
    })
    this.policyDb = policyStore.db
    this.#policyError = policyStore.error
    this.customPolicy = this.policyDb === undefined ? undefined : openCustomPolicy(this.policyDb, deps)
    this.db = openBlockLogDb(config, deps)
  }

  /** Opens both files and starts the block-log threads. Throws only for programming errors: damage is logged and survived. */
  static async open (config: Config, deps: StoresDeps): Promise<Stores> {
    const s = new Stores(config, deps)
    await s.#startBlockLog(config, deps)
    return s
  }

  /** The policy file's state for the status and readiness: complete unless rows were lost or it is unavailable. */
  get policyStore (): PolicyStoreStatus {
    const path = this.policyDb?.name ?? this.#policyPath
    const c = this.customPolicy
    const problems = c !== undefined
      ? c.losses
      : [this.#policyError ?? `${path}: custom rules, category overrides and the audit log are unavailable (see the log)`]
    return { path, available: c !== undefined, complete: problems.length === 0, problems }
  }

  /** The block-log writer; undefined when the store is unavailable. */
  get blockLog (): BlockLog | undefined { return this.#blockLog }
  /** The block-log query side; undefined when the store is unavailable. */
  get blockSearch (): BlockSearch | undefined { return this.#blockSearch }

  blockLogFigures (): BlockLogFigures | undefined {
    const s = this.#blockLog?.stats
    return s === undefined ? undefined : { ...s, queueDepth: s.depth }
  }

  /** Starts the block-log writer and reader threads; a failure disables the block log, never DNS. */
  async #startBlockLog (config: Config, deps: StoresDeps): Promise<void> {
    const c = config.store
    if (this.db === undefined) return
    const log = deps.log.child({ mod: 'blocklog' })
    try {
      this.#blockLog = await BlockLog.open({ ...c, log, now: deps.now })
      this.#blockSearch = await BlockSearch.open({ path: c.path, busyTimeoutMs: c.busyTimeoutMs, nice: c.threadNice, live: this.#blockLog, now: deps.now })
      for (const [thread, p] of [['writer', this.#blockLog.priority], ['search', this.#blockSearch.priority]] as const) {
        if (p?.tid === undefined) log.warn({ thread, err: p?.error }, 'could not lower the priority of a block log thread; it competes with DNS for CPU')
        else log.debug({ thread, tid: p.tid, nice: p.nice }, 'block log thread priority set')
      }
    } catch (err) {
      log.error({ err, path: c.path }, 'BLOCK LOG DISABLED: the writer or reader could not open the database; DNS goes on')
      await this.#blockLog?.close()
      this.#blockLog = undefined
    }
  }

  /** Stops the expiry timer and the threads (the writer flushes its queue), then closes both files. */
  async close (): Promise<void> {
    this.customPolicy?.close()
    await this.#blockSearch?.close()
    await this.#blockLog?.close()
    this.db?.close()
    this.policyDb?.close()
  }
}

function openCustomPolicy (db: Db, deps: StoresDeps): CustomPolicy | undefined {
  try {
    const c = new CustomPolicy({ db, log: deps.log, now: deps.now, apply: deps.apply })
    if (c.losses.length > 0) {
      deps.log.error({ path: db.name, lost: c.losses }, 'POLICY INCOMPLETE: the policy file lost custom rules, category overrides or audit rows ' +
        'to damage and no admin has acknowledged it yet (POST /api/v1/policy/acknowledge); readiness fails (policy), DNS goes on with what is left')
    }
    return c
  } catch (err) {
    deps.log.error({ err, path: db.name }, 'POLICY STORE UNAVAILABLE: custom rules, category overrides and the audit log cannot be read; DNS goes on with the config\'s policy, and readiness fails (policy)')
    return undefined
  }
}

/** Opens (creating or migrating) the block log; a failure leaves DNS running without it. */
function openBlockLogDb (c: Config, deps: StoresDeps): Db | undefined {
  const log = deps.log.child({ mod: 'store' })
  try {
    return openDatabase(c.store.path, {
      synchronous: c.store.synchronous,
      busyTimeoutMs: c.store.busyTimeoutMs,
      now: deps.now,
      // Migration 5 may drop old policy rows this file records as copied (a delete there that failed).
      policyPath: policyPath(c.dataDir),
      onMovedAside: (from, to, reason) => log.error({ from, to, reason },
        'STORE DAMAGED: the database file could not be read and was moved aside; a fresh one was created')
    })
  } catch (err) {
    log.error({ err, path: c.store.path }, 'STORE UNAVAILABLE: the database cannot be opened; the block log is disabled, DNS goes on')
    return undefined
  }
}
