// What every upstream transport (UDP socket pool, TCP/TLS stream, DoH) offers the pool.

/** One question to one upstream. The transport writes its own random ID into `wire`. */
export interface Exchange {
  /** The complete query; bytes 0-1 (ID) are overwritten by the transport. */
  readonly wire: Buffer
  /** The question section as sent (lower-cased), used to accept only the matching answer. */
  readonly question: Buffer
  readonly timeoutMs: number
}

/** Why a packet that arrived from (or claimed to be from) an upstream was thrown away. */
export type DropReason = 'unknown-id' | 'wrong-question' | 'short'

export interface Transport {
  readonly url: string
  /** Resolves with the answer bytes whose ID and question match; rejects with an UpstreamError. */
  exchange (x: Exchange): Promise<Buffer>
  close (): void
}
