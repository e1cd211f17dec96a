// DNS listeners: UDP and TCP on each configured address. TCP follows RFC 7766: 2-byte length
// framing, many queries per connection answered as they complete (possibly out of order), an idle
// timeout, a cap on connections and on queries in flight per connection (reading pauses at the cap).
// Knows nothing of DNS beyond framing: every message goes to the injected `serve` function.

import { Buffer } from 'node:buffer' // a plain binding; the global is a getter (see wire.ts)
import dgram from 'node:dgram'
import net from 'node:net'
import type { Logger } from 'pino'
import type { DnsConfig, ListenAddress } from '../config/types.js'
import { EgressdError } from '../errors.js'
import type { DnsMetrics } from './metrics.js'
import type { Protocol } from './pipeline.js'
import type { DatagramHandler, UdpTurn } from './udp-turn.js'

/**
 * Replies go to the address the query came from, always an IP literal: this lookup hands it back
 * synchronously, sparing every send the default dns.lookup round through process.nextTick.
 */
function literalLookup (address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4)
}

/**
 * Answers one query: returns the answer bytes now, null to send nothing, or LATER when the answer
 * comes later through `replier.reply(to, answer)` (called exactly once, never synchronously). A
 * callback, not a promise: a forwarded query then costs no promise of the listener's own. One
 * Replier per socket or connection, and `to` what tells the client apart (the UDP sender's
 * address): no closure per query.
 */
export type Serve = (msg: Buffer, protocol: Protocol, client: string, replier: Replier, to: unknown) => Buffer | null | typeof LATER
export interface Replier { reply (to: unknown, answer: Buffer): void }
/** What `Serve` returns when it will answer through `reply`. */
export const LATER = 0

export interface BoundAddress { readonly protocol: Protocol, readonly host: string, readonly port: number }

export interface ListenerDeps {
  readonly dns: DnsConfig
  readonly log: Logger
  readonly metrics: DnsMetrics
  /** Where UDP queries are handled and answers sent, in one stretch per event-loop turn (udp-turn.ts). */
  readonly turn: UdpTurn
}

export class DnsListener {
  readonly #deps: ListenerDeps
  readonly #log: Logger
  /** Swappable: a config reload installs a new pipeline without touching sockets. */
  serve: Serve
  /**
   * Whether a client is served (dns.allowClients). A TCP connection from any other client gets
   * the answer to its first query (REFUSED, from `serve`) and is then closed, so that it holds no
   * connection slot.
   */
  allows: (client: string) => boolean = () => true
  readonly #udp: dgram.Socket[] = []
  readonly #tcp: net.Server[] = []
  readonly #conns = new Set<net.Socket>()
  #inflight = 0
  #draining = false
  #closed = false
  #drained: (() => void) | undefined
  readonly #onSendError = (err: unknown, client: string): void => {
    this.#deps.metrics.udpSendErrors++
    this.#log.debug({ err, client }, 'UDP send failed')
  }

  constructor (deps: ListenerDeps, serve: Serve) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'listener' })
    this.serve = serve
  }

  /** Binds UDP and TCP on every address; rejects (closing what was opened) if any bind fails. */
  async start (): Promise<BoundAddress[]> {
    const bound: BoundAddress[] = []
    try {
      for (const a of this.#deps.dns.listen) {
        // Bind TCP first so that port 0 (tests) gives UDP the same port number; if someone else
        // holds that UDP port, try another one.
        for (let attempt = 1; ; attempt++) {
          const tcpPort = await this.#listenTcp(a)
          try {
            const udpPort = await this.#listenUdp({ ...a, port: a.port === 0 ? tcpPort : a.port })
            bound.push({ protocol: 'tcp', host: a.host, port: tcpPort }, { protocol: 'udp', host: a.host, port: udpPort })
            break
          } catch (err) {
            if (a.port !== 0 || attempt === 10) throw err
            const server = this.#tcp.pop()
            await new Promise<void>(resolve => server?.close(() => resolve()) ?? resolve())
          }
        }
      }
    } catch (err) {
      await this.close(0)
      throw err
    }
    this.#log.info({ addresses: bound.map(b => `${b.protocol}://${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`) }, 'DNS listening')
    return bound
  }

  #listenUdp (a: ListenAddress): Promise<number> {
    // ipv6Only like the TCP side: [::] and 0.0.0.0 can then both be listed, and TCP/UDP agree.
    const sock = dgram.createSocket({ type: a.family === 6 ? 'udp6' : 'udp4', ipv6Only: a.family === 6, lookup: literalLookup })
    return new Promise((resolve, reject) => {
      sock.once('error', err => reject(new EgressdError('EGRESSD_ERR_LISTEN', `cannot listen on udp ${a.host}:${a.port}: ${err.message}`, { cause: err })))
      sock.bind(a.port, a.host, () => {
        sock.removeAllListeners('error')
        sock.on('error', err => this.#log.error({ err }, 'UDP socket error'))
        const replier: Replier = {
          reply: (to, b) => {
            this.#sendUdp(sock, b, to as dgram.RemoteInfo)
            this.#done()
          }
        }
        const handler: DatagramHandler = { datagram: (msg, rinfo) => { this.#onUdp(sock, replier, msg, rinfo) } }
        const turn = this.#deps.turn
        sock.on('message', (msg, rinfo) => { turn.received(handler, msg, rinfo) })
        this.#udp.push(sock)
        resolve(sock.address().port)
      })
    })
  }

  #onUdp (sock: dgram.Socket, replier: Replier, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    // Source port 0 cannot be answered (and is never a real client): drop it before any work.
    if (this.#draining || rinfo.port === 0) return
    const r = this.serve(msg, 'udp', rinfo.address, replier, rinfo)
    if (r === LATER) this.#inflight++
    else if (r !== null) this.#sendUdp(sock, r, rinfo)
  }

  #sendUdp (sock: dgram.Socket, b: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#closed) return
    this.#deps.turn.send(sock, b, rinfo.port, rinfo.address, this.#onSendError)
  }

  #listenTcp (a: ListenAddress): Promise<number> {
    const t = this.#deps.dns.tcp
    const server = net.createServer({ noDelay: true }, sock => this.#onConnection(sock))
    server.maxConnections = t.maxConnections
    server.on('drop', () => { this.#deps.metrics.tcp.rejected++ })
    return new Promise((resolve, reject) => {
      server.once('error', err => reject(new EgressdError('EGRESSD_ERR_LISTEN', `cannot listen on tcp ${a.host}:${a.port}: ${err.message}`, { cause: err })))
      server.listen({ port: a.port, host: a.host, ipv6Only: a.family === 6 }, () => {
        server.removeAllListeners('error')
        server.on('error', err => this.#log.error({ err }, 'TCP server error'))
        this.#tcp.push(server)
        resolve((server.address() as net.AddressInfo).port)
      })
    })
  }

  #onConnection (sock: net.Socket): void {
    const m = this.#deps.metrics
    const t = this.#deps.dns.tcp
    m.tcp.accepted++
    this.#conns.add(sock)
    const client = sock.remoteAddress ?? ''
    const refused = !this.allows(client)
    let buf: Buffer | undefined
    let inflight = 0
    let paused = false
    let served = 0
    sock.setTimeout(t.idleTimeoutMs)
    sock.on('timeout', () => {
      if (inflight === 0) { m.tcp.idleClosed++; sock.end() }
    })
    sock.on('error', () => { m.tcp.errors++ })
    sock.on('close', () => { this.#conns.delete(sock) })

    const send = (b: Buffer): void => {
      if (sock.destroyed || !sock.writable || b.length > 65535) return
      const frame = Buffer.allocUnsafe(2 + b.length)
      frame.writeUInt16BE(b.length, 0)
      b.copy(frame, 2)
      sock.write(frame)
      if (refused) sock.end()
    }
    const replier: Replier = {
      reply: (_to, b) => {
        send(b)
        inflight--
        this.#done()
        pump()
        if (this.#draining && inflight === 0) sock.end()
      }
    }
    // Takes complete frames off the buffer while fewer than the cap are in flight; at the cap,
    // reading pauses and the rest waits in the buffer until answers go out.
    const pump = (): void => {
      while (buf !== undefined && buf.length >= 2 && !this.#draining && inflight < t.maxInflightPerConnection && !(refused && served > 0)) {
        const len = buf.readUInt16BE(0)
        if (buf.length < 2 + len) break
        const msg = Buffer.from(buf.subarray(2, 2 + len))
        buf = buf.length === 2 + len ? undefined : buf.subarray(2 + len)
        served++
        const r = this.serve(msg, 'tcp', client, replier, null)
        if (r === LATER) {
          inflight++
          this.#inflight++
        } else if (r !== null) {
          send(r)
        } else if (refused) {
          sock.end() // nothing to answer (a dropped packet): a refused client's connection still closes
        }
      }
      const full = inflight >= t.maxInflightPerConnection
      if (full && !paused) { paused = true; sock.pause() } else if (!full && paused && !this.#draining) { paused = false; sock.resume() }
    }
    sock.on('data', (d: Buffer) => {
      buf = buf === undefined ? d : Buffer.concat([buf, d])
      pump()
    })
  }

  #done (): void {
    this.#inflight--
    if (this.#draining && this.#inflight === 0) this.#drained?.()
  }

  /** Queries being answered right now (waiting on upstreams). */
  get inflight (): number { return this.#inflight }

  /**
   * Stops accepting queries, waits up to `graceMs` for the ones in flight to be answered, then
   * closes every socket.
   */
  async close (graceMs: number): Promise<void> {
    this.#draining = true
    for (const s of this.#tcp) s.close()
    if (this.#inflight > 0 && graceMs > 0) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, graceMs)
        this.#drained = () => { clearTimeout(timer); resolve() }
      })
    }
    this.#closed = true
    this.#deps.turn.flush() // answers already given go out before their sockets close
    // end() lets answers already written reach the client; destroy whatever is still open later.
    for (const c of this.#conns) {
      c.end()
      setTimeout(() => c.destroy(), 1000).unref()
    }
    for (const s of this.#udp) s.close()
    this.#udp.length = 0
    this.#tcp.length = 0
  }
}
