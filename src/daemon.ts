// Wires the components together from one Config, starts and stops them in order, and reloads.
// Everything is built here and passed down; nothing is a module-level singleton, so tests can run
// two daemons side by side.

import { spawn } from 'node:child_process'
import type { Logger } from 'pino'
import { formatAddress } from './config/load.js'
import type { Config } from './config/types.js'
import { AnswerCache } from './dns/cache.js'
import { DnsListener, type BoundAddress, type ListenerFigures } from './dns/listener.js'
import { DnsMetrics } from './dns/metrics.js'
import { ClientAcl } from './dns/client-acl.js'
import { createPipeline, type PolicyRef, type QueryContext } from './dns/pipeline.js'
import { UpstreamPool } from './dns/upstream/pool.js'
import { UdpTurn } from './dns/udp-turn.js'
import { renderNftables } from './firewall/nftables.js'
import { buildEngine, type EngineBuild, type PolicyInputs } from './policy/build.js'
import type { Verdict } from './policy/engine.js'
import { ListUpdater, upstreamHostResolver } from './lists/index.js'
import { openDatabase, type Db } from './store/db.js'
import { BlockLog } from './store/block-log.js'
import { BlockSearch } from './store/block-reader.js'
import type { Engine } from './policy/engine.js'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './api/app.js'
import type { BlockLogFigures } from './api/host.js'
import { blockRoutes } from './api/routes/blocks.js'
import { EgressdError, PolicyError } from './errors.js'
import { CustomPolicy } from './store/custom-policy.js'
import { openPolicyStore, policyPath, type PolicyStoreStatus } from './store/policy-db.js'
import { readVersion } from './version.js'

export interface DaemonDeps {
  readonly log: Logger
  /** Milliseconds clock; injectable so tests control time. */
  readonly now?: () => number
  /** Reads the config again from where it came from (SIGHUP, POST /api/v1/reload); default: the config in force. */
  readonly loadConfig?: () => Config
}

export interface ReloadResult { readonly applied: string[], readonly needsRestart: string[] }

/** The nftables script for a config and its compiled lists (enabled categories of the default group). */
export function firewallScript (config: Config, build: EngineBuild, generatedBy: string): string {
  const engine = build.engine
  const enabled = engine.groups[0].enabled
  const categories = engine.categories
    .filter((c, i) => enabled[i] === 1 && !c.name.startsWith('custom:'))
    .map(c => {
      const a = build.addresses.block.get(c.name)
      return { name: c.name, title: c.title, v4: a?.v4 ?? [], v6: a?.v6 ?? [] }
    })
  const exempt = config.blocklists.groups.filter(g => g.exempt).flatMap(g => g.clients)
  return renderNftables({
    config: config.firewall,
    dnsPort: config.dns.listen[0]?.port ?? 53,
    categories,
    allow: build.addresses.allow,
    exempt: { v4: exempt.filter(c => !c.includes(':')), v6: exempt.filter(c => c.includes(':')) },
    generatedBy
  })
}

/** Outcome of the last nftables sync, for status and metrics. */
export interface FirewallSyncState { attempts: number, failures: number, lastError: string | undefined, lastOkAt: number | undefined }

export class Daemon {
  readonly metrics = new DnsMetrics()
  readonly #log: Logger
  readonly #now: () => number
  /** Which clients get answers; replaced with each pipeline (a reload may change the list). */
  #acl!: ClientAcl
  /** When a refused client was last logged, and how many new ones were refused since. */
  #refusedLoggedAt = -Infinity
  #refusedUnlogged = 0
  #config: Config
  #cache: AnswerCache
  #pool: UpstreamPool
  /** The UDP work of each event-loop turn, shared by the listener and the upstream pools. */
  readonly #turn = new UdpTurn()
  readonly #listener: DnsListener
  #addresses: BoundAddress[] = []
  readonly startedAt: number
  /** The policy snapshot queries are decided with; replaced whole on reload. */
  readonly policy: PolicyRef
  #generation = 1
  readonly firewall: FirewallSyncState = { attempts: 0, failures: 0, lastError: undefined, lastOkAt: undefined }
  #lastBuild: EngineBuild
  #inputs: PolicyInputs = {}
  /** URL sources: scheduled downloads, their status, and updates on demand. */
  readonly lists: ListUpdater
  /**
   * The block log's read-write connection on the main thread (egressd.sqlite); undefined when the
   * database could not be opened (DNS runs regardless, the error is logged loudly).
   */
  readonly db: Db | undefined
  /**
   * The policy file (policy.sqlite: custom rules, category overrides, audit log), apart from the
   * block log so damage to the log cannot touch it; undefined when it cannot be opened at all.
   */
  readonly policyDb: Db | undefined
  /** Why the policy file could not be opened (readiness fails with `policy` then). */
  readonly #policyError: string | undefined
  #blockLog: BlockLog | undefined
  #blockSearch: BlockSearch | undefined
  /** Per engine snapshot: list name -> content hash, so each event records the list version that matched. */
  readonly #listHashes = new WeakMap<Engine, ReadonlyMap<string, string>>()

  /** Builds everything from `config`; throws a PolicyError when the lists cannot be compiled. */
  constructor (config: Config, deps: DaemonDeps) {
    this.#config = config
    this.#log = deps.log
    this.#now = deps.now ?? Date.now
    this.startedAt = this.#now()
    // Last-known-good copies of URL sources first, so a gateway booting offline still filters.
    this.lists = new ListUpdater({
      config,
      log: deps.log,
      now: this.#now,
      resolveHost: upstreamHostResolver(() => this.#pool),
      apply: (files, reason) => { this.updatePolicyInputs({ sourceFiles: files }, reason) }
    })
    this.#inputs = { sourceFiles: this.lists.files() }
    this.#lastBuild = this.#buildWithoutBrokenCopies(config)
    this.policy = { engine: this.#lastBuild.engine }
    this.#cache = new AnswerCache({ maxEntries: config.cache.maxEntries, now: this.#now })
    this.#pool = this.#newPool(config)
    this.#listener = new DnsListener({ dns: config.dns, log: deps.log, metrics: this.metrics, turn: this.#turn }, this.#newPipeline())
    this.#listener.allows = client => this.#acl.allows(client)
    // The policy file first: on the first start after the split it takes the policy rows out of the
    // block log, whose migration 5 then drops their tables (and refuses to while rows are left).
    const policyStore = openPolicyStore({
      path: policyPath(config.dataDir),
      blockLogPath: config.store.path,
      synchronous: config.store.synchronous,
      busyTimeoutMs: config.store.busyTimeoutMs,
      log: this.#log,
      now: this.#now
    })
    this.policyDb = policyStore.db
    this.#policyError = policyStore.error
    this.db = this.#openStore(config)
    this.#loadConfig = deps.loadConfig ?? (() => this.#config)
    this.customPolicy = this.policyDb === undefined ? undefined : this.#openCustomPolicy(this.policyDb)
  }

  /** The policy file's state for the status and readiness: complete unless rows were lost or it is unavailable. */
  get policyStore (): PolicyStoreStatus {
    const path = this.policyDb?.name ?? policyPath(this.#config.dataDir)
    const c = this.customPolicy
    const problems = c !== undefined
      ? c.losses
      : [this.#policyError ?? `${path}: custom rules, category overrides and the audit log are unavailable (see the log)`]
    return { path, available: c !== undefined, complete: problems.length === 0, problems }
  }

  /** The block-log writer (queue depth, drops, failures for /metrics); undefined when the store is unavailable. */
  get blockLog (): BlockLog | undefined { return this.#blockLog }
  /** The block-log query side (API); undefined when the store is unavailable. */
  get blockSearch (): BlockSearch | undefined { return this.#blockSearch }

  /** Starts the block-log writer and reader threads; a failure disables the block log, never DNS. */
  async #startBlockLog (): Promise<void> {
    const c = this.#config.store
    if (this.db === undefined) return
    const log = this.#log.child({ mod: 'blocklog' })
    try {
      this.#blockLog = await BlockLog.open({ ...c, log, now: this.#now })
      this.#blockSearch = await BlockSearch.open({ path: c.path, busyTimeoutMs: c.busyTimeoutMs, nice: c.threadNice, live: this.#blockLog, now: this.#now })
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

  /** Opens (creating or migrating) the database; a failure leaves DNS running without a store. */
  #openStore (c: Config): Db | undefined {
    const log = this.#log.child({ mod: 'store' })
    try {
      return openDatabase(c.store.path, {
        synchronous: c.store.synchronous,
        busyTimeoutMs: c.store.busyTimeoutMs,
        now: this.#now,
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

  get config (): Config { return this.#config }
  get cache (): AnswerCache { return this.#cache }
  get pool (): UpstreamPool { return this.#pool }
  /** Where the DNS listeners are bound (ports resolved when the config asked for port 0). */
  get addresses (): readonly BoundAddress[] { return this.#addresses }

  // ---- Management API (api/app.ts; the daemon is its ApiHost) ----

  /** Custom rules, category overrides and the audit log; undefined when the store is unavailable. */
  readonly customPolicy: CustomPolicy | undefined
  readonly #loadConfig: () => Config
  #api: FastifyInstance | undefined
  #apiAddress: { host: string, port: number, tls: boolean } | undefined
  readonly #builtAt = new WeakMap<Engine, number>()
  readonly version = readVersion()

  /** Where the management API listens (port resolved when the config asked for 0); undefined before start. */
  get apiAddress (): { readonly host: string, readonly port: number, readonly tls: boolean } | undefined { return this.#apiAddress }
  /** Client queries being answered right now. */
  get inflight (): number { return this.#listener.inflight }
  /** DNS listener sockets now: TCP connections and their unsent answers, UDP kernel drops. */
  dnsSockets (): ListenerFigures { return this.#listener.figures() }
  /** When the engine in force was built. */
  get policyLoadedAt (): number { return this.#builtAt.get(this.policy.engine) ?? this.startedAt }
  blockLogFigures (): BlockLogFigures | undefined {
    const s = this.#blockLog?.stats
    return s === undefined ? undefined : { ...s, queueDepth: s.depth }
  }

  /** Reloads the config from its source (as SIGHUP does); throws ConfigError or PolicyError and changes nothing then. */
  reloadConfig (): ReloadResult {
    return this.reload(this.#loadConfig())
  }

  #openCustomPolicy (db: Db): CustomPolicy | undefined {
    try {
      const c = new CustomPolicy({ db, log: this.#log, now: this.#now, apply: (inputs, reason) => { this.updatePolicyInputs(inputs, reason) } })
      c.start() // applies the stored rules and overrides; arms the expiry timer
      if (c.losses.length > 0) {
        this.#log.error({ path: db.name, lost: c.losses }, 'POLICY INCOMPLETE: the policy file lost custom rules, category overrides or audit rows ' +
          'to damage and no admin has acknowledged it yet (POST /api/v1/policy/acknowledge); readiness fails (policy), DNS goes on with what is left')
      }
      return c
    } catch (err) {
      this.#log.error({ err, path: db.name }, 'POLICY STORE UNAVAILABLE: custom rules, category overrides and the audit log cannot be read; DNS goes on with the config\'s policy, and readiness fails (policy)')
      return undefined
    }
  }

  /** Builds the management API and listens; TLS files are read here. */
  async #startApi (): Promise<void> {
    const c = this.#config.api
    const log = this.#log.child({ mod: 'api' })
    let tls: { cert: Buffer, key: Buffer } | undefined
    if (c.tls !== undefined) {
      const read = (file: string, key: string): Buffer => {
        try {
          return readFileSync(file)
        } catch (err) {
          throw new EgressdError('EGRESSD_ERR_API_TLS', `api.tls.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
        }
      }
      tls = { cert: read(c.tls.cert, 'cert'), key: read(c.tls.key, 'key') }
    }
    const reader = this.#blockSearch
    let app: FastifyInstance
    try {
      app = await buildApp({
        host: this,
        log: this.#log,
        now: this.#now,
        version: this.version,
        tls,
        plugins: reader === undefined ? [] : [async (scope, o) => { await scope.register(blockRoutes, { ...o, reader }) }]
      })
    } catch (err) {
      throw new EgressdError('EGRESSD_ERR_API_TLS', `api: cannot start: ${(err as Error).message}`, { cause: err })
    }
    const where = formatAddress(c.listen)
    try {
      await app.listen({ host: c.listen.host, port: c.listen.port })
    } catch (err) {
      await app.close()
      throw new EgressdError('EGRESSD_ERR_LISTEN', `api.listen ${where}: ${(err as Error).message}`, { cause: err })
    }
    this.#api = app
    const a = app.server.address() as AddressInfo
    this.#apiAddress = { host: a.address, port: a.port, tls: tls !== undefined }
    if (c.tokens.length === 0) log.warn('no api.tokens configured: only /healthz, /readyz and /docs answer; make one with: egressd token create --role admin')
    log.info({ url: `${tls !== undefined ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` }, 'management API listening')
  }

  #newPool (c: Config): UpstreamPool {
    return new UpstreamPool({
      upstreams: c.upstreams,
      udpSockets: c.dns.udpSockets,
      turn: this.#turn,
      ednsUdpSize: c.dns.ednsUdpSize,
      ttl: c.cache,
      log: this.#log,
      metrics: this.metrics,
      now: this.#now
    })
  }

  #newPipeline (): ReturnType<typeof createPipeline> {
    const c = this.#config
    this.#acl = new ClientAcl(c.dns.allowClients, client => { this.#refusedClient(client) })
    return createPipeline({
      dns: c.dns,
      cache: c.cache,
      blocking: c.blocklists,
      policy: this.policy,
      report: (ctx, v) => this.#report(ctx, v),
      observe: c.store.logQueries === 'all' ? (ctx, _o, rcode, ms) => this.#observe(ctx, rcode, ms) : undefined,
      answers: this.#cache,
      pool: this.#pool,
      metrics: this.metrics,
      now: this.#now,
      acl: this.#acl
    })
  }

  /**
   * A client outside dns.allowClients was refused for the first time: one warning a minute at
   * most (a flood of spoofed sources must not flood the log), with how many more were refused
   * since the last one. Every refused query is counted in egressd_dns_refused_clients_total.
   */
  #refusedClient (client: string): void {
    const t = this.#now()
    if (t - this.#refusedLoggedAt < 60_000) {
      this.#refusedUnlogged++
      return
    }
    this.#log.warn({ client, otherClientsSinceLastWarning: this.#refusedUnlogged, allowClients: this.#config.dns.allowClients },
      'refusing queries from a client outside dns.allowClients')
    this.#refusedLoggedAt = t
    this.#refusedUnlogged = 0
  }

  /**
   * The first build. A stored copy of a URL source that does not compile (changed on disk by hand:
   * copies are hash-checked) must not keep the gateway from filtering with everything else: such
   * copies are left out, loudly, and the next successful download replaces them.
   */
  #buildWithoutBrokenCopies (c: Config): EngineBuild {
    try {
      return this.#buildPolicy(c)
    } catch (err) {
      const files = this.#inputs.sourceFiles
      if (!(err instanceof PolicyError) || files === undefined || files.size === 0) throw err
      const broken = [...files].filter(([, file]) => err.problems.some(p => p.startsWith(`${file}:`)))
      if (broken.length === 0) throw err
      this.#log.error({ sources: broken.map(([name]) => name), problems: err.problems.slice(0, 10) },
        'STORED LIST COPIES DO NOT COMPILE: starting without them until a download replaces them')
      const kept = new Map([...files].filter(([name]) => !broken.some(([b]) => b === name)))
      this.#inputs = { ...this.#inputs, sourceFiles: kept }
      return this.#buildPolicy(c)
    }
  }

  #buildPolicy (c: Config): EngineBuild {
    const b = buildEngine(c.blocklists, this.#generation++, this.#inputs)
    this.#listHashes.set(b.engine, b.listHashes)
    this.#builtAt.set(b.engine, this.#now())
    const log = this.#log.child({ mod: 'policy' })
    for (const w of b.warnings.slice(0, 50)) log.warn(w)
    if (b.warnings.length > 50) log.warn(`${b.warnings.length - 50} more skipped lines not shown`)
    const stats = b.engine.stats()
    log.info({
      ms: b.ms,
      ...stats,
      skipped: b.warnings.length,
      lists: b.lists.map(l => `${l.list}: ${l.rules} rules${l.skipped > 0 ? `, ${l.skipped} lines skipped` : ''}`),
      enabled: b.engine.categories.filter(x => x.enabled).map(x => x.name),
      groups: b.engine.groups.map(g => g.name)
    }, 'policy loaded')
    return b
  }

  /**
   * Replaces some run-time policy inputs (custom rules from the store, downloaded list copies),
   * builds a new engine and swaps it in one step; queries in flight finish on the old one. Throws a
   * PolicyError (and changes nothing) when the new lists do not compile.
   */
  updatePolicyInputs (patch: PolicyInputs, reason: string): EngineBuild {
    const previous = this.#inputs
    this.#inputs = { ...previous, ...patch }
    let b: EngineBuild
    try {
      b = this.#buildPolicy(this.#config)
    } catch (err) {
      this.#inputs = previous
      throw err
    }
    this.#lastBuild = b
    this.policy.engine = b.engine
    this.#log.info({ reason, generation: b.engine.generation, ms: b.ms }, 'policy swapped')
    void this.#syncFirewall()
    return b
  }

  /** The last compiled policy (engine, address sets, per-list counts). */
  get policyBuild (): EngineBuild { return this.#lastBuild }

  /** Every policy match: counted, and logged at info (one line per blocked or monitored query). */
  #report (ctx: QueryContext, v: Verdict): void {
    const byCategory = v.action === 'monitor' ? this.metrics.monitoredByCategory : this.metrics.blockedByCategory
    byCategory.set(v.category, (byCategory.get(v.category) ?? 0) + 1)
    const logged = this.#log.isLevelEnabled('info')
    const stored = this.#blockLog !== undefined && this.#config.store.logQueries !== 'none'
    if (!logged && !stored) return
    // Where the rule came from, looked up in the snapshot that decided (only when it is shown).
    const { list, line, rule } = ctx.engine.rule(v.ruleId)
    if (logged) {
      this.#log.info({
        client: ctx.client, group: v.group, qname: ctx.q.qname, qtype: ctx.q.qtype, action: v.action, category: v.category,
        matched: v.matched, value: v.value, rule, list, line
      }, v.action === 'monitor' ? 'would block (monitor)' : 'blocked')
    }
    if (!stored) return
    this.#blockLog?.push({
      ts: this.#now(), client: ctx.client, group: v.group, qname: ctx.q.qname, qtype: ctx.q.qtype, matched: v.matched, value: v.value,
      category: v.category, action: v.action, list, line, rule, listHash: this.#listHashes.get(ctx.engine)?.get(list)
    })
  }

  /** store.logQueries: all — one event per allowed query, with the rcode the client got and the time taken. */
  #observe (ctx: QueryContext, rcode: number, ms: number): void {
    this.#blockLog?.push({
      ts: this.#now(), client: ctx.client, group: ctx.group.name, qname: ctx.q.qname, qtype: ctx.q.qtype, matched: 'none', value: '',
      category: '', action: 'allow', rcode, latencyMs: ms
    })
  }

  async start (): Promise<void> {
    await this.#startBlockLog()
    this.#addresses = await this.#listener.start()
    try {
      await this.#startApi()
    } catch (err) {
      await this.close()
      throw err
    }
    this.#log.info({ upstreams: this.#config.upstreams.map(u => u.url), allowClients: this.#config.dns.allowClients, config: this.#config.source }, 'egressd started')
    this.lists.start()
    this.#syncFirewall()
  }

  /**
   * Applies a new, already validated config: upstreams, cache and DNS settings take effect for the
   * next query; listen addresses and TCP limits need a restart and are reported as such.
   */
  reload (next: Config): ReloadResult {
    const prev = this.#config
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
    const applied: string[] = []
    const needsRestart: string[] = []
    if (!same(prev.dns.listen, next.dns.listen)) needsRestart.push('dns.listen')
    if (!same(prev.dns.tcp, next.dns.tcp)) needsRestart.push('dns.tcp')
    if (!same(prev.dns.udp, next.dns.udp)) needsRestart.push('dns.udp')
    for (const k of ['listen', 'tls', 'allowPlaintext', 'bodyLimit', 'rateLimit', 'server'] as const) {
      if (!same(prev.api[k], next.api[k])) needsRestart.push(`api.${k}`)
    }
    // The writer and reader threads keep the settings they were started with; logQueries is
    // read per query.
    const { logQueries: prevLog, ...prevStore } = prev.store
    const { logQueries: nextLog, ...nextStore } = next.store
    if (!same(prevStore, nextStore)) needsRestart.push('store')
    // Build everything that can fail first (lists, upstream transports reading CA files); only
    // then change state, so a rejected reload leaves the daemon exactly as it was.
    // URL sources may have changed, and `egressd lists update` may have stored new copies: read them.
    const inputs = this.#inputs
    this.lists.reconfigure(next)
    this.#inputs = { ...inputs, sourceFiles: this.lists.files() }
    let policy: EngineBuild, pool: UpstreamPool | undefined, cache: AnswerCache | undefined
    try {
      policy = this.#buildPolicy(next)
      const poolChanged = !same(prev.upstreams, next.upstreams) || !same(prev.dns, next.dns) || !same(prev.cache, next.cache)
      pool = poolChanged ? this.#newPool(next) : undefined
      cache = same(prev.cache, next.cache) ? undefined : new AnswerCache({ maxEntries: next.cache.maxEntries, now: this.#now })
    } catch (err) {
      this.#inputs = inputs
      this.lists.reconfigure(prev)
      throw err
    }

    this.#config = next
    this.#lastBuild = policy
    this.policy.engine = policy.engine
    applied.push('blocklists')
    if (!same(prev.api.tokens, next.api.tokens)) applied.push('api.tokens') // read per request
    if (!same(prev.api.liveTail, next.api.liveTail)) applied.push('api.liveTail') // read per new stream
    if (pool !== undefined) {
      const old = this.#pool
      this.#pool = pool
      // Queries already waiting on the old pool finish there (each upstream may be asked twice:
      // UDP, then TCP after TC); close it once they had their time.
      const budget = 2 * prev.upstreams.reduce((sum, u) => sum + u.timeoutMs, 0) + 1000
      setTimeout(() => old.close(), budget).unref()
      if (!same(prev.upstreams, next.upstreams)) applied.push('upstreams')
      if (!same(prev.dns, next.dns)) applied.push('dns')
    }
    if (cache !== undefined) {
      this.#cache = cache
      applied.push('cache')
    }
    this.#listener.serve = this.#newPipeline()
    if (prevLog !== nextLog) applied.push('store.logQueries')
    if (prev.log.level !== next.log.level) {
      this.#log.level = next.log.level
      applied.push('log.level')
    }
    this.#log.info({ applied, needsRestart, config: next.source }, 'config reloaded')
    this.#syncFirewall()
    if (needsRestart.length > 0) this.#log.warn({ needsRestart }, 'some changes take effect only after a restart')
    return { applied, needsRestart }
  }

  /**
   * With firewall.sync on, applies the nftables script (`nft -f -`, one transaction). Runs beside
   * DNS: a failure (no nft, no CAP_NET_ADMIN, a kernel without a feature) is logged and counted,
   * never fatal.
   */
  #syncFirewall (): Promise<void> {
    if (!this.#config.firewall.sync) return Promise.resolve()
    const script = firewallScript(this.#config, this.#lastBuild, `egressd sync, generation ${this.#lastBuild.engine.generation}`)
    const state = this.firewall
    state.attempts++
    const log = this.#log.child({ mod: 'firewall' })
    return new Promise(resolve => {
      const nft = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] })
      let err = ''
      nft.stderr.on('data', d => { err += String(d) })
      nft.on('error', e => { err += e.message })
      nft.on('close', code => {
        if (code === 0) {
          state.lastOkAt = this.#now()
          state.lastError = undefined
          log.info({ table: this.#config.firewall.table }, 'nftables rules applied')
        } else {
          state.failures++
          state.lastError = err.trim().split('\n').slice(0, 5).join(' | ') || `nft exited with ${String(code)}`
          log.error({ err: state.lastError }, 'nftables sync failed; DNS filtering goes on')
        }
        resolve()
      })
      nft.stdin.on('error', () => {})
      nft.stdin.end(script)
    })
  }

  /** Stops accepting queries, lets in-flight ones finish (bounded), then releases everything. */
  async close (): Promise<void> {
    this.customPolicy?.close()
    await this.#api?.close()
    this.#api = undefined
    await this.lists.close()
    await this.#listener.close(this.#config.dns.shutdownGraceMs)
    this.#pool.close()
    await this.#blockSearch?.close()
    await this.#blockLog?.close()
    this.db?.close()
    this.policyDb?.close()
    this.#log.info('egressd stopped')
  }
}
