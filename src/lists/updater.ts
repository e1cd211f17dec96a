// Keeps the URL sources of the config up to date: one timer per source (interval ±10% jitter, a
// failed attempt retried after at most 15 minutes), and on demand (`updateNow`). Each attempt runs
// fetch (conditional) -> signature -> checks -> stage the copy -> compile and swap the engine ->
// commit the copy and its meta. Anything that fails leaves the previous copy serving and is
// reported: per-source status and counters, and a warning log with the reason. Attempts run one at
// a time. Clock, timers and randomness are injectable; nothing here knows the DNS wire format.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config, ListSource, UrlSourceSettings } from '../config/types.js'
import { EgressdError, ListUpdateError } from '../errors.js'
import { fetchList } from './fetcher.js'
import { redactUrls } from './redact.js'
import type { HostResolver } from './host-resolver.js'
import { LastGoodStore, sha256, type StoredMeta } from './last-good.js'
import { verifyList } from './signature.js'
import { checkList } from './validate.js'
import { publishedVersion } from './ms365-version.js'
import { countEntries, sourceFormat } from './source-format.js'

export interface Timers {
  setTimeout (fn: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return t },
  clearTimeout: h => clearTimeout(h as NodeJS.Timeout)
}

export interface ListUpdaterDeps {
  readonly config: Config
  readonly log: Logger
  /** Resolves list hosts through the configured upstreams. */
  readonly resolveHost: HostResolver
  /**
   * Compiles an engine with these source files (every URL source that has a copy) and swaps it in;
   * throws (changing nothing) when they do not compile.
   */
  readonly apply: (files: ReadonlyMap<string, string>, reason: string) => void
  readonly now?: () => number
  readonly timers?: Timers
  /** [0, 1); for the jitter. */
  readonly random?: () => number
}

export type UpdateOutcome = 'updated' | 'unchanged' | 'not-modified' | 'rejected'

export interface SourceUpdateResult {
  readonly source: string
  readonly outcome: UpdateOutcome
  /** Entries of the copy in use after this attempt (undefined: no copy). */
  readonly entries: number | undefined
  readonly previousEntries: number | undefined
  readonly sha256: string | undefined
  /** rejected only: the short reason tag and the message. */
  readonly reason?: string
  readonly error?: string
  readonly ms: number
}

export interface ListSourceStatus {
  readonly name: string
  readonly url: string
  readonly format: string
  readonly category: string | undefined
  readonly signed: boolean
  /** blocklists.sources[].update.intervalMs: how often the copy is checked (each wait jittered by ±10%). */
  readonly intervalMs: number
  /** Epoch ms of the last attempt, successful or not. */
  readonly lastAttempt: number | undefined
  /** Epoch ms of the last attempt that ended with the list current (updated, unchanged or 304). */
  readonly lastSuccess: number | undefined
  readonly lastError: { readonly at: number, readonly reason: string, readonly message: string } | undefined
  readonly nextAttempt: number | undefined
  /** The copy in use: its entries, sha256, download time (epoch ms) and validators. */
  readonly entries: number | undefined
  readonly sha256: string | undefined
  readonly fetchedAt: number | undefined
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  readonly attempts: number
  readonly updates: number
  readonly notModified: number
  /** Attempts that found the copy current without a new one: same bytes, or (ms365) the same published version. */
  readonly unchanged: number
  readonly rejected: number
  readonly rejectedByReason: Readonly<Record<string, number>>
}

interface SourceState {
  source: ListSource & { readonly url: string, readonly update: UrlSourceSettings }
  meta: StoredMeta | undefined
  file: string | undefined
  lastAttempt: number | undefined
  lastSuccess: number | undefined
  lastError: { at: number, reason: string, message: string } | undefined
  nextAttempt: number | undefined
  timer: unknown
  attempts: number
  updates: number
  notModified: number
  unchanged: number
  rejected: number
  rejectedByReason: Record<string, number>
}

const RETRY_AFTER_FAILURE_MS = 15 * 60_000
const SIGNATURE_MAX_BYTES = 4096

export class ListUpdater {
  readonly #deps: ListUpdaterDeps
  readonly #log: Logger
  readonly #now: () => number
  readonly #timers: Timers
  readonly #random: () => number
  #config: Config
  #store: LastGoodStore
  #states = new Map<string, SourceState>()
  #queue: Promise<unknown> = Promise.resolve()
  #started = false
  #closed = false

  constructor (deps: ListUpdaterDeps) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'lists' })
    this.#now = deps.now ?? Date.now
    this.#timers = deps.timers ?? realTimers
    this.#random = deps.random ?? Math.random
    this.#config = deps.config
    this.#store = new LastGoodStore(join(deps.config.dataDir, 'lists'), this.#log)
    this.#load()
  }

  /** Reads the stored copies of the config's URL sources (keeping counters of known ones). */
  #load (): void {
    const old = this.#states
    this.#states = new Map()
    for (const s of this.#config.blocklists.sources) {
      if (s.url === undefined || s.update === undefined) continue
      const copy = this.#store.read(s.name)
      const prev = old.get(s.name)
      const sameUrl = copy !== undefined && copy.meta.url === s.url
      if (copy !== undefined && !sameUrl) this.#log.info({ source: s.name, was: redactUrls(copy.meta.url), now: redactUrls(s.url) }, 'stored copy is from another URL; still used until the new one is fetched')
      this.#states.set(s.name, {
        source: { ...s, url: s.url, update: s.update },
        // Validators only make sense for the same URL; the copy itself serves until replaced.
        meta: copy === undefined ? undefined : sameUrl ? copy.meta : { ...copy.meta, etag: undefined, lastModified: undefined, version: undefined },
        file: copy?.file,
        lastAttempt: prev?.lastAttempt,
        lastSuccess: prev?.lastSuccess ?? (copy === undefined ? undefined : Date.parse(copy.meta.fetchedAt)),
        lastError: prev?.lastError,
        nextAttempt: undefined,
        timer: undefined,
        attempts: prev?.attempts ?? 0,
        updates: prev?.updates ?? 0,
        notModified: prev?.notModified ?? 0,
        unchanged: prev?.unchanged ?? 0,
        rejected: prev?.rejected ?? 0,
        rejectedByReason: prev?.rejectedByReason ?? {}
      })
      if (copy !== undefined) this.#log.info({ source: s.name, entries: copy.meta.entries, sha256: copy.meta.sha256, fetchedAt: copy.meta.fetchedAt }, 'using the stored copy of the list')
    }
  }

  /** The accepted copy of each URL source that has one: PolicyInputs.sourceFiles. */
  files (): Map<string, string> {
    const out = new Map<string, string>()
    for (const [name, st] of this.#states) if (st.file !== undefined) out.set(name, st.file)
    return out
  }

  /**
   * Starts the timers: every URL source is fetched once at once (a conditional GET, so a current
   * copy costs a 304), then every interval.
   */
  start (): void {
    if (this.#closed) return
    this.#started = true
    for (const st of this.#states.values()) this.#schedule(st, 0)
  }

  /** A reloaded config: sources may have come, gone or changed; stored copies are read again. */
  reconfigure (config: Config): void {
    for (const st of this.#states.values()) this.#cancel(st)
    this.#config = config
    this.#store = new LastGoodStore(join(config.dataDir, 'lists'), this.#log)
    this.#load()
    if (this.#started) this.start()
  }

  /** Stops the timers and waits for an attempt in progress. */
  async close (): Promise<void> {
    this.#closed = true
    for (const st of this.#states.values()) this.#cancel(st)
    await this.settled()
  }

  /** Resolves once no attempt is running or queued. */
  async settled (): Promise<void> {
    let q: Promise<unknown>
    do {
      q = this.#queue
      await q.catch(() => {})
    } while (q !== this.#queue)
  }

  #cancel (st: SourceState): void {
    if (st.timer !== undefined) this.#timers.clearTimeout(st.timer)
    st.timer = undefined
    st.nextAttempt = undefined
  }

  #schedule (st: SourceState, ms: number): void {
    this.#cancel(st)
    if (this.#closed) return
    st.nextAttempt = this.#now() + ms
    st.timer = this.#timers.setTimeout(() => {
      st.timer = undefined
      if (this.#states.get(st.source.name) !== st) return
      void this.#run(() => this.#attempt(st, false)).then(r => {
        if (this.#states.get(st.source.name) !== st || this.#closed) return
        const base = r.outcome === 'rejected' ? Math.min(RETRY_AFTER_FAILURE_MS, st.source.update.intervalMs) : st.source.update.intervalMs
        this.#schedule(st, Math.round(base * (0.9 + 0.2 * this.#random())))
      })
    }, ms)
  }

  /** Runs attempts one at a time. */
  #run<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn)
    this.#queue = p.catch(() => {})
    return p
  }

  /**
   * Updates one source (by name) or every URL source now, in config order. `force` accepts a list
   * that shrank more than maxShrink. Resolves with one result per source (never rejects for a
   * failed update; throws EGRESSD_ERR_USAGE for an unknown source name).
   */
  updateNow (opts: { source?: string, force?: boolean } = {}): Promise<SourceUpdateResult[]> {
    const names = opts.source === undefined ? [...this.#states.keys()] : [opts.source]
    if (opts.source !== undefined && !this.#states.has(opts.source)) {
      const known = [...this.#states.keys()]
      return Promise.reject(new EgressdError('EGRESSD_ERR_USAGE', `no URL source named "${opts.source}" (known: ${known.length === 0 ? 'none' : known.join(', ')})`))
    }
    return this.#run(async () => {
      const out: SourceUpdateResult[] = []
      for (const name of names) {
        const st = this.#states.get(name)
        if (st !== undefined) out.push(await this.#attempt(st, opts.force === true))
      }
      return out
    })
  }

  async #attempt (st: SourceState, force: boolean): Promise<SourceUpdateResult> {
    const s = st.source
    const started = this.#now()
    const prev = st.meta
    st.attempts++
    st.lastAttempt = started
    const result = (outcome: UpdateOutcome, extra: Partial<SourceUpdateResult> = {}): SourceUpdateResult => ({
      source: s.name, outcome, entries: st.meta?.entries, previousEntries: prev?.entries, sha256: st.meta?.sha256, ms: this.#now() - started, ...extra
    })
    try {
      const u = s.update
      const deadline = Date.now() + u.timeoutMs
      const signed = u.signatureUrl !== undefined
      const common = {
        source: s.name,
        resolveHost: this.#deps.resolveHost,
        allowHosts: new Set(this.#config.blocklists.update.allowHosts),
        allowHttp: signed,
        ...(u.caFile !== undefined && { ca: readCa(s.name, u.caFile) })
      }
      const haveCopy = st.file !== undefined && prev !== undefined
      const format = sourceFormat(s)
      // ms365: ask the version service first; the endpoints are downloaded only for a new version.
      const versionUrl = s.ms365?.versionUrl
      const version = versionUrl === undefined ? undefined : await publishedVersion({ ...common, url: versionUrl, timeoutMs: u.timeoutMs })
      if (version !== undefined && haveCopy && !force && prev.version === version) {
        st.unchanged++
        st.lastSuccess = this.#now()
        st.lastError = undefined
        this.#log.info({ source: s.name, version, entries: st.meta?.entries }, 'list unchanged (same published version; not downloaded)')
        return result('unchanged')
      }
      const r = await fetchList({
        ...common,
        url: s.url,
        timeoutMs: u.timeoutMs,
        maxBytes: u.maxBytes,
        ...(haveCopy && prev.etag !== undefined && { etag: prev.etag }),
        ...(haveCopy && prev.lastModified !== undefined && { lastModified: prev.lastModified })
      })
      if (r.status === 'not-modified') {
        if (version !== undefined && haveCopy && prev.version !== version) { st.meta = { ...prev, version }; this.#store.writeMeta(st.meta) }
        st.notModified++
        st.lastSuccess = this.#now()
        st.lastError = undefined
        this.#log.info({ source: s.name, entries: st.meta?.entries }, 'list not modified (304)')
        return result('not-modified')
      }
      let signedBy: string | undefined
      if (u.signatureUrl !== undefined) {
        const sig = await fetchList({ ...common, url: u.signatureUrl, timeoutMs: Math.max(1, deadline - Date.now()), maxBytes: SIGNATURE_MAX_BYTES })
        if (sig.status !== 'ok') throw new ListUpdateError('EGRESSD_ERR_LIST_SIGNATURE', s.name, 'signature', `${u.signatureUrl}: no signature`)
        const keys = this.#config.blocklists.update.publicKeys.filter(k => u.keys.length === 0 || u.keys.includes(k.name))
        signedBy = verifyList(r.body, sig.body, keys)
        if (signedBy === undefined) {
          throw new ListUpdateError('EGRESSD_ERR_LIST_SIGNATURE', s.name, 'signature', `${u.signatureUrl}: the signature does not verify with ${keys.map(k => k.name).join(', ')}`)
        }
      }
      const hash = sha256(r.body)
      // ms365: the accepted copy counted with today's selection (the config's may have changed).
      const previousEntries = st.file !== undefined && typeof format !== 'string' ? countEntries(readFileSync(st.file, 'utf8'), format) : prev?.entries
      const check = checkList(s.name, r.body, format, u, previousEntries, force)
      const meta: StoredMeta = {
        source: s.name,
        url: s.url,
        sha256: hash,
        fetchedAt: new Date(this.#now()).toISOString(),
        ...(r.etag !== undefined && { etag: r.etag }),
        ...(r.lastModified !== undefined && { lastModified: r.lastModified }),
        entries: check.entries,
        bytes: r.body.length,
        ...(signedBy !== undefined && { signedBy }),
        ...(version !== undefined && { version })
      }
      if (haveCopy && hash === prev.sha256) {
        // Same bytes (a server without validators): nothing to compile, new validators kept.
        this.#store.writeMeta(meta)
        st.meta = meta
        st.unchanged++
        st.lastSuccess = this.#now()
        st.lastError = undefined
        this.#log.info({ source: s.name, entries: check.entries }, 'list unchanged')
        return result('unchanged')
      }
      this.#install(st, r.body, meta)
      st.updates++
      st.lastSuccess = this.#now()
      st.lastError = undefined
      this.#log.info({
        source: s.name, entries: check.entries, previousEntries, skippedLines: check.badLines, sha256: hash, bytes: r.body.length, signedBy, version, forced: force || undefined, ms: this.#now() - started
      }, 'list updated')
      return result('updated')
    } catch (err) {
      const reason = err instanceof ListUpdateError ? err.reason : 'internal'
      const message = redactUrls(err instanceof ListUpdateError ? err.message : `${s.name}: ${(err as Error).message}`)
      st.rejected++
      st.rejectedByReason[reason] = (st.rejectedByReason[reason] ?? 0) + 1
      st.lastError = { at: this.#now(), reason, message }
      this.#log.warn({ source: s.name, reason, err: message, entries: st.meta?.entries }, 'list update rejected; the previous version stays in use')
      return result('rejected', { reason, error: message })
    }
  }

  /** Stages the copy, compiles and swaps the engine with it, then commits the copy and its meta. */
  #install (st: SourceState, body: Buffer, meta: StoredMeta): void {
    const name = st.source.name
    const tmp = this.#store.stage(name, body)
    let undo: () => void
    try {
      undo = this.#store.commit(name, tmp)
    } catch (err) {
      this.#store.discard(tmp)
      throw new ListUpdateError('EGRESSD_ERR_LIST_REJECTED', name, 'store', `cannot store the copy: ${(err as Error).message}`, { cause: err })
    }
    const files = this.files()
    files.set(name, this.#store.file(name))
    try {
      this.#deps.apply(files, `list update: ${name}`)
    } catch (err) {
      undo()
      const problems = (err as { problems?: readonly string[] }).problems
      throw new ListUpdateError('EGRESSD_ERR_LIST_REJECTED', name, 'build', `the lists do not compile with this version: ${problems?.slice(0, 3).join('; ') ?? (err as Error).message}`, { cause: err })
    }
    this.#store.writeMeta(meta)
    st.meta = meta
    st.file = this.#store.file(name)
  }

  status (): ListSourceStatus[] {
    return [...this.#states.values()].map(st => ({
      name: st.source.name,
      url: st.source.url,
      format: st.source.format,
      category: st.source.category,
      signed: st.source.update.signatureUrl !== undefined,
      intervalMs: st.source.update.intervalMs,
      lastAttempt: st.lastAttempt,
      lastSuccess: st.lastSuccess,
      lastError: st.lastError === undefined ? undefined : { ...st.lastError },
      nextAttempt: st.nextAttempt,
      entries: st.meta?.entries,
      sha256: st.meta?.sha256,
      fetchedAt: st.meta === undefined ? undefined : Date.parse(st.meta.fetchedAt),
      etag: st.meta?.etag,
      lastModified: st.meta?.lastModified,
      attempts: st.attempts,
      updates: st.updates,
      notModified: st.notModified,
      unchanged: st.unchanged,
      rejected: st.rejected,
      rejectedByReason: { ...st.rejectedByReason }
    }))
  }
}

function readCa (source: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new ListUpdateError('EGRESSD_ERR_LIST_FETCH', source, 'tls', `cannot read caFile ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
}
