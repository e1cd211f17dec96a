#!/usr/bin/env node
// W1 (blocked) and W2 (cached) answered the plain way in Node: the least work that gives those
// answers, written as anyone would, with the same I/O tricks egressd uses (a synchronous lookup for
// IP literals, the UDP work of each event-loop turn in one stretch). A reference for what egressd's DNS work costs:
// bench/run.sh measures it next to echo and egressd, bench/plain-ab.sh against egressd at once.
//   - Blocked: the query name as a lower-case string, a walk over its suffixes in a Set of the
//     listed names, and NXDOMAIN (header and question, no SOA, no OPT) in a new buffer.
//   - Otherwise: the answer stored under the query's bytes after the ID (first time: forwarded to
//     the upstream on a connected socket), copied with the client's ID. No TTL decrement, no
//     expiry, no eviction, no validation, no counters, no policy on answers.
//   node bench/plain-answerer.mjs PORT LIST [UPSTREAM_HOST=127.0.0.2] [UPSTREAM_PORT=5300]
import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import { lookup, onTurn, send } from './udp-turn.mjs'

const PORT = Number(process.argv[2] ?? 5307)
const LIST = process.argv[3]
const UP_HOST = process.argv[4] ?? '127.0.0.2'
const UP_PORT = Number(process.argv[5] ?? 5300)
if (LIST === undefined) throw new Error('usage: plain-answerer.mjs PORT LIST [UPSTREAM_HOST] [UPSTREAM_PORT]')

const listed = new Set()
for (const line of readFileSync(LIST, 'latin1').split('\n')) {
  const name = line.trim().toLowerCase()
  if (name !== '' && !name.startsWith('#')) listed.add(name)
}

/** The question name, lower-case, dot-separated (built in a scratch buffer, one string); undefined if cut short. */
const scratch = Buffer.allocUnsafe(300)
const qname = msg => {
  let n = 0
  let p = 12
  for (;;) {
    if (p >= msg.length) return undefined
    const l = msg[p]
    if (l === 0) return scratch.latin1Slice(0, n)
    if (l > 63 || p + 1 + l > msg.length || n + l + 1 > scratch.length) return undefined
    if (n > 0) scratch[n++] = 0x2e
    for (let i = p + 1; i <= p + l; i++) { const c = msg[i]; scratch[n++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c }
    p += l + 1
  }
}

const blocked = name => {
  for (let i = 0; i >= 0; i = name.indexOf('.', i) + 1 || -1) {
    if (listed.has(i === 0 ? name : name.slice(i))) return true
  }
  return false
}

const answers = new Map() // query bytes after the ID -> answer bytes
const waiting = new Map() // upstream ID -> [key, client ID, port, address]
let nextId = 1
const client = dgram.createSocket({ type: 'udp4', lookup })
const up = dgram.createSocket({ type: 'udp4', lookup })
up.bind(0)
up.connect(UP_PORT, UP_HOST)
up.on('message', onTurn(msg => {
  if (msg.length < 12) return
  const w = waiting.get((msg[0] << 8) | msg[1])
  if (w === undefined) return
  waiting.delete((msg[0] << 8) | msg[1])
  answers.set(w[0], Buffer.from(msg))
  msg[0] = w[1] >> 8
  msg[1] = w[1]
  send(client, msg, w[2], w[3])
}))

client.on('message', onTurn((msg, rinfo) => {
  if (msg.length < 12) return
  const name = qname(msg)
  if (name === undefined) return
  if (blocked(name)) {
    const end = 12 + name.length + 2 + 4 // the question: name bytes, root label, type, class
    const out = Buffer.allocUnsafe(end)
    msg.copy(out, 0, 0, end)
    out[2] = 0x80 | (msg[2] & 0x01)
    out[3] = 0x83 // RA, NXDOMAIN
    out.fill(0, 6, 12)
    send(client, out, rinfo.port, rinfo.address)
    return
  }
  const key = msg.latin1Slice(2, msg.length)
  const a = answers.get(key)
  if (a !== undefined) {
    const out = Buffer.allocUnsafe(a.length)
    a.copy(out)
    out[0] = msg[0]
    out[1] = msg[1]
    send(client, out, rinfo.port, rinfo.address)
    return
  }
  const id = nextId
  nextId = nextId === 0xffff ? 1 : nextId + 1
  waiting.set(id, [key, (msg[0] << 8) | msg[1], rinfo.port, rinfo.address])
  msg[0] = id >> 8
  msg[1] = id
  send(up, msg, 0, '')
}))
client.bind(PORT, '127.0.0.1', () => console.error(`plain answerer on 127.0.0.1:${PORT}, ${listed.size} listed names, upstream ${UP_HOST}:${UP_PORT} (pid ${process.pid})`))
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(0))
