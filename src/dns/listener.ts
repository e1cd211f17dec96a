// DNS listeners: UDP and TCP on each configured address. TCP follows RFC 7766: 2-byte length
// framing, many queries per connection answered as they complete (possibly out of order), an idle
// timeout, a cap on connections and on queries in flight per connection (reading pauses at the cap).
// A client holds at most dns.tcp.maxConnectionsPerClient connections, and a connection whose
// answers are not read gets no more queries read once dns.tcp.maxQueuedBytesPerConnection of them
// wait to be written (closed if they do not drain within dns.tcp.stuckTimeoutMs): what one client
// makes the daemon hold is bounded. UDP sockets ask for dns.udp.receiveBufferBytes of buffer.
// Knows nothing of DNS beyond framing: every message goes to the injected `serve` function
// (contract.ts), with its arrival time: the UDP turn's (one clock read per turn), or the time a
// TCP connection's bytes were read. At the end of each UDP turn, once its answers are sent, the
// answers given at once are timed (AnswerTimes.release: one clock read).

import { Buffer } from 'node:buffer' // a plain binding; the global is a getter (see wire.ts)
import dgram from 'node:dgram'
import net from 'node:net'
import type { Logger } from 'pino'
import type { DnsConfig, ListenAddress } from '../config/types.js'
import { EgressdError } from '../errors.js'
import { udpKernelDrops } from './kernel-drops.js'
import { PENDING, type Protocol, type Replier, type Serve } from './contract.js'
import type { DnsMetrics } from './metrics.js'
import type { DatagramHandler, UdpTurn } from './udp-turn.js'

// What the listener's users import from here (their home is contract.ts).
export type { Replier, Serve } from './contract.js'

/**
 * Replies go to the address the query came from, always an IP literal: this lookup hands it back
 * synchronously, sparing every send the default dns.lookup round through process.nextTick.
 */
function literalLookup (address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4)
}

export interface BoundAddress { readonly protocol: Protocol, readonly host: string, readonly port: number }

/** The listener sockets' state right now, for /metrics and status (computed when asked). */
export interface ListenerFigures {
  /** Client TCP connections open. */
  readonly tcpConnections: number
  /** Client addresses holding at least one TCP connection. */
  readonly tcpClients: number
  /** Answer bytes waiting to be written, over all connections, and on the fullest one. */
  readonly tcpQueuedBytes: number
  readonly tcpMaxQueuedBytes: number
  /** Connections whose reading is paused because their answers do not drain. */
  readonly tcpWriteBlocked: number
  /** Datagrams the kernel dropped on the UDP listener sockets (receive buffer full), summed; undefined if unknown (no /proc). */
  readonly udpKernelDrops: number | undefined
  /** Each UDP listener socket: its address, SO_RCVBUF as the kernel reports it (Linux: twice what it grants), its kernel drops. */
  readonly udp: ReadonlyArray<{ readonly address: string, readonly receiveBufferBytes: number, readonly kernelDrops: number | undefined }>
}

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
  /** Open TCP connections per client address (dns.tcp.maxConnectionsPerClient). */
  readonly #perClient = new Map<string, number>()
  /** Connections whose reading is paused because their answers do not drain. */
  #writeBlocked = 0
  readonly #udpBound: Array<{ family: 4 | 6, host: string, port: number, receiveBuffer: number }> = []
  #inflight = 0
  #draining = false
  #closed = false
  #drained: (() => void) | undefined
  readonly #onSendError = (err: unknown, client: string): void => {
    this.#deps.metrics.udpSendErrors++
    this.#log.debug({ err, client }, 'UDP send failed')
  }
  /** A UDP turn is over and its answers sent: the answers given at once in it are timed. */
  readonly #releaseTimes = (): void => {
    const m = this.#deps.metrics
    if (m.answerTimes.untimed(m.outcomes) === 0) return
    const at = this.#deps.turn.arrivedAt
    m.answerTimes.release(m.outcomes, at !== at ? NaN : this.#deps.turn.clock() - at) // NaN: a turn outside the sample
  }

  constructor (deps: ListenerDeps, serve: Serve) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'listener' })
    this.serve = serve
    deps.turn.onTurnEnd(this.#releaseTimes)
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
    // A receive buffer large enough to ride out a stall of the event loop (a GC pause, a list
    // rebuild): what does not fit is dropped by the kernel (udpKernelDrops). SO_RCVBUF is set
    // between bind and listening; net.core.rmem_max caps what the kernel grants.
    const requested = this.#deps.dns.udp.receiveBufferBytes
    const sock = dgram.createSocket({ type: a.family === 6 ? 'udp6' : 'udp4', ipv6Only: a.family === 6, lookup: literalLookup, recvBufferSize: requested > 0 ? requested : undefined })
    return new Promise((resolve, reject) => {
      sock.once('error', err => {
        sock.close() // a socket that failed to bind still holds a handle
        reject(new EgressdError('EGRESSD_ERR_LISTEN', `cannot listen on udp ${a.host}:${a.port}: ${err.message}`, { cause: err }))
      })
      sock.bind(a.port, a.host, () => {
        sock.removeAllListeners('error')
        sock.on('error', err => this.#log.error({ err }, 'UDP socket error'))
        let granted = 0
        try { granted = sock.getRecvBufferSize() } catch { /* not available: logged as 0 */ }
        const port = sock.address().port
        this.#udpBound.push({ family: a.family, host: a.host, port, receiveBuffer: granted })
        // Linux reports twice the size it was asked for (the other half is its bookkeeping), so
        // less than the request means net.core.rmem_max cut it.
        if (requested > 0 && granted < requested) {
          this.#log.warn({ address: `${a.host}:${port}`, requested, granted }, 'UDP receive buffer smaller than dns.udp.receiveBufferBytes: the kernel caps it at net.core.rmem_max (raise it with sysctl)')
        } else {
          this.#log.info({ address: `${a.host}:${port}`, requested, granted }, 'UDP receive buffer')
        }
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
        resolve(port)
      })
    })
  }

  #onUdp (sock: dgram.Socket, replier: Replier, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    // Source port 0 cannot be answered (and is never a real client): drop it before any work.
    if (this.#draining || rinfo.port === 0) return
    const r = this.serve(msg, 'udp', rinfo.address, replier, rinfo, this.#deps.turn.arrivedAt)
    if (r === PENDING) this.#inflight++
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
    const client = sock.remoteAddress ?? ''
    // One address may not take every slot of maxConnections: past its share the connection is
    // closed before anything is read from it.
    const held = this.#perClient.get(client) ?? 0
    if (held >= t.maxConnectionsPerClient) {
      m.tcp.clientLimited++
      sock.on('error', () => {})
      sock.destroy()
      return
    }
    m.tcp.accepted++ // like 'rejected', a connection closed for its client's limit is not counted as accepted
    this.#perClient.set(client, held + 1)
    this.#conns.add(sock)
    const refused = !this.allows(client)
    let buf: Buffer | undefined
    /** When the last bytes were read (the arrival time of the queries they complete). */
    let arrived = 0
    let inflight = 0
    let paused = false
    let served = 0
    /** More than maxQueuedBytesPerConnection of answers wait to be written: no more queries are read. */
    let blocked = false
    let stuck: NodeJS.Timeout | undefined
    sock.setTimeout(t.idleTimeoutMs)
    sock.on('timeout', () => {
      if (inflight === 0 && !blocked) { m.tcp.idleClosed++; sock.end() }
    })
    sock.on('error', () => { m.tcp.errors++ })
    sock.on('close', () => {
      this.#conns.delete(sock)
      const n = (this.#perClient.get(client) ?? 1) - 1
      if (n > 0) this.#perClient.set(client, n)
      else this.#perClient.delete(client)
      if (blocked) { blocked = false; this.#writeBlocked-- }
      if (stuck !== undefined) { clearTimeout(stuck); stuck = undefined }
      buf = undefined
    })
    sock.on('drain', () => {
      if (!blocked) return
      blocked = false
      this.#writeBlocked--
      if (stuck !== undefined) { clearTimeout(stuck); stuck = undefined }
      pump()
    })

    const send = (b: Buffer): void => {
      if (sock.destroyed || !sock.writable || b.length > 65535) return
      const frame = Buffer.allocUnsafe(2 + b.length)
      frame.writeUInt16BE(b.length, 0)
      b.copy(frame, 2)
      sock.write(frame)
      if (refused) sock.end()
      // The client is not reading its answers (or not fast enough): stop taking its queries until
      // they drain. writableNeedDrain guarantees the 'drain' that ends this.
      else if (!blocked && sock.writableLength > t.maxQueuedBytesPerConnection && sock.writableNeedDrain) block()
    }
    const block = (): void => {
      blocked = true
      this.#writeBlocked++
      m.tcp.writePaused++
      stuck = setTimeout(() => {
        stuck = undefined
        if (!blocked) return
        m.tcp.stuckClosed++
        sock.destroy() // end() would wait for the very answers that do not drain
      }, t.stuckTimeoutMs)
      stuck.unref()
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
    // Takes complete frames off the buffer while fewer than the cap are in flight and the answers
    // drain; otherwise reading pauses and the rest waits in the buffer (at most one read's worth).
    const pump = (): void => {
      while (buf !== undefined && buf.length >= 2 && !blocked && !this.#draining && inflight < t.maxInflightPerConnection && !(refused && served > 0)) {
        const len = buf.readUInt16BE(0)
        if (buf.length < 2 + len) break
        const msg = Buffer.from(buf.subarray(2, 2 + len))
        buf = buf.length === 2 + len ? undefined : buf.subarray(2 + len)
        served++
        const r = this.serve(msg, 'tcp', client, replier, null, arrived)
        if (r === PENDING) {
          inflight++
          this.#inflight++
        } else if (r !== null) {
          send(r)
        } else if (refused) {
          sock.end() // nothing to answer (a dropped packet): a refused client's connection still closes
        }
      }
      const hold = blocked || inflight >= t.maxInflightPerConnection
      if (hold && !paused) { paused = true; sock.pause() } else if (!hold && paused && !this.#draining) { paused = false; sock.resume() }
    }
    sock.on('data', (d: Buffer) => {
      arrived = this.#deps.turn.clock()
      buf = buf === undefined ? d : Buffer.concat([buf, d])
      pump()
    })
  }

  /** Connections, queued answers and kernel drops right now (walks the open connections). */
  figures (): ListenerFigures {
    let queued = 0
    let max = 0
    for (const c of this.#conns) {
      const n = c.writableLength
      queued += n
      if (n > max) max = n
    }
    const drops = udpKernelDrops(this.#udpBound)
    let sum: number | undefined = 0
    for (const n of drops) sum = n === undefined || sum === undefined ? undefined : sum + n
    return {
      tcpConnections: this.#conns.size,
      tcpClients: this.#perClient.size,
      tcpQueuedBytes: queued,
      tcpMaxQueuedBytes: max,
      tcpWriteBlocked: this.#writeBlocked,
      udpKernelDrops: sum,
      udp: this.#udpBound.map((u, i) => ({ address: u.family === 6 ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`, receiveBufferBytes: u.receiveBuffer, kernelDrops: drops[i] }))
    }
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
    this.#deps.turn.offTurnEnd(this.#releaseTimes)
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
    this.#udpBound.length = 0
    this.#tcp.length = 0
  }
}
