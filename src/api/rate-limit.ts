// Requests per client address: a token bucket per address, refilled at `perSecond` up to `burst`.
// A request that finds the bucket empty is refused (429) with the seconds until the next token.
// The table of addresses is bounded: when it is full, buckets that have refilled completely (idle
// clients) are dropped, and if none has, the oldest half goes.
//
// Also here: ClientSlots, things held open at once per client address and overall (connections,
// live-tail streams), and the counters of what those limits refused, for /metrics.

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

/** Why a slot was refused: the client's own cap, or the cap over all clients. */
export type SlotLimit = 'client' | 'total'

/**
 * Things held open at once (connections, live-tail streams), counted per client address and
 * overall. `acquire` takes the caps each time, so a reload that changes them applies to the next
 * one; an address is forgotten when its last slot is released, so the table never outgrows what
 * is open.
 */
export class ClientSlots {
  readonly #held = new Map<string, number>()
  #total = 0

  /** Open slots, all clients. */
  get size (): number { return this.#total }

  /** Takes a slot for `client`, or says which cap is in the way. */
  acquire (client: string, perClient: number, total: number): SlotLimit | undefined {
    const mine = this.#held.get(client) ?? 0
    if (mine >= perClient) return 'client'
    if (this.#total >= total) return 'total'
    this.#held.set(client, mine + 1)
    this.#total++
    return undefined
  }

  release (client: string): void {
    const mine = this.#held.get(client)
    if (mine === undefined) return
    if (mine <= 1) this.#held.delete(client)
    else this.#held.set(client, mine - 1)
    this.#total--
  }
}

/** What the API's abuse limits refused or cut off, for /metrics. */
export interface ApiLimitCounters {
  /** Connections closed on arrival: over api.server.maxConnectionsPerClient / maxConnections. */
  readonly connectionsRefused: Record<SlotLimit, number>
  /** Requests whose headers or body took longer than api.server.headersTimeoutMs / requestTimeoutMs. */
  requestTimeouts: number
  /** Live-tail streams refused: over api.liveTail.maxStreamsPerClient / maxStreams. */
  readonly streamsRefused: Record<SlotLimit, number>
  /** Live-tail streams closed because their client did not keep up. */
  readonly streamsClosed: { slowConsumer: number, stuck: number }
  /** Live-tail streams open now. */
  streamsOpen: number
}

export function newApiLimitCounters (): ApiLimitCounters {
  return {
    connectionsRefused: { client: 0, total: 0 },
    requestTimeouts: 0,
    streamsRefused: { client: 0, total: 0 },
    streamsClosed: { slowConsumer: 0, stuck: 0 },
    streamsOpen: 0
  }
}
