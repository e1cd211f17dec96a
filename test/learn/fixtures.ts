// Shared pieces of the learn/ tests: a learning config, a quiet logger, a policy file, and a sink
// that records the calls it gets (a test double of the firewall's element sync, no fault injection).

import { Writable } from 'node:stream'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { LearningConfig } from '../../src/config/types.js'
import { createLogger } from '../../src/log.js'
import type { Db } from '../../src/store/db.js'
import { openPolicyStore } from '../../src/store/policy-db.js'
import type { Family, LearnedSink } from '../../src/learn/types.js'
import { tempDir } from '../helpers/tmp.js'

export const quiet = (): Logger => createLogger('warn', new Writable({ write (_c, _e, cb) { cb() } }))

export function learningConfig (o: Partial<LearningConfig> = {}): LearningConfig {
  return {
    enabled: true,
    resolvesPerSecond: 20,
    queueMax: 1000,
    ttlMultiple: 4,
    minExpirySeconds: 21_600,
    maxExpirySeconds: 604_800,
    probeIntervalSeconds: 3600,
    guardWindowSeconds: 604_800,
    neverBlock: [],
    maxAllowedAddresses: 200_000,
    maxLearned: 50_000,
    ...o
  }
}

/** A fresh policy.sqlite in a temporary data dir, opened as the daemon opens it. */
export function policyFile (): { path: string, open: () => Db } {
  const path = join(tempDir('egressd-learn-'), 'policy.sqlite')
  return {
    path,
    open: () => {
      const r = openPolicyStore({ path, log: quiet(), now: Date.now })
      if (r.db === undefined) throw new Error(r.error)
      return r.db
    }
  }
}

export interface SinkCall { readonly op: 'add' | 'remove', readonly category: string, readonly address: string, readonly family: Family, readonly timeoutSeconds?: number }

/** Records every call; `has` says what it holds after them. */
export class RecordingSink implements LearnedSink {
  readonly calls: SinkCall[] = []
  readonly #in = new Map<string, number>()
  add (category: string, address: string, family: Family, timeoutSeconds: number): void {
    this.calls.push({ op: 'add', category, address, family, timeoutSeconds })
    this.#in.set(`${category} ${address}`, timeoutSeconds)
  }

  remove (category: string, address: string, family: Family): void {
    this.calls.push({ op: 'remove', category, address, family })
    this.#in.delete(`${category} ${address}`)
  }

  has (category: string, address: string): boolean { return this.#in.has(`${category} ${address}`) }
  timeout (category: string, address: string): number | undefined { return this.#in.get(`${category} ${address}`) }
}
