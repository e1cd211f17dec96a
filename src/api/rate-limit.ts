// Requests per client address: a token bucket per address, refilled at `perSecond` up to `burst`.
// A request that finds the bucket empty is refused (429) with the seconds until the next token.
// The table of addresses is bounded: when it is full, buckets that have refilled completely (idle
// clients) are dropped, and if none has, the oldest half goes.

export interface RateLimitOptions {
  readonly perSecond: number
  readonly burst: number
  readonly now: () => number
  /** Most addresses tracked at once (default 10000). */
  readonly maxClients?: number
}

export type RateDecision = { readonly ok: true } | { readonly ok: false, readonly retryAfterS: number }

interface Bucket { tokens: number, at: number }

const OK: RateDecision = { ok: true }

export class RateLimiter {
  readonly #o: RateLimitOptions
  readonly #buckets = new Map<string, Bucket>()
  /** Requests refused so far. */
  refused = 0

  constructor (o: RateLimitOptions) {
    this.#o = o
  }

  take (client: string): RateDecision {
    const { perSecond, burst } = this.#o
    const now = this.#o.now()
    let b = this.#buckets.get(client)
    if (b === undefined) {
      if (this.#buckets.size >= (this.#o.maxClients ?? 10_000)) this.#prune(now)
      b = { tokens: burst, at: now }
      this.#buckets.set(client, b)
    } else {
      b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * perSecond)
      b.at = now
    }
    if (b.tokens >= 1) {
      b.tokens -= 1
      return OK
    }
    this.refused++
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / perSecond)) }
  }

  #prune (now: number): void {
    const { perSecond, burst } = this.#o
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) this.#buckets.delete(k)
    }
    if (this.#buckets.size >= (this.#o.maxClients ?? 10_000)) {
      let drop = Math.ceil(this.#buckets.size / 2)
      for (const k of this.#buckets.keys()) {
        if (drop-- <= 0) break
        this.#buckets.delete(k)
      }
    }
  }
}
