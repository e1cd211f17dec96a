// The shapes the learned address sets share between the learner (learn/), the firewall
// (firewall/) and the API: plain data only.

export type Family = 4 | 6

/** How an address was learned: the background resolution of a blocked query, or a pack's probe name. */
export type LearnedVia = 'query' | 'probe'

export interface LearnedAddress {
  /** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, `::` for the longest zero run). */
  readonly address: string
  readonly family: Family
  readonly category: string
  /** The name whose resolution produced it (the last one to, when several did). */
  readonly name: string
  readonly via: LearnedVia
  /** Milliseconds since the epoch. */
  readonly firstSeen: number
  readonly lastSeen: number
  readonly expiresAt: number
}

/** An address the collateral guard keeps out of the learned sets, and why. */
export interface HeldAddress extends LearnedAddress {
  /**
   * allowed-name: an allowed name resolved to it; never-block: it is in a never-block range;
   * shared-host: it was reached through a multi-tenant front end (a CDN, a parent company's edge).
   */
  readonly reason: 'allowed-name' | 'never-block' | 'shared-host'
  /** Allowed names that resolved to it within the guard window (allowed-name), or the front-end names of its chain (shared-host). */
  readonly sharedWith: readonly string[]
  /** The never-block range it falls in (reason never-block), e.g. `10.0.0.0/8 (firewall.lanCidrs)`. */
  readonly range?: string
}

/** Where changes to the learned sets go: the firewall's incremental element sync. */
export interface LearnedSink {
  add (category: string, address: string, family: Family, timeoutSeconds: number): void
  remove (category: string, address: string, family: Family): void
}

/** The learned elements of one category, as the nft export and the full table sync write them. */
export interface LearnedElements {
  readonly v4: ReadonlyArray<{ readonly address: string, readonly timeoutSeconds: number }>
  readonly v6: ReadonlyArray<{ readonly address: string, readonly timeoutSeconds: number }>
}

/**
 * A connection attempt the firewall rejected, read back from nft's evidence sets
 * (firewall/evidence.ts), already rate-limited per client and destination.
 */
export interface FirewallHit {
  readonly ts: number
  readonly client: string
  readonly destination: string
  readonly family: Family
  /** 'tcp', 'udp', or another protocol's name or number as nft prints it. */
  readonly proto: string
  /** 0 when the protocol has no ports. */
  readonly port: number
  /** Rejected packets since the previous event for this client and destination. */
  readonly attempts: number
  /** The category and nft set whose reject rule matched (undefined: a set evidence.ts does not know). */
  readonly category?: string
  readonly set?: string
}
