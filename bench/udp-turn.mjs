// What the bench servers (floor-forwarder.mjs, plain-answerer.mjs) share with egressd's UDP path:
// a synchronous lookup for IP literals, and the UDP work of each event-loop turn done in one
// stretch (src/dns/udp-turn.ts): datagrams are handled after the reading, then the sends go out.

/** dgram's `lookup` for addresses that are always IP literals (IPv4 here). */
export const lookup = (address, _o, cb) => cb(null, address, 4)

const inbox = [] // handler, msg, rinfo
const outbox = [] // sock, buf, port, host
let scheduled = false
const schedule = () => {
  if (!scheduled) { scheduled = true; setImmediate(run) }
}
const run = () => { // the handlers' sends go out at its end: no second run is scheduled for them
  const n = inbox.length
  for (let i = 0; i < n; i += 3) inbox[i](inbox[i + 1], inbox[i + 2])
  inbox.length = 0
  const m = outbox.length
  for (let i = 0; i < m; i += 4) {
    const port = outbox[i + 2]
    if (port === 0) outbox[i].send(outbox[i + 1])
    else outbox[i].send(outbox[i + 1], port, outbox[i + 3])
  }
  outbox.length = 0
  scheduled = false
}

/** Makes a 'message' listener that hands each datagram to `handler(msg, rinfo)` in this turn's run. */
export const onTurn = handler => (msg, rinfo) => {
  inbox.push(handler, msg, rinfo)
  schedule()
}

/** Queues `buf` for host:port (port 0: the socket is connected), sent at the end of this turn's run. */
export const send = (sock, buf, port, host) => {
  outbox.push(sock, buf, port, host)
  schedule()
}
