// What every upstream transport (UDP socket pool, TCP/TLS stream, DoH) offers the pool.
//
// A transport answers by calling back, not with a promise: the pool's first attempt at a question
// is one object (an Exchange) that carries the query and hears the answer, so a forwarded query
// costs no promise, no closure and no microtask between the upstream's datagram and the answer to
// the client. `exchange` wraps this in a promise for the slow paths (failover, TCP retry) and tools.

/** One question to one upstream. The transport writes its own random ID into `wire`. */
export interface Exchange {
  /** The complete query; bytes 0-1 (ID) are overwritten by the transport. */
  readonly wire: Buffer
  /** The question section as sent (lower-cased), used to accept only the matching answer. */
  readonly question: Buffer
  readonly timeoutMs: number
  // The transport's own bookkeeping, kept on the exchange rather than in tables of its own: when
  // it gives up (its clock, ms), what carries the exchange (a socket), and where it is listed.
  deadline: number
  via: unknown
  at: number
  /** The answer whose ID and question match. Called once, never synchronously from `send`. */
  answer (raw: Buffer): void
  /** Called once instead of `answer`, with an UpstreamError. */
  fail (err: Error): void
}

/** Why a packet that arrived from (or claimed to be from) an upstream was thrown away. */
export type DropReason = 'unknown-id' | 'wrong-question' | 'short'

export interface Transport {
  readonly url: string
  /** Sends the query; the transport calls `x.answer` or `x.fail` later. */
  send (x: Exchange): void
  close (): void
}

/** One exchange as a promise: resolves with the answer bytes, rejects with an UpstreamError. */
export function exchange (t: Transport, q: { readonly wire: Buffer, readonly question: Buffer, readonly timeoutMs: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    t.send({ wire: q.wire, question: q.question, timeoutMs: q.timeoutMs, deadline: 0, via: undefined, at: 0, answer: resolve, fail: reject })
  })
}
