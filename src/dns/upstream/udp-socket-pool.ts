// Plain DNS over UDP through a pool of sockets, each bound to its own random port (RFC 5452):
// a query goes out on a randomly chosen socket with a fresh random ID, and an answer is accepted
// only if its source address and port, its ID and its question all match. Anything else is
// dropped and reported through `onDrop`; the real answer is still accepted when it arrives.
//
// Cost per query matters here (every cache miss comes through): no timer per query (one sweep
// every `sweepMs` fails the queries past their deadline), and a synchronous lookup for the IP
// literals we send to, so a send does not go round dns.lookup and process.nextTick.

import dgram from 'node:dgram'
import { UpstreamError } from '../../errors.js'
import { questionMatches } from '../wire.js'
import type { RandomIds } from './random-ids.js'
import type { DropReason, Exchange } from './transport.js'

interface Pending {
  readonly host: string
  readonly port: number
  readonly question: Buffer
  readonly url: string
  readonly deadline: number
  readonly timeoutMs: number
  readonly resolve: (b: Buffer) => void
  readonly reject: (e: Error) => void
}

interface PoolSocket {
  readonly sock: dgram.Socket
  readonly pending: Map<number, Pending>
}

export interface UdpSocketPoolOptions {
  readonly family: 4 | 6
  readonly size: number
  readonly random: RandomIds
  readonly onDrop: (reason: DropReason) => void
  /** How often deadlines are checked (default 25 ms): a timeout fires up to this much late. */
  readonly sweepMs?: number
}

function literalLookup (address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4)
}

export class UdpSocketPool {
  readonly #opts: UdpSocketPoolOptions
  #sockets: PoolSocket[] | undefined
  #sweeper: NodeJS.Timeout | undefined
  #pendingCount = 0
  #closed = false

  constructor (opts: UdpSocketPoolOptions) {
    this.#opts = opts
  }

  #open (): PoolSocket[] {
    const out: PoolSocket[] = []
    for (let i = 0; i < this.#opts.size; i++) {
      const sock = dgram.createSocket({ type: this.#opts.family === 6 ? 'udp6' : 'udp4', lookup: literalLookup })
      const ps: PoolSocket = { sock, pending: new Map() }
      sock.on('message', (msg, rinfo) => this.#onMessage(ps, msg, rinfo))
      sock.on('error', () => { /* ICMP errors on unconnected sockets: the query times out */ })
      sock.bind(0) // port 0: the kernel picks a random ephemeral port
      sock.unref()
      out.push(ps)
    }
    return out
  }

  /** Sends `x.wire` to host:port and waits for the matching answer. */
  exchange (url: string, host: string, port: number, x: Exchange): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', url, 'shutting down'))
    const sockets = this.#sockets ??= this.#open()
    const random = this.#opts.random
    const ps = sockets[random.below(sockets.length)]
    let id = random.u16()
    for (let tries = 0; ps.pending.has(id); tries++) {
      if (tries > 64) return Promise.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_NETWORK', url, 'no free query ID on the socket'))
      id = random.u16()
    }
    x.wire.writeUInt16BE(id, 0)
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), this.#opts.sweepMs ?? 25)
      this.#sweeper.unref()
    }
    return new Promise<Buffer>((resolve, reject) => {
      ps.pending.set(id, { host, port, question: x.question, url, deadline: Date.now() + x.timeoutMs, timeoutMs: x.timeoutMs, resolve, reject })
      this.#pendingCount++
      // No send callback (it would cost a closure and a nextTick per query): a failed send is
      // noticed as a timeout, like a lost packet.
      ps.sock.send(x.wire, port, host)
    })
  }

  #settle (ps: PoolSocket, id: number): void {
    ps.pending.delete(id)
    this.#pendingCount--
  }

  #sweep (): void {
    if (this.#pendingCount === 0) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
      return
    }
    const now = Date.now()
    for (const ps of this.#sockets ?? []) {
      for (const [id, p] of ps.pending) {
        if (p.deadline > now) continue
        this.#settle(ps, id)
        p.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_TIMEOUT', p.url, `no answer within ${p.timeoutMs} ms`))
      }
    }
  }

  #onMessage (ps: PoolSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) { this.#opts.onDrop('short'); return }
    const id = (msg[0] << 8) | msg[1]
    const p = ps.pending.get(id)
    if (p === undefined) { this.#opts.onDrop('unknown-id'); return }
    if (rinfo.port !== p.port || rinfo.address !== p.host) { this.#opts.onDrop('wrong-source'); return }
    if (!questionMatches(msg, p.question)) { this.#opts.onDrop('wrong-question'); return }
    this.#settle(ps, id)
    p.resolve(msg)
  }

  close (): void {
    this.#closed = true
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    this.#sweeper = undefined
    for (const ps of this.#sockets ?? []) {
      for (const p of ps.pending.values()) p.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', p.url, 'shutting down'))
      ps.pending.clear()
      ps.sock.close()
    }
    this.#pendingCount = 0
    this.#sockets = undefined
  }
}
