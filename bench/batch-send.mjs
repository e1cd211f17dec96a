// What the bench servers (floor-forwarder.mjs, plain-answerer.mjs) share with egressd's listener:
// a synchronous lookup for IP literals, and sends batched per event-loop turn (src/dns/send-batch.ts).

/** dgram's `lookup` for addresses that are always IP literals (IPv4 here). */
export const lookup = (address, _o, cb) => cb(null, address, 4)

const queue = []
let scheduled = false
const flush = () => {
  scheduled = false
  const n = queue.length
  for (let i = 0; i < n; i += 4) {
    const port = queue[i + 2]
    if (port === 0) queue[i].send(queue[i + 1])
    else queue[i].send(queue[i + 1], port, queue[i + 3])
  }
  queue.length = 0
}

/** Queues `buf` for host:port (port 0: the socket is connected), sent right after this poll phase. */
export const send = (sock, buf, port, host) => {
  queue.push(sock, buf, port, host)
  if (!scheduled) { scheduled = true; setImmediate(flush) }
}
