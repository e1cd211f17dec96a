// Plain DNS over UDP through a pool of sockets, each bound to its own random port (RFC 5452):
// a query goes out on a randomly chosen socket with a fresh random ID, and an answer is accepted
// only if its source address and port, its ID and its question all match. Anything else is
// dropped and reported through `onDrop`; the real answer is still accepted when it arrives.

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
  readonly resolve: (b: Buffer) => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
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
}

export class UdpSocketPool {
  readonly #opts: UdpSocketPoolOptions
  #sockets: PoolSocket[] | undefined

  constructor (opts: UdpSocketPoolOptions) {
    this.#opts = opts
  }

  #open (): PoolSocket[] {
    const out: PoolSocket[] = []
    for (let i = 0; i < this.#opts.size; i++) {
      const sock = dgram.createSocket({ type: this.#opts.family === 6 ? 'udp6' : 'udp4', recvBufferSize: 1 << 20 })
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
    const sockets = this.#sockets ??= this.#open()
    const random = this.#opts.random
    const ps = sockets[random.below(sockets.length)]
    let id = random.u16()
    for (let tries = 0; ps.pending.has(id); tries++) {
      if (tries > 64) return Promise.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_NETWORK', url, 'no free query ID on the socket'))
      id = random.u16()
    }
    x.wire.writeUInt16BE(id, 0)
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        ps.pending.delete(id)
        reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_TIMEOUT', url, `no answer within ${x.timeoutMs} ms`))
      }, x.timeoutMs)
      ps.pending.set(id, { host, port, question: x.question, url, resolve, reject, timer })
      ps.sock.send(x.wire, port, host, err => {
        if (err == null) return
        const p = ps.pending.get(id)
        if (p === undefined) return
        ps.pending.delete(id)
        clearTimeout(p.timer)
        reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_NETWORK', url, `send failed: ${err.message}`, { cause: err }))
      })
    })
  }

  #onMessage (ps: PoolSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) { this.#opts.onDrop('short'); return }
    const id = (msg[0] << 8) | msg[1]
    const p = ps.pending.get(id)
    if (p === undefined) { this.#opts.onDrop('unknown-id'); return }
    if (rinfo.port !== p.port || rinfo.address !== p.host) { this.#opts.onDrop('wrong-source'); return }
    if (!questionMatches(msg, p.question)) { this.#opts.onDrop('wrong-question'); return }
    ps.pending.delete(id)
    clearTimeout(p.timer)
    p.resolve(msg)
  }

  /** The local ports in use (for tests and status). */
  ports (): number[] {
    return (this.#sockets ?? []).map(s => { try { return s.sock.address().port } catch { return 0 } })
  }

  close (): void {
    for (const ps of this.#sockets ?? []) {
      for (const p of ps.pending.values()) {
        clearTimeout(p.timer)
        p.reject(new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', p.url, 'shutting down'))
      }
      ps.pending.clear()
      ps.sock.close()
    }
    this.#sockets = undefined
  }
}
