// Which client addresses egressd answers (dns.allowClients): a resolver on a gateway must not
// answer the internet (an open resolver is an amplifier for reflection attacks and hands out what
// the LAN resolves). Others get REFUSED, an answer no larger than their query.

import { IpIndex } from '../policy/ip-index.js'
import { parseCidr } from '../policy/names.js'

const yes = (): boolean => true

export class ClientAcl {
  readonly #index = new IpIndex()
  /** True when the ranges cover every IPv4 and IPv6 address: then nothing is looked up. */
  readonly #everyone: boolean
  /** Client address -> allowed (bounded; cleared when full: a flood of spoofed sources only costs lookups). */
  readonly #seen = new Map<string, boolean>()
  /** The last client asked about: a client's queries come in runs, and comparing is cheaper than hashing. */
  #last = ''
  #lastOk = false

  readonly #onRefused: ((client: string) => void) | undefined

  /**
   * `cidrs`: validated 'addr/len' texts (config). `onRefused` hears of each client refused for
   * the first time (again after the table of clients seen was cleared).
   */
  constructor (cidrs: readonly string[], onRefused?: (client: string) => void) {
    this.#onRefused = onRefused
    let all4 = false
    let all6 = false
    for (const c of cidrs) {
      const r = parseCidr(c)
      if ('error' in r) throw new Error(`dns.allowClients: ${r.error}`) // the config loader has checked them
      this.#index.add(r.family, r.start, r.end, 0)
      if (c === '0.0.0.0/0') all4 = true
      if (c === '::/0') all6 = true
    }
    this.#index.build()
    this.#everyone = all4 && all6
  }

  /** Whether queries from `client` (an address as the socket reports it) are answered. */
  allows (client: string): boolean {
    if (this.#everyone) return true
    if (client === this.#last) return this.#lastOk
    let ok = this.#seen.get(client)
    if (ok === undefined) {
      ok = this.#index.match(client, yes) >= 0
      if (this.#seen.size >= 65536) this.#seen.clear()
      this.#seen.set(client, ok)
      if (!ok) this.#onRefused?.(client)
    }
    this.#last = client
    this.#lastOk = ok
    return ok
  }
}
