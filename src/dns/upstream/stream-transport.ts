// DNS over a byte stream (plain TCP, or TLS for DNS-over-TLS, RFC 7858): one long-lived connection
// per upstream, opened on demand, with RFC 7766 pipelining (many queries in flight, answers in any
// order, matched by random ID and question). The connection closes after an idle period. When the
// server closes a connection with queries still in flight, each of them is re-sent once on a new one.

import { Buffer } from 'node:buffer' // a plain binding; the global is a getter (see wire.ts)
import type { Duplex } from 'node:stream'
import { UpstreamError } from '../../errors.js'
import { questionMatches } from '../wire.js'
import type { RandomIds } from './random-ids.js'
import type { DropReason, Exchange, Transport } from './transport.js'

interface Pending {
  readonly x: Exchange
  readonly resolve: (b: Buffer) => void
  readonly reject: (e: Error) => void
  timer: NodeJS.Timeout | undefined
  id: number
  resent: boolean
}

export interface StreamTransportOptions {
  readonly url: string
  /** Opens a new connection (net.connect or tls.connect); writes before it is up are queued. */
  readonly connect: () => Duplex
  readonly random: RandomIds
  readonly onDrop: (reason: DropReason) => void
  /** Close the connection after this long without queries in flight (default 10 s). */
  readonly idleMs?: number
}

export class StreamTransport implements Transport {
  readonly url: string
  readonly #opts: StreamTransportOptions
  #conn: Duplex | undefined
  #buf: Buffer | undefined
  #idle: NodeJS.Timeout | undefined
  readonly #pending = new Map<number, Pending>()
  #closed = false

  constructor (opts: StreamTransportOptions) {
    this.url = opts.url
    this.#opts = opts
  }

  send (x: Exchange): void {
    this.#exchange(x).then(raw => { x.answer(raw) }, (err: Error) => { x.fail(err) })
  }

  #exchange (x: Exchange): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', this.url, 'transport closed'))
    // Leave room in the 16-bit ID space, or picking a free ID could take forever.
    if (this.#pending.size >= 60000) return Promise.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_NETWORK', this.url, 'too many queries in flight on the connection'))
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { x, resolve, reject, timer: undefined, id: -1, resent: false }
      p.timer = setTimeout(() => {
        if (this.#pending.get(p.id) === p) this.#pending.delete(p.id)
        this.#armIdle()
        reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_TIMEOUT', this.url, `no answer within ${x.timeoutMs} ms`))
      }, x.timeoutMs)
      this.#send(p)
    })
  }

  #send (p: Pending): void {
    let id = this.#opts.random.u16()
    while (this.#pending.has(id)) id = this.#opts.random.u16()
    p.id = id
    p.x.wire.writeUInt16BE(id, 0)
    this.#pending.set(id, p)
    const frame = Buffer.allocUnsafe(2 + p.x.wire.length)
    frame.writeUInt16BE(p.x.wire.length, 0)
    p.x.wire.copy(frame, 2)
    if (this.#idle !== undefined) { clearTimeout(this.#idle); this.#idle = undefined }
    this.#connection().write(frame)
  }

  #connection (): Duplex {
    if (this.#conn !== undefined) return this.#conn
    const conn = this.#opts.connect()
    this.#conn = conn
    this.#buf = undefined
    let failure: Error | undefined
    let answered = false
    conn.on('data', (d: Buffer) => { answered = true; this.#onData(d) })
    conn.on('error', (err: Error) => { failure = err }) // 'close' follows and fails or re-sends what is in flight
    conn.on('close', () => this.#onClose(conn, failure, answered))
    return conn
  }

  #onData (d: Buffer): void {
    let buf = this.#buf === undefined ? d : Buffer.concat([this.#buf, d])
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0)
      if (buf.length < 2 + len) break
      this.#onAnswer(buf.subarray(2, 2 + len))
      buf = buf.subarray(2 + len)
    }
    this.#buf = buf.length > 0 ? buf : undefined
  }

  #onAnswer (msg: Buffer): void {
    if (msg.length < 12) { this.#opts.onDrop('short'); return }
    const id = msg.readUInt16BE(0)
    const p = this.#pending.get(id)
    if (p === undefined) { this.#opts.onDrop('unknown-id'); return }
    if (!questionMatches(msg, p.x.question)) { this.#opts.onDrop('wrong-question'); return }
    this.#pending.delete(id)
    clearTimeout(p.timer)
    p.resolve(Buffer.from(msg))
    this.#armIdle()
  }

  /**
   * A connection that had worked and was closed by the server (idle, or its own limits) gets the
   * queries it still carried re-sent once on a new one. One that failed before any answer (refused,
   * TLS handshake or certificate error) fails its queries at once, with the reason.
   */
  #onClose (conn: Duplex, failure: Error | undefined, answered: boolean): void {
    if (this.#conn !== conn) return
    this.#conn = undefined
    const inFlight = [...this.#pending.values()]
    this.#pending.clear()
    const retry = answered || failure === undefined
    for (const p of inFlight) {
      if (retry && !p.resent && !this.#closed) {
        p.resent = true
        this.#send(p)
      } else {
        clearTimeout(p.timer)
        const why = failure === undefined ? '' : `: ${failure.message}`
        p.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', this.url, `connection closed before the answer arrived${why}`, { cause: failure }))
      }
    }
  }

  #armIdle (): void {
    if (this.#pending.size > 0 || this.#conn === undefined || this.#idle !== undefined) return
    this.#idle = setTimeout(() => {
      this.#idle = undefined
      if (this.#pending.size === 0) this.#conn?.end()
    }, this.#opts.idleMs ?? 10_000)
    this.#idle.unref()
  }

  close (): void {
    this.#closed = true
    if (this.#idle !== undefined) clearTimeout(this.#idle)
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer)
      p.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', this.url, 'shutting down'))
    }
    this.#pending.clear()
    this.#conn?.destroy()
    this.#conn = undefined
  }
}
