// firewall.sync: applies the nftables script of the policy in force with `nft -f -` (one
// transaction) after every policy swap and reload. Runs beside DNS: a failure (no nft, no
// CAP_NET_ADMIN, a kernel without a feature) is logged and counted, never fatal.

import { spawn } from 'node:child_process'
import type { Logger } from 'pino'
import type { Config } from '../config/types.js'
import type { EngineBuild } from '../policy/build.js'
import { renderNftables } from './nftables.js'

/** The nftables script for a config and its compiled lists (enabled categories of the default group). */
export function firewallScript (config: Config, build: EngineBuild, generatedBy: string, dnsPort = config.dns.listen[0]?.port ?? 53): string {
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
}

export class FirewallSync {
  readonly state: FirewallSyncState = { attempts: 0, failures: 0, lastError: undefined, lastOkAt: undefined }
  readonly #deps: FirewallSyncDeps
  readonly #log: Logger
  /** Syncs run one after another, so an older policy's script never lands after a newer one's. */
  #last: Promise<void> = Promise.resolve()

  constructor (deps: FirewallSyncDeps) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'firewall' })
  }

  /** With firewall.sync on, applies the script of `build`; resolves when nft has finished (never rejects). */
  sync (config: Config, build: EngineBuild): Promise<void> {
    if (!config.firewall.sync) return this.#last
    this.#last = this.#last.then(() => this.#apply(config, build))
    return this.#last
  }

  #apply (config: Config, build: EngineBuild): Promise<void> {
    const script = firewallScript(config, build, `egressd sync, generation ${build.engine.generation}`, this.#deps.dnsPort())
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
        } else {
          state.failures++
          state.lastError = err.trim().split('\n').slice(0, 5).join(' | ') || `nft exited with ${String(code)}`
          this.#log.error({ err: state.lastError }, 'nftables sync failed; DNS filtering goes on')
        }
        resolve()
      })
      nft.stdin.on('error', () => {})
      nft.stdin.end(script)
    })
  }
}
