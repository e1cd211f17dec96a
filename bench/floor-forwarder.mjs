#!/usr/bin/env node
// The floor of cache-miss forwarding in Node on this machine: a UDP forwarder that does no DNS
// work at all. It takes a client's datagram, gives it a fresh ID, sends it on one of four
// connected upstream sockets, and sends the answer back with the client's ID. No parsing, no
// policy, no cache, no validation beyond the ID: the packet pattern of a forwarded query (two
// receives, two sends) and nothing else, with the same tricks egressd uses (connected upstream
// sockets, a synchronous lookup for IP literals, the UDP work of each event-loop turn in one stretch).
// bench/run.sh measures it next to echo and egressd, so W3's ratio can be read against it.
//   node bench/floor-forwarder.mjs PORT [UPSTREAM_HOST=127.0.0.2] [UPSTREAM_PORT=5300]
import dgram from 'node:dgram'
import { lookup, onTurn, send } from './udp-turn.mjs'

const PORT = Number(process.argv[2] ?? 5306)
const UP_HOST = process.argv[3] ?? '127.0.0.2'
const UP_PORT = Number(process.argv[4] ?? 5300)

let nextId = 1
const pending = new Map() // upstream ID -> [client ID, port, address]

const client = dgram.createSocket({ type: 'udp4', lookup })
const ups = []
for (let i = 0; i < 4; i++) {
  const s = dgram.createSocket({ type: 'udp4', lookup })
  s.bind(0)
  s.connect(UP_PORT, UP_HOST)
  s.on('message', onTurn(msg => {
    if (msg.length < 12) return
    const id = (msg[0] << 8) | msg[1]
    const p = pending.get(id)
    if (p === undefined) return
    pending.delete(id)
    msg[0] = p[0] >> 8
    msg[1] = p[0]
    send(client, msg, p[1], p[2])
  }))
  ups.push(s)
}
client.on('message', onTurn((msg, rinfo) => {
  if (msg.length < 12) return
  let id = nextId
  nextId = nextId === 0xffff ? 1 : nextId + 1
  if (pending.has(id)) return
  pending.set(id, [(msg[0] << 8) | msg[1], rinfo.port, rinfo.address])
  msg[0] = id >> 8
  msg[1] = id
  send(ups[id & 3], msg, 0, '')
}))
client.bind(PORT, '127.0.0.1', () => console.error(`floor forwarder on 127.0.0.1:${PORT} -> ${UP_HOST}:${UP_PORT} (pid ${process.pid})`))
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0))
