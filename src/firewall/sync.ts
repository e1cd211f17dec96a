// The gateway's firewall, kept in step with egressd: firewall.sync applies the nftables script of
// the policy in force with `nft -f -` (one transaction) after every policy swap and reload, with
// the learned sets' current elements; between full syncs the learned elements change
// incrementally (elements.ts); the evidence sets are read back for block-log events
// (evidence.ts). Runs beside DNS: a failure (no nft, no CAP_NET_ADMIN, a kernel without a
// feature) is logged and counted, never fatal.

import { spawn } from 'node:child_process'
import type { Logger } from 'pino'
import type { Config } from '../config/types.js'
import type { FirewallHit, LearnedElements } from '../learn/types.js'
import type { EngineBuild } from '../policy/build.js'
import { ElementSync } from './elements.js'
import { FirewallEvidence } from './evidence.js'
import { learnedSetName, renderNftables } from './nftables.js'

/** The categories the firewall carries: those enabled in the default group, custom rules aside. */
export function firewallCategories (build: EngineBuild): string[] {
  const enabled = build.engine.groups[0].enabled
  return build.engine.categories.filter((c, i) => enabled[i] === 1 && !c.name.startsWith('custom:')).map(c => c.name)
}

/**
 * The nftables script for a config and its compiled lists (enabled categories of the default
 * group): published ranges, the opted-in shared ranges, and the learned elements given.
 */
export function firewallScript (config: Config, build: EngineBuild, generatedBy: string, dnsPort = config.dns.listen[0]?.port ?? 53,
  learned: ReadonlyMap<string, LearnedElements> = new Map()): string {
  const engine = build.engine
  const names = new Set(firewallCategories(build))
  const categories = engine.categories
    .filter(c => names.has(c.name))
    .map(c => {
      const a = build.addresses.block.get(c.name)
      const shared = build.extras.shared.get(c.name)
      return {
        name: c.name,
        title: c.title,
        v4: a?.v4 ?? [],
        v6: a?.v6 ?? [],
        ...(shared !== undefined && { shared: { v4: shared.v4, v6: shared.v6 } }),
        learned: learned.get(c.name)
      }
    })
  const exempt = config.blocklists.groups.filter(g => g.exempt).flatMap(g => g.clients)
  return renderNftables({
    config: config.firewall,
    dnsPort,
    categories,
    allow: build.addresses.allow,
    exempt: { v4: exempt.filter(c => !c.includes(':')), v6: exempt.filter(c => c.includes(':')) },
    generatedBy
  })
}

/** Outcome of the last nftables sync, for status and metrics. */
export interface FirewallSyncState { attempts: number, failures: number, lastError: string | undefined, lastOkAt: number | undefined }

export interface FirewallSyncDeps {
  readonly log: Logger
  readonly now: () => number
  /**
   * The port LAN DNS is redirected to: the one the listeners are bound to, which a reload that
   * changes dns.listen does not move (that needs a restart).
   */
  readonly dnsPort: () => number
  /** The config in force (a reload replaces it). */
  readonly config: () => Config
  /** The policy in force (evidence: which categories the table carries; a full sync asked for by a failed element batch). */
  readonly build: () => EngineBuild | undefined
  /** The learned sets' elements now (written by every full sync); none while learning is off. */
  readonly learned: () => ReadonlyMap<string, LearnedElements> | undefined
  /** A rejected connection read back from the evidence sets. */
  readonly onHit: (hit: FirewallHit) => void
}

export class FirewallSync {
  readonly state: FirewallSyncState = { attempts: 0, failures: 0, lastError: undefined, lastOkAt: undefined }
  /** Incremental changes of the learned sets (the learned book's sink). */
  readonly elements: ElementSync
  readonly evidence: FirewallEvidence
  readonly #deps: FirewallSyncDeps
  readonly #log: Logger
  /** Syncs run one after another, so an older policy's script never lands after a newer one's. */
  #last: Promise<void> = Promise.resolve()

  constructor (deps: FirewallSyncDeps) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'firewall' })
    const firewall = (): Config['firewall'] => deps.config().firewall
    this.elements = new ElementSync({
      firewall,
      log: deps.log,
      now: deps.now,
      requestFullSync: () => { const b = deps.build(); if (b !== undefined) void this.sync(deps.config(), b) }
    })
    this.evidence = new FirewallEvidence({
      firewall,
      log: deps.log,
      now: deps.now,
      onHit: deps.onHit,
      categories: () => { const b = deps.build(); return b === undefined ? [] : firewallCategories(b) }
    })
  }

  /** Starts reading the evidence sets (does nothing while sync or evidence is off). */
  start (): void { this.evidence.start() }

  async close (): Promise<void> {
    await this.evidence.close()
    await this.elements.close()
    await this.#last
  }

  /** With firewall.sync on, applies the script of `build`; resolves when nft has finished (never rejects). */
  sync (config: Config, build: EngineBuild): Promise<void> {
    if (!config.firewall.sync) return this.#last
    this.#last = this.#last.then(() => this.#apply(config, build))
    return this.#last
  }

  async #apply (config: Config, build: EngineBuild): Promise<void> {
    // No element batch runs while the table is replaced; the script carries what was queued before.
    const token = this.elements.beginFullSync()
    await token.idle
    let script: string
    try {
      script = firewallScript(config, build, `egressd sync, generation ${build.engine.generation}`, this.#deps.dnsPort(), this.#deps.learned())
    } catch (e) {
      // A script that cannot be rendered (two categories whose nft set names clash) is a failed sync, never a rejected chain.
      this.state.attempts++
      this.state.failures++
      this.state.lastError = e instanceof Error ? e.message : String(e)
      this.#log.error({ err: this.state.lastError }, 'nftables script not rendered; DNS filtering goes on')
      this.elements.afterFullSync(token, false)
      return
    }
    const ok = await this.#nft(config, script)
    // The learned sets this script rendered: element changes to any other set are refused.
    this.elements.afterFullSync(token, ok, firewallCategories(build).flatMap(c => [learnedSetName(c, 4), learnedSetName(c, 6)]))
  }

  #nft (config: Config, script: string): Promise<boolean> {
    const state = this.state
    state.attempts++
    return new Promise(resolve => {
      const nft = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] })
      let err = ''
      nft.stderr.on('data', d => { err += String(d) })
      nft.on('error', e => { err += e.message })
      nft.on('close', code => {
        if (code === 0) {
          state.lastOkAt = this.#deps.now()
          state.lastError = undefined
          this.#log.info({ table: config.firewall.table }, 'nftables rules applied')
          resolve(true)
          return
        } else {
          state.failures++
          state.lastError = err.trim().split('\n').slice(0, 5).join(' | ') || `nft exited with ${String(code)}`
          this.#log.error({ err: state.lastError }, 'nftables sync failed; DNS filtering goes on')
        }
        resolve(false)
      })
      nft.stdin.on('error', () => {})
      nft.stdin.end(script)
    })
  }
}
