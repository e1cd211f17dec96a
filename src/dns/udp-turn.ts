// The UDP work of one event-loop turn, done in one stretch: the datagrams that arrived (queries
// from clients, answers from upstreams) are queued as libuv reads them, handled one after another
// once the reading is over, and everything there is to send then goes out back to back.
//
// Why not handle each datagram as it is read: handled in a row, with no system call in between,
// the datagrams of a turn cost less. On this VM a system call leaves the JavaScript after it with
// cold first-level caches and TLB (`bench/after-syscall.mjs`: 512 reads right after a getrusage
// call cost 0.7-1.0 µs more than the same reads made in a row), and every datagram read is one.
// Measured (`bench/ab.sh`, fresh daemons, 6 rounds each, against handling each datagram at once
// with sends batched): CPU per query 5.6 % lower for blocked names (W1), 7.5 % for cache hits
// (W2), 4.8 % for forwarded queries (W3), every round lower.
//
// Why sends wait for the end of the turn: a datagram to a peer that sleeps (a client, an upstream
// on another core) costs the sender that peer's wake-up; sent back to back, the datagrams of one
// turn mostly find the peer still awake. Measured on the forwarding benchmark (W3): 9.6k -> 17k
// queries/s against sending each datagram as soon as it is ready.
//
// The turn runs from setImmediate, right after the poll phase that read the datagrams, so a
// datagram waits microseconds. The queue holds what one poll phase read (libuv reads at most 32
// datagrams per socket per wake-up), so it is bounded without a limit of its own.
//
// The turn reads the clock once, as it starts handling its datagrams (`arrivedAt`): the arrival
// time of every datagram of the turn, so no datagram costs a clock read of its own. Hooks that run
// once the turn's sends are out (`onTurnEnd`) time what the turn answered (answer-time.ts).

import type dgram from 'node:dgram'
import { answerClock } from './answer-time.js'

/** Handles a datagram received in this turn. */
export interface DatagramHandler {
  datagram (msg: Buffer, rinfo: dgram.RemoteInfo): void
}

/** Hears about a send that threw (a closed socket, a bad address). */
export type SendErrorHandler = (err: unknown, host: string) => void

export class UdpTurn {
  #handlers: DatagramHandler[] = []
  #msgs: Buffer[] = []
  #rinfos: dgram.RemoteInfo[] = []
  #socks: dgram.Socket[] = []
  #bufs: Buffer[] = []
  /** Port 0: the socket is connected, send without an address. */
  #ports: number[] = []
  #hosts: string[] = []
  #onErrors: SendErrorHandler[] = []
  #scheduled = false
  readonly #run = (): void => { this.run() }
  readonly #turnEnd: Array<() => void> = []
  /**
   * When the datagrams of the turn being handled (or the last one) arrived, on `clock`; NaN when
   * the turn is not one of the sampled ones (its answers are not timed).
   */
  arrivedAt = 0
  #turns = 0

  /**
   * `clock`: milliseconds, read once per sampled turn that has datagrams (default
   * performance.now()); `sampleEvery`: one turn in this many is timed (dns.udp.answerTimeSample).
   */
  constructor (readonly clock: () => number = answerClock, readonly sampleEvery = 1) {}

  /** Runs `hook` after each turn that handled datagrams, once its sends are out. */
  onTurnEnd (hook: () => void): void { this.#turnEnd.push(hook) }
  offTurnEnd (hook: () => void): void {
    const i = this.#turnEnd.indexOf(hook)
    if (i >= 0) this.#turnEnd.splice(i, 1)
  }

  /** Queues `msg` for `handler`, to be handled in this turn's run. */
  received (handler: DatagramHandler, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.#handlers.push(handler)
    this.#msgs.push(msg)
    this.#rinfos.push(rinfo)
    this.#schedule()
  }

  /** Queues `buf` for `host:port`, or for the connected peer when port is 0. */
  send (sock: dgram.Socket, buf: Buffer, port: number, host: string, onError: SendErrorHandler): void {
    this.#socks.push(sock)
    this.#bufs.push(buf)
    this.#ports.push(port)
    this.#hosts.push(host)
    this.#onErrors.push(onError)
    this.#schedule()
  }

  #schedule (): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(this.#run)
  }

  /**
   * Handles every datagram queued, then sends everything queued (the handlers' sends included: no
   * other run is scheduled for them), then runs the turn-end hooks. A handler (or hook) that throws
   * is a bug (handlers catch their own faults); it is rethrown after the rest of the turn is done,
   * so one bad datagram costs no other its answer.
   */
  run (): void {
    let fault: unknown
    try {
      const n = this.#handlers.length
      if (n > 0) {
        this.arrivedAt = ++this.#turns >= this.sampleEvery ? this.clock() : NaN
        if (this.#turns >= this.sampleEvery) this.#turns = 0
        const handlers = this.#handlers
        const msgs = this.#msgs
        const rinfos = this.#rinfos
        this.#handlers = []
        this.#msgs = []
        this.#rinfos = []
        for (let i = 0; i < n; i++) {
          try {
            handlers[i].datagram(msgs[i], rinfos[i])
          } catch (err) {
            fault ??= err
          }
        }
      }
      this.flush()
      if (n > 0) {
        const hooks = this.#turnEnd
        for (let i = 0; i < hooks.length; i++) {
          try {
            hooks[i]()
          } catch (err) {
            fault ??= err
          }
        }
      }
    } finally {
      this.#scheduled = false
    }
    // The first fault, rethrown as the handler or hook threw it (whatever it was: this is a bug's path).
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    if (fault !== undefined) throw fault
  }

  /** Sends everything queued, now. */
  flush (): void {
    const n = this.#socks.length
    if (n === 0) return
    const socks = this.#socks
    const bufs = this.#bufs
    const ports = this.#ports
    const hosts = this.#hosts
    const onErrors = this.#onErrors
    this.#socks = []
    this.#bufs = []
    this.#ports = []
    this.#hosts = []
    this.#onErrors = []
    for (let i = 0; i < n; i++) {
      try {
        if (ports[i] === 0) socks[i].send(bufs[i])
        else socks[i].send(bufs[i], ports[i], hosts[i])
      } catch (err) {
        onErrors[i](err, hosts[i])
      }
    }
  }
}
