// Reload, declared per config slice: what applies live and what needs a restart (RELOAD_PLAN),
// what changed between two configs, and what reloads did, counted by trigger and outcome (rendered
// by /metrics as egressd_config_reloads_total{trigger,outcome}).

import type { Config } from './types.js'

export type ReloadTrigger = 'signal' | 'api'
/** applied: something changed and took effect; unchanged: the config was the same; rejected: invalid, nothing changed. */
export type ReloadOutcome = 'applied' | 'unchanged' | 'rejected'
export const RELOAD_TRIGGERS: readonly ReloadTrigger[] = ['signal', 'api']
export const RELOAD_OUTCOMES: readonly ReloadOutcome[] = ['applied', 'unchanged', 'rejected']

export interface ReloadCounters {
  readonly counts: Record<ReloadTrigger, Record<ReloadOutcome, number>>
  /** When the last reload that applied something finished (ms), or undefined. */
  lastAppliedAt: number | undefined
}

export function newReloadCounters (): ReloadCounters {
  const zero = (): Record<ReloadOutcome, number> => ({ applied: 0, unchanged: 0, rejected: 0 })
  return { counts: { signal: zero(), api: zero() }, lastAppliedAt: undefined }
}

/**
 * How a change to a config slice takes effect: `live` with the next query, request or build;
 * `restart` only when egressd starts again (reported as needing a restart, the running value stays);
 * `ignore` is not a setting (where the config came from).
 */
export type Applies = 'live' | 'restart' | 'ignore'

/** A value for every key of the config, down to the slices that apply as a whole (arrays are leaves). */
export type ReloadPlan<T> = Applies | (T extends readonly unknown[] ? never : T extends object ? { readonly [K in keyof T]-?: ReloadPlan<T[K]> } : never)

/**
 * What each config slice does on reload. The type makes this complete: a new key in Config does
 * not compile until it says whether it applies live or needs a restart.
 */
export const RELOAD_PLAN: ReloadPlan<Config> = {
  dns: {
    // The sockets are bound once; firewall sync keeps redirecting LAN DNS to the bound port.
    listen: 'restart',
    allowClients: 'live',
    ednsUdpSize: 'live',
    upstreamTimeoutMs: 'live',
    udpSockets: 'live',
    maxInflight: 'live',
    shutdownGraceMs: 'live',
    tcp: 'restart',
    udp: 'restart',
    chaos: 'live'
  },
  upstreams: 'live',
  cache: 'live',
  api: {
    listen: 'restart',
    tokens: 'live', // read per request
    tls: 'restart',
    allowPlaintext: 'restart',
    bodyLimit: 'restart',
    rateLimit: 'restart',
    server: 'restart',
    liveTail: 'live' // read per new stream
  },
  // The policy file, the block log and the stored list copies were opened where it pointed.
  dataDir: 'restart',
  blocklists: 'live',
  firewall: 'live',
  // The learner, its guard and probe schedule are built once at start from these (the guard's
  // never-block ranges follow firewall.lanCidrs and the upstreams live).
  learning: 'restart',
  store: {
    path: 'restart',
    logQueries: 'live', // read per query; the writer and reader threads keep the rest
    queueMax: 'restart',
    batchMs: 'restart',
    retention: 'restart',
    synchronous: 'restart',
    busyTimeoutMs: 'restart',
    threadNice: 'restart'
  },
  log: { level: 'live' },
  source: 'ignore'
}

/** The config slices that differ between two configs, by how they apply (dotted paths, plan order). */
export interface ConfigChanges { readonly live: readonly string[], readonly restart: readonly string[] }

export function configChanges (prev: Config, next: Config, plan: ReloadPlan<unknown> = RELOAD_PLAN as ReloadPlan<unknown>): ConfigChanges {
  const live: string[] = []
  const restart: string[] = []
  const walk = (p: ReloadPlan<unknown>, a: unknown, b: unknown, path: string): void => {
    if (typeof p === 'string') {
      if (p === 'ignore' || JSON.stringify(a) === JSON.stringify(b)) return
      ;(p === 'live' ? live : restart).push(path)
      return
    }
    for (const [k, sub] of Object.entries<ReloadPlan<unknown>>(p)) {
      walk(sub, (a as Record<string, unknown> | undefined)?.[k], (b as Record<string, unknown> | undefined)?.[k], path === '' ? k : `${path}.${k}`)
    }
  }
  walk(plan, prev, next, '')
  return { live, restart }
}

/** Whether a changed path lies in a slice (`dns` holds `dns.allowClients`). */
export function touches (changed: readonly string[], slice: string): boolean {
  return changed.some(p => p === slice || p.startsWith(`${slice}.`))
}

/** `next` with the restart-only slices that changed kept at their running values (`prev`): the config in force. */
export function keepRunning (next: Config, prev: Config, restartPaths: readonly string[]): Config {
  if (restartPaths.length === 0) return next
  const out = structuredClone(next) as unknown as Record<string, unknown>
  for (const path of restartPaths) {
    const keys = path.split('.')
    let to = out
    let from = prev as unknown as Record<string, unknown>
    for (const k of keys.slice(0, -1)) {
      to = to[k] as Record<string, unknown>
      from = from[k] as Record<string, unknown>
    }
    const last = keys[keys.length - 1]
    to[last] = structuredClone(from[last])
  }
  return out as unknown as Config
}
