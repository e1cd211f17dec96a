// Plain DNS over UDP to one upstream through a pool of sockets, each bound to its own random port
// and connected to the upstream (RFC 5452): a query goes out on a randomly chosen socket with a
// fresh random ID, and an answer is accepted only if its ID and question match. A connected socket
// only ever receives datagrams from the upstream's address and port (the kernel discards the rest
// before we see them), sends skip the per-datagram route lookup, and an ICMP "port unreachable"
// comes back as ECONNREFUSED, failing that socket's queries at once instead of at their timeout.
// Anything else that does not match is dropped and reported through `onDrop`; the real answer is
// still accepted when it arrives.
//
// A socket is replaced by a fresh one (a new random port) after `rotateAfter` queries, so the set
// of ports in use keeps changing: someone who learned a port (say, from queries that reached a
// name server of theirs) has it for a few hundred queries, not for the daemon's lifetime. The old
// socket stays open until its last query is answered or timed out.
//
// Cost per query matters here (every cache miss comes through): no timer per query (one sweep
// every `sweepMs` fails the queries past their deadline), no promise and no record of our own per
// query (the pool's Exchange object is what waits, and hears the answer by a method call), the
// exchanges in flight found by ID in flat tables (a `Map` per socket, with entries added and
// removed at the query rate, kept rehashing and reallocating its storage), a synchronous lookup
// for the IP literal we connect to, and answers are handled and queries sent in one stretch per
// event-loop turn (UdpTurn). An ID is in use on one socket of the pool at a time: with a few
// hundred queries in flight among 65,536 IDs, that takes nothing measurable from an ID's
// unpredictability.

import dgram from 'node:dgram'
import { UpstreamError } from '../../errors.js'
import { questionMatches } from '../wire.js'
import type { RandomIds } from './random-ids.js'
import type { DropReason, Exchange, Transport } from './transport.js'
import type { DatagramHandler, UdpTurn } from '../udp-turn.js'

interface PoolSocket {
  readonly sock: dgram.Socket
  /** Queries sent from this socket and still waiting for their answer. */
  inFlight: number
  /** Queries sent from this socket. */
  sent: number
  /** Replaced in the pool: closes once nothing is in flight on it. */
  retired: boolean
}

const IDS = 65536

export interface UdpSocketPoolOptions {
  /** For error messages: the upstream's URL. */
  readonly url: string
  /** The upstream's IP literal and port. */
  readonly host: string
  readonly port: number
  readonly size: number
  readonly random: RandomIds
  /** Where answers are handled and queries sent, in one stretch per event-loop turn (udp-turn.ts). */
  readonly turn: UdpTurn
  readonly onDrop: (reason: DropReason) => void
  /** How often deadlines are checked (default 25 ms): a timeout fires up to this much late. */
  readonly sweepMs?: number
  /** Queries per socket before it is replaced by one on a new random port (default 1000). */
  readonly rotateAfter?: number
}

function literalLookup (address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4)
}

export class UdpSocketPool implements Transport {
  readonly url: string
  readonly #opts: UdpSocketPoolOptions
  #sockets: PoolSocket[] | undefined
  /** Replaced sockets still waiting for answers. */
  readonly #retired = new Set<PoolSocket>()
  #sweeper: NodeJS.Timeout | undefined
  /**
   * Exchanges in flight by query ID. An exchange carries the socket it was sent from (`via`) and
   * where its ID sits in #ids (`at`).
   */
  readonly #byId: Array<Exchange | undefined> = new Array<Exchange | undefined>(IDS).fill(undefined)
  /** The IDs in flight: the first #pendingCount (for the sweep). */
  readonly #ids = new Int32Array(IDS)
  #pendingCount = 0
  #closed = false

  constructor (opts: UdpSocketPoolOptions) {
    this.url = opts.url
    this.#opts = opts
  }

  #open (): PoolSocket[] {
    const out: PoolSocket[] = []
    for (let i = 0; i < this.#opts.size; i++) out.push(this.#socket())
    return out
  }

  #socket (): PoolSocket {
    const { host, port } = this.#opts
    const sock = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', lookup: literalLookup })
    const ps: PoolSocket = { sock, inFlight: 0, sent: 0, retired: false }
    const handler: DatagramHandler = { datagram: msg => { this.#onMessage(ps, msg) } }
    const turn = this.#opts.turn
    sock.on('message', (msg, rinfo) => { turn.received(handler, msg, rinfo) })
    sock.on('error', err => this.#onError(ps, err))
    sock.bind(0) // port 0: the kernel picks a random ephemeral port
    // With the synchronous lookup, bind and connect complete before this returns.
    sock.connect(port, host)
    sock.unref()
    return ps
  }

  /** Puts a fresh socket in `i`'s place; the old one (with the query just sent) closes after its last answer. */
  #rotate (sockets: PoolSocket[], i: number): void {
    const old = sockets[i]
    sockets[i] = this.#socket()
    old.retired = true
    this.#retired.add(old)
  }

  /** Sends `x.wire` to the upstream; `x` hears the matching answer, or the failure. */
  send (x: Exchange): void {
    const url = this.#opts.url
    if (this.#closed) { failLater(x, new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', url, 'shutting down')); return }
    const sockets = this.#sockets ??= this.#open()
    const random = this.#opts.random
    const index = random.below(sockets.length)
    const ps = sockets[index]
    const byId = this.#byId
    let id = random.u16()
    for (let tries = 0; byId[id] !== undefined; tries++) {
      if (tries > 64) { failLater(x, new UpstreamError('EGRESSD_ERR_UPSTREAM_NETWORK', url, 'no free query ID')); return }
      id = random.u16()
    }
    const wire = x.wire
    wire[0] = id >>> 8
    wire[1] = id
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), this.#opts.sweepMs ?? 25)
      this.#sweeper.unref()
    }
    x.deadline = Date.now() + x.timeoutMs
    byId[id] = x
    x.via = ps
    x.at = this.#pendingCount
    this.#ids[this.#pendingCount++] = id
    ps.inFlight++
    this.#opts.turn.send(ps.sock, wire, 0, '', ignoreSendError)
    if (++ps.sent >= (this.#opts.rotateAfter ?? 1000)) this.#rotate(sockets, index)
  }

  /** Takes `x` (with ID `id`) out of flight. */
  #settle (x: Exchange, id: number): void {
    const byId = this.#byId
    byId[id] = undefined
    // The last ID in the list takes this one's place.
    const last = this.#ids[--this.#pendingCount]
    if (last !== id) {
      this.#ids[x.at] = last
      ;(byId[last] as Exchange).at = x.at
    }
    const ps = x.via as PoolSocket
    x.via = undefined
    if (--ps.inFlight === 0 && ps.retired) {
      this.#retired.delete(ps)
      // After this turn's sends: the socket's last query may still sit in the send batch.
      setImmediate(() => { try { ps.sock.close() } catch { /* already closed with the pool */ } })
    }
  }

  /**
   * Fails every exchange in flight that `fails` picks. From the end of the list down: settling
   * moves the last ID into the place of the one taken out, and that one was looked at already.
   */
  #failEach (fails: (x: Exchange, ps: PoolSocket) => Error | undefined): void {
    for (let i = this.#pendingCount - 1; i >= 0; i--) {
      if (i >= this.#pendingCount) continue // an earlier failure settled more than one
      const id = this.#ids[i]
      const x = this.#byId[id] as Exchange
      const err = fails(x, x.via as PoolSocket)
      if (err === undefined) continue
      this.#settle(x, id)
      x.fail(err)
    }
  }

  #sweep (): void {
    if (this.#pendingCount === 0) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
      return
    }
    const now = Date.now()
    const url = this.#opts.url
    this.#failEach(x => x.deadline > now ? undefined : new UpstreamError('EGRESSD_ERR_UPSTREAM_TIMEOUT', url, `no answer within ${x.timeoutMs} ms`))
  }

  #onMessage (ps: PoolSocket, msg: Buffer): void {
    if (this.#closed) return // read before the pool closed: its queries have failed already
    if (msg.length < 12) { this.#opts.onDrop('short'); return }
    const id = (msg[0] << 8) | msg[1]
    const x = this.#byId[id]
    if (x === undefined || x.via !== ps) { this.#opts.onDrop('unknown-id'); return }
    if (!questionMatches(msg, x.question)) { this.#opts.onDrop('wrong-question'); return }
    this.#settle(x, id)
    x.answer(msg)
  }

  /** ECONNREFUSED (nobody listens on the upstream's port) and the like: this socket's queries fail now. */
  #onError (ps: PoolSocket, err: Error): void {
    const url = this.#opts.url
    this.#failEach((_x, on) => on === ps ? new UpstreamError('EGRESSD_ERR_UPSTREAM_NETWORK', url, err.message) : undefined)
  }

  close (): void {
    this.#closed = true
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    this.#sweeper = undefined
    const url = this.#opts.url
    this.#failEach(() => new UpstreamError('EGRESSD_ERR_UPSTREAM_CLOSED', url, 'shutting down'))
    for (const ps of [...this.#sockets ?? [], ...this.#retired]) ps.sock.close()
    this.#sockets = undefined
    this.#retired.clear()
  }
}

/** A failed send shows as a timeout, like a lost packet. */
function ignoreSendError (): void {}

/** Fails `x` after the current call: an exchange never hears back from inside `send`. */
function failLater (x: Exchange, err: Error): void {
  process.nextTick(() => { x.fail(err) })
}
