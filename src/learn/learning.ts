// Learned address sets as one component for the daemon: the store (in policy.sqlite), the
// collateral guard, the book of sets in force, the background learner and the probe schedule,
// built from the config once, started and closed in order. What the DNS path calls: blocked()
// for every blocked query, and allowed (a pipeline stage's callback) for every fresh allowed answer.

import type { Logger } from 'pino'
import type { Config } from '../config/types.js'
import type { AllowedAnswer } from '../dns/stages/index.js'
import { firewallCategories } from '../firewall/sync.js'
import { INSTALLATION_ROOT, loadCollateral } from '../packs/collateral.js'
import type { EngineBuild } from '../policy/build.js'
import type { Db } from '../store/db.js'
import { LearnedBook, type BookStats } from './book.js'
import { CollateralGuard, type GuardStats } from './guard.js'
import { Learner, type LearnerStats, type QueryUpstream } from './learner.js'
import { ProbeScheduler } from './probes.js'
import { loadSharedHosts } from './shared-hosts.js'
import { LearnedStore, type LearnedStoreStats } from './store.js'
import type { LearnedSink } from './types.js'

export interface LearningDeps {
  readonly config: Config
  readonly log: Logger
  readonly now: () => number
  /** The policy file (policy.sqlite) the learned rows and the guard's observations live in. */
  readonly db: Db
  /** The upstream pool's query, asked anew each time (a reload may replace the pool). */
  readonly query: QueryUpstream
  /** Probe names of the enabled categories, from the policy in force (EngineBuild.extras.probes). */
  readonly probeNames: () => ReadonlyMap<string, readonly string[]>
  /** Where set changes go (the firewall's element sync). */
  readonly sink: LearnedSink
}

export interface LearningFigures {
  readonly learner: LearnerStats
  readonly book: BookStats
  readonly guard: GuardStats
  readonly store: LearnedStoreStats
}

export class Learning {
  readonly book: LearnedBook
  readonly guard: CollateralGuard
  readonly #store: LearnedStore
  readonly #learner: Learner
  readonly #probes: ProbeScheduler
  readonly #log: Logger
  #categories: ReadonlySet<string> = new Set()
  /** The everyday names (sources/collateral and every pack's mustNotBlock), read at the first probe run. */
  #guardNames: readonly string[] | undefined

  constructor (d: LearningDeps) {
    const learning = d.config.learning
    this.#log = d.log.child({ mod: 'learning' })
    this.#store = new LearnedStore({ db: d.db, log: d.log, now: d.now, guardWindowMs: learning.guardWindowSeconds * 1000, maxAllowedAddresses: learning.maxAllowedAddresses })
    this.guard = new CollateralGuard({
      learning, lanCidrs: d.config.firewall.lanCidrs, upstreamHosts: d.config.upstreams.map(u => u.host), store: this.#store, log: d.log, now: d.now
    })
    this.book = new LearnedBook({ learning, guard: this.guard, store: this.#store, sink: d.sink, log: d.log, now: d.now })
    const problems: string[] = []
    const frontEnds = loadSharedHosts(INSTALLATION_ROOT, problems)
    if (problems.length > 0) this.#log.warn({ problems: problems.slice(0, 10) }, 'some shared front ends could not be read: their addresses may be learned')
    this.#learner = new Learner({ learning, book: this.book, query: d.query, log: d.log, now: d.now, frontEnd: name => frontEnds.match(name) })
    const packs = d.config.blocklists.dir
    this.#probes = new ProbeScheduler({
      learner: this.#learner,
      // Only the categories the firewall carries: a change for a set not in the table fails its nft batch.
      probeNames: () => new Map([...d.probeNames()].filter(([category]) => this.#categories.has(category))),
      guardNames: () => (this.#guardNames ??= this.#readGuardNames(packs)),
      intervalSeconds: learning.probeIntervalSeconds,
      log: d.log
    })
    this.allowed = (ctx, targets) => { this.book.allowedAnswer(ctx.q.qname, targets, ctx.client) }
  }

  /** The pipeline's callback for every fresh answer let through (dns/stages/answer-policy.ts). */
  readonly allowed: AllowedAnswer

  /**
   * Every blocked query: its name (lower case, no trailing dot) and category. Nearly free for a
   * name seen recently; names of categories the firewall does not carry are not learned.
   */
  blocked (name: string, category: string): void {
    if (this.#categories.has(category)) this.#learner.blocked(name, category)
  }

  /**
   * The policy in force (at start and after every swap): which categories have learned sets — those
   * the firewall carries. Rows of categories no longer among them are dropped.
   */
  follow (build: EngineBuild): void {
    // A pack whose names resolve to its parent company's shared front ends (meta.yaml learnAddresses: false) is not learned.
    this.#categories = new Set(firewallCategories(build).filter(c => !build.extras.unlearned.has(c)))
    // Before start() too: start() then loads only these categories' rows.
    this.book.retainCategories(this.#categories)
  }

  /**
   * A reload's config: the never-block ranges follow firewall.lanCidrs, the upstreams and
   * learning.neverBlock (learned addresses now inside one leave their sets). The rest of
   * `learning` applies at the next start.
   */
  reconfigure (c: Config): void {
    this.book.setGuardRanges({ lanCidrs: c.firewall.lanCidrs, upstreamHosts: c.upstreams.map(u => u.host), neverBlock: c.learning.neverBlock })
  }

  start (): void {
    this.book.start()
    this.#probes.start()
  }

  async close (): Promise<void> {
    this.#probes.close()
    await this.#learner.close()
    this.book.close()
  }

  figures (): LearningFigures {
    return { learner: this.#learner.stats, book: this.book.stats, guard: this.guard.stats, store: this.#store.stats }
  }

  #readGuardNames (packs: string): readonly string[] {
    const c = loadCollateral(INSTALLATION_ROOT, packs)
    if (c.problems.length > 0) this.#log.warn({ problems: c.problems.slice(0, 10) }, 'some everyday names for the guard could not be read')
    return c.names
  }
}
