// The policy in force: builds engines from the blocklists config and the run-time inputs (custom
// rules and overrides from the policy file, downloaded list copies), swaps them in whole, and
// remembers per engine when it was built and which list versions it holds. Queries in flight
// finish on the engine they started with.

import type { Logger } from 'pino'
import type { BlocklistsConfig } from '../config/types.js'
import { PolicyError } from '../errors.js'
import { loadRuleGuard } from '../packs/collateral.js'
import { buildEngine, hasGuardedRules, type EngineBuild, type PolicyInputs } from './build.js'
import type { Engine } from './engine.js'
import { sharedRangesNotice } from './pack-extras.js'
import type { RuleGuard } from './guard.js'

/** The engine queries are decided with; the pipeline reads `engine` per query. */
export interface PolicyRef { engine: Engine }

export interface PolicyManagerDeps {
  readonly log: Logger
  readonly now: () => number
  /** The blocklists config in force (a reload replaces it). */
  readonly blocklists: () => BlocklistsConfig
  /** Called after every swap (firewall sync). */
  readonly swapped: (build: EngineBuild) => void
}

/** A build made for a reload, not yet in force. */
export interface PreparedPolicy { readonly build: EngineBuild, readonly inputs: PolicyInputs }

export class PolicyManager {
  readonly ref: PolicyRef
  readonly #deps: PolicyManagerDeps
  readonly #log: Logger
  #inputs: PolicyInputs
  #build: EngineBuild
  #generation = 1
  readonly #builtAt = new WeakMap<Engine, number>()
  readonly #listHashes = new WeakMap<Engine, ReadonlyMap<string, string>>()
  /** The rule guard of a blocklists config (its corpus takes ~0.1 s to read): one per config. */
  readonly #guards = new WeakMap<BlocklistsConfig, RuleGuard>()

  /**
   * The first build. A stored copy of a URL source that does not compile (changed on disk by hand:
   * copies are hash-checked) must not keep the gateway from filtering with everything else: such
   * copies are left out, loudly, and the next successful download replaces them. Throws a
   * PolicyError when the lists themselves do not compile.
   */
  constructor (deps: PolicyManagerDeps, inputs: PolicyInputs) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'policy' })
    this.#inputs = inputs
    this.#build = this.#buildWithoutBrokenCopies()
    this.ref = { engine: this.#build.engine }
  }

  /**
   * The policy at start: the config's lists with the stored copies of URL sources and the policy
   * file's custom rules and overrides; stored rules that do not compile with the config are left
   * out, loudly (the config's policy stays).
   */
  static first (deps: PolicyManagerDeps, base: PolicyInputs, custom: PolicyInputs | undefined): PolicyManager {
    try {
      return new PolicyManager(deps, { ...base, ...custom })
    } catch (err) {
      if (!(err instanceof PolicyError) || custom === undefined) throw err
      deps.log.error({ err }, 'stored custom rules or category overrides were not applied; the config\'s policy stays')
      return new PolicyManager(deps, base)
    }
  }

  /** The last compiled policy (engine, address sets, per-list counts). */
  get build (): EngineBuild { return this.#build }
  /** When `engine` was built (ms), if this manager built it. */
  builtAt (engine: Engine): number | undefined { return this.#builtAt.get(engine) }
  /** The content hash of `list` in the engine that decided (the list version a block event records). */
  listHash (engine: Engine, list: string): string | undefined { return this.#listHashes.get(engine)?.get(list) }

  /**
   * Replaces some run-time inputs, builds a new engine and swaps it in one step. Throws a
   * PolicyError (and changes nothing) when the new lists do not compile.
   */
  update (patch: PolicyInputs, reason: string): EngineBuild {
    const p = this.prepare(this.#deps.blocklists(), patch)
    this.swap(p, reason)
    return p.build
  }

  /** Builds with a (new) blocklists config and patched inputs, without swapping; throws PolicyError. */
  prepare (blocklists: BlocklistsConfig, patch: PolicyInputs): PreparedPolicy {
    const inputs = { ...this.#inputs, ...patch }
    return { build: this.#compile(blocklists, inputs), inputs }
  }

  swap (p: PreparedPolicy, reason: string): void {
    this.#inputs = p.inputs
    this.#build = p.build
    this.ref.engine = p.build.engine
    this.#log.info({ reason, generation: p.build.engine.generation, ms: p.build.ms }, 'policy swapped')
    this.#deps.swapped(p.build)
  }

  #buildWithoutBrokenCopies (): EngineBuild {
    const blocklists = this.#deps.blocklists()
    try {
      return this.#compile(blocklists, this.#inputs)
    } catch (err) {
      const files = this.#inputs.sourceFiles
      if (!(err instanceof PolicyError) || files === undefined || files.size === 0) throw err
      const broken = [...files].filter(([, file]) => err.problems.some(p => p.startsWith(`${file}:`)))
      if (broken.length === 0) throw err
      this.#log.error({ sources: broken.map(([name]) => name), problems: err.problems.slice(0, 10) },
        'STORED LIST COPIES DO NOT COMPILE: starting without them until a download replaces them')
      const kept = new Map([...files].filter(([name]) => !broken.some(([b]) => b === name)))
      this.#inputs = { ...this.#inputs, sourceFiles: kept }
      return this.#compile(blocklists, this.#inputs)
    }
  }

  #compile (blocklists: BlocklistsConfig, inputs: PolicyInputs): EngineBuild {
    let guard = this.#guards.get(blocklists)
    if (guard === undefined && hasGuardedRules(blocklists)) {
      guard = loadRuleGuard(blocklists).guard
      this.#guards.set(blocklists, guard)
    }
    const b = buildEngine(blocklists, this.#generation++, { ...inputs, guard })
    this.#listHashes.set(b.engine, b.listHashes)
    this.#builtAt.set(b.engine, this.#deps.now())
    const log = this.#log
    for (const w of b.warnings.slice(0, 50)) log.warn(w)
    if (b.warnings.length > 50) log.warn(`${b.warnings.length - 50} more skipped lines not shown`)
    const shared = sharedRangesNotice(b.extras)
    if (shared !== undefined) log.warn(shared)
    log.info({
      ms: b.ms,
      ...b.engine.stats(),
      skipped: b.warnings.length,
      lists: b.lists.map(l => `${l.list}: ${l.rules} rules${l.skipped > 0 ? `, ${l.skipped} lines skipped` : ''}`),
      enabled: b.engine.categories.filter(x => x.enabled).map(x => x.name),
      groups: b.engine.groups.map(g => g.name)
    }, 'policy loaded')
    return b
  }
}

/** Whether two builds hold the same lists (same names, same content hashes). */
export function sameLists (a: EngineBuild, b: EngineBuild): boolean {
  if (a.listHashes.size !== b.listHashes.size) return false
  for (const [list, hash] of a.listHashes) if (b.listHashes.get(list) !== hash) return false
  return true
}
