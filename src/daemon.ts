// The composition root: builds the components from one Config, starts them in order, closes them
// in reverse, and reloads. Nothing is a module-level singleton, so tests can run two daemons side by
// side. The constructor does no I/O; start() that fails part-way closes what it opened.

import type { Logger } from 'pino'
import type { ApiHost } from './api/host.js'
import { ApiServer, type ApiAddress } from './api/server.js'
import { applyReload, type Reloadable, type ReloadBy, type ReloadReport } from './reload.js'
import { newReloadCounters } from './config/reload.js'
import type { Config } from './config/types.js'
import { AnswerCache } from './dns/cache.js'
import { ClientAcl } from './dns/client-acl.js'
import { DnsListener, type BoundAddress, type ListenerFigures, type Serve } from './dns/listener.js'
import { DnsMetrics } from './dns/metrics.js'
import { createPipeline } from './dns/pipeline.js'
import { UdpTurn } from './dns/udp-turn.js'
import { UpstreamPool } from './dns/upstream/pool.js'
import { FirewallSync } from './firewall/sync.js'
import { Learning } from './learn/learning.js'
import { ListUpdater, upstreamHostResolver } from './lists/index.js'
import type { EngineBuild } from './policy/build.js'
import { PolicyManager } from './policy/manager.js'
import { BlockReporter, RefusedClientLog } from './store/block-reporter.js'
import { Stores, type BlockLogFigures } from './store/stores.js'
import { redactUrls } from './lists/redact.js'
import { readVersion } from './version.js'

const SELF: ReloadBy = { trigger: 'api', actor: { name: 'egressd', client: '' } }

export interface DaemonDeps {
  readonly log: Logger
  /** Milliseconds clock; injectable so tests control time. */
  readonly now?: () => number
  /** Reads the config again from where it came from (SIGHUP, POST /api/v1/reload); default: the config in force. */
  readonly loadConfig?: () => Config
}

/** What start() built; replaced in part by reloads (pool, cache). */
interface Parts {
  stores: Stores
  lists: ListUpdater
  policy: PolicyManager
  cache: AnswerCache
  pool: UpstreamPool
  /** Learned address sets; undefined with learning off (or the policy file unavailable). */
  learning: Learning | undefined
  listener: DnsListener
  /** The DNS listen addresses the sockets were bound with (a reload does not move them). */
  boundListen: Config['dns']['listen']
  api?: ApiServer
}

export class Daemon implements ApiHost, Reloadable {
  readonly metrics = new DnsMetrics()
  readonly reloads = newReloadCounters()
  readonly startedAt: number
  readonly log: Logger
  readonly now: () => number
  readonly loadConfig: () => Config
  readonly firewallSync: FirewallSync
  readonly #turn: UdpTurn
  readonly #reporter: BlockReporter
  readonly #refused: RefusedClientLog
  /** Which clients get answers; replaced with each pipeline (a reload may change the list). */
  #acl: ClientAcl | undefined
  #config: Config
  #parts: Parts | undefined
  #addresses: BoundAddress[] = []
  #version = ''
  /** Closers of what start() opened, run in reverse by close(). */
  readonly #opened: Array<() => unknown> = []

  constructor (config: Config, deps: DaemonDeps) {
    this.#config = config
    this.log = deps.log
    this.now = deps.now ?? Date.now
    this.startedAt = this.now()
    this.loadConfig = deps.loadConfig ?? (() => this.#config)
    this.#turn = new UdpTurn(undefined, config.dns.udp.answerTimeSample)
    this.firewallSync = new FirewallSync({
      log: this.log,
      now: this.now,
      dnsPort: () => (this.#parts?.boundListen ?? this.#config.dns.listen)[0]?.port ?? 53,
      config: () => this.#config,
      build: () => this.#parts?.policy.build,
      learned: () => this.#parts?.learning?.book.elements(),
      onHit: hit => { this.#reporter.firewall(hit) }
    })
    this.#refused = new RefusedClientLog(this.log, this.now)
    this.#reporter = new BlockReporter({
      log: this.log,
      now: this.now,
      metrics: this.metrics,
      blockLog: () => this.#parts?.stores.blockLog,
      logQueries: () => this.#config.store.logQueries,
      listHash: (engine, list) => this.#parts?.policy.listHash(engine, list),
      engine: () => this.#parts?.policy.ref.engine,
      learnedName: address => this.#parts?.learning?.book.lookup(address)?.name
    })
  }

  /** Opens the stores, builds the policy, binds DNS, then the API; throws (having closed everything) on failure. */
  async start (): Promise<void> {
    const c = this.#config
    try {
      this.#version = readVersion()
      const stores = await Stores.open(c, { log: this.log, now: this.now, apply: (i, reason) => { this.parts.policy.update(i, reason) } })
      this.#opened.push(() => stores.close())
      // Last-known-good copies of URL sources first, so a gateway booting offline still filters.
      const lists = new ListUpdater({
        config: c,
        log: this.log,
        now: this.now,
        resolveHost: upstreamHostResolver(() => this.parts.pool),
        apply: (files, reason) => { this.parts.policy.update({ sourceFiles: files }, reason) }
      })
      this.#opened.push(() => lists.close())
      const policy = PolicyManager.first({
        log: this.log, now: this.now, blocklists: () => this.#config.blocklists, swapped: b => { this.#parts?.learning?.follow(b); void this.firewallSync.sync(this.#config, b) }
      }, { sourceFiles: lists.files(), sharedRanges: c.firewall.sharedRanges }, stores.customPolicy?.inputs())
      const pool = this.newPool(c)
      this.#opened.push(() => { (this.#parts?.pool ?? pool).close() }) // a reload may have replaced it
      const cache = new AnswerCache({ maxEntries: c.cache.maxEntries, now: this.now })
      const learning = this.#newLearning(c, stores, policy)
      if (learning !== undefined) this.#opened.push(() => learning.close())
      const serve = this.newPipeline(c, { policy, cache, pool, learning })
      const listener = new DnsListener({ dns: c.dns, log: this.log, metrics: this.metrics, turn: this.#turn }, serve)
      const parts: Parts = { stores, lists, policy, pool, cache, learning, listener, boundListen: c.dns.listen }
      this.#parts = parts
      parts.listener.allows = client => this.#acl?.allows(client) ?? false
      this.#opened.push(() => parts.listener.close(this.#config.dns.shutdownGraceMs))
      this.#addresses = await parts.listener.start()
      stores.customPolicy?.start()
      learning?.start()
      this.firewallSync.start()
      this.#opened.push(() => this.firewallSync.close())
      parts.api = await ApiServer.start({ host: this, log: this.log, now: this.now, version: this.#version })
      this.#opened.push(() => parts.api?.close())
    } catch (err) {
      await this.close()
      throw err
    }
    this.log.info({ upstreams: c.upstreams.map(u => redactUrls(u.url)), allowClients: c.dns.allowClients, config: c.source }, 'egressd started')
    this.parts.lists.start()
    void this.firewallSync.sync(c, this.parts.policy.build)
  }

  /** Stops accepting queries, lets in-flight ones finish (bounded), then releases everything, newest first. */
  async close (): Promise<void> {
    while (this.#opened.length > 0) {
      const closeOne = this.#opened.pop()!
      try {
        await closeOne()
      } catch (err) {
        this.log.error({ err }, 'while closing')
      }
    }
    this.log.info('egressd stopped')
  }

  /** Reloads the config from its source (SIGHUP, POST /api/v1/reload), counted and audited; a rejected one throws and changes nothing. */
  reloadConfig (by: ReloadBy = SELF): ReloadReport { return applyReload(this, by, this.loadConfig) }
  /** Applies `next` as a reload would. */
  reload (next: Config, by: ReloadBy = SELF): ReloadReport { return applyReload(this, by, () => next) }

  // ---- for reload.ts ----

  get parts (): Parts {
    if (this.#parts === undefined) throw new Error('egressd has not started')
    return this.#parts
  }

  setConfig (next: Config): void { this.#config = next }

  newPool (c: Config): UpstreamPool {
    return new UpstreamPool({
      upstreams: c.upstreams, udpSockets: c.dns.udpSockets, turn: this.#turn, ednsUdpSize: c.dns.ednsUdpSize, ttl: c.cache, log: this.log, metrics: this.metrics, now: this.now
    })
  }

  #newLearning (c: Config, stores: Stores, policy: PolicyManager): Learning | undefined {
    if (!c.learning.enabled) return undefined
    if (stores.policyDb === undefined) { this.log.error('learned address sets are off: the policy file is unavailable'); return undefined }
    const learning = new Learning({
      config: c, log: this.log, now: this.now, db: stores.policyDb, sink: this.firewallSync.elements,
      query: (q, d) => this.parts.pool.query(q, d), probeNames: () => policy.build.extras.probes
    })
    learning.follow(policy.build)
    return learning
  }

  /** A pipeline for `c` on the given cache, pool and policy (by default those in force). */
  newPipeline (c: Config, parts: Pick<Parts, 'policy' | 'cache' | 'pool' | 'learning'> = this.parts): Serve {
    const learning = parts.learning
    const acl = new ClientAcl(c.dns.allowClients, client => { this.#refused.refused(client, c.dns.allowClients) })
    this.#acl = acl
    return createPipeline({
      dns: c.dns,
      cache: c.cache,
      blocking: c.blocklists,
      policy: parts.policy.ref,
      report: learning === undefined
        ? (ctx, v) => { this.#reporter.report(ctx, v) }
        : (ctx, v) => { this.#reporter.report(ctx, v); if (v.action !== 'monitor') learning.blocked(ctx.q.qname, v.category) }, // learned in the background
      allowed: learning?.allowed,
      observe: c.store.logQueries === 'all' ? (ctx, _o, rcode, ms) => { this.#reporter.observe(ctx, rcode, ms) } : undefined,
      answers: parts.cache,
      pool: parts.pool,
      metrics: this.metrics,
      now: this.now,
      acl
    })
  }

  // ---- ApiHost ----

  get config (): Config { return this.#config }
  get version (): string { return this.#version }
  get cache (): AnswerCache { return this.parts.cache }
  get pool (): UpstreamPool { return this.parts.pool }
  get lists (): ListUpdater { return this.parts.lists }
  get learning (): Learning | undefined { return this.#parts?.learning }
  get policy (): { readonly engine: PolicyManager['ref']['engine'] } { return this.parts.policy.ref }
  get policyBuild (): EngineBuild { return this.parts.policy.build }
  /** When the engine in force was built. */
  get policyLoadedAt (): number { return this.parts.policy.builtAt(this.parts.policy.ref.engine) ?? this.startedAt }
  get firewall (): FirewallSync['state'] { return this.firewallSync.state }
  get firewallUnknownSet (): BlockReporter['firewallUnknownSet'] { return this.#reporter.firewallUnknownSet }
  get db (): Stores['db'] { return this.#parts?.stores.db }
  get customPolicy (): Stores['customPolicy'] { return this.#parts?.stores.customPolicy }
  get policyStore (): Stores['policyStore'] | undefined { return this.#parts?.stores.policyStore }
  get blockLog (): Stores['blockLog'] { return this.#parts?.stores.blockLog }
  get blockSearch (): Stores['blockSearch'] { return this.#parts?.stores.blockSearch }
  blockLogFigures (): BlockLogFigures | undefined { return this.#parts?.stores.blockLogFigures() }
  /** Where the DNS listeners are bound (ports resolved when the config asked for port 0). */
  get addresses (): readonly BoundAddress[] { return this.#addresses }
  /** Where the management API listens; undefined before start. */
  get apiAddress (): ApiAddress | undefined { return this.#parts?.api?.address }
  /** Client queries being answered right now. */
  get inflight (): number { return this.#parts?.listener.inflight ?? 0 }
  /** DNS listener sockets now: TCP connections and their unsent answers, UDP kernel drops. */
  dnsSockets (): ListenerFigures { return this.parts.listener.figures() }
}
