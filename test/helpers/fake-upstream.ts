// Hand-written upstreams for fault injection only (drops, delays, spoofed answers): the happy path
// uses a real dnsmasq. The handler decides what, if anything, to send back.

import dgram from 'node:dgram'
import * as packet from 'dns-packet'

export interface FakeUpstream {
  readonly url: string
  readonly port: number
  /** Every query received, decoded. */
  readonly received: packet.Packet[]
  close (): Promise<void>
}

export type FakeHandler = (q: packet.Packet, msg: Buffer, reply: (b: Buffer) => void, rinfo: dgram.RemoteInfo) => void

/** An answer to `q` with one A record. */
export function aAnswer (q: packet.Packet, address: string, opts: { id?: number, name?: string, ttl?: number } = {}): Buffer {
  const question = q.questions![0]
  return packet.encode({
    type: 'response',
    id: opts.id ?? q.id,
    flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE,
    questions: [{ ...question, name: opts.name ?? question.name }],
    answers: [{ name: opts.name ?? question.name, type: 'A', class: 'IN', ttl: opts.ttl ?? 60, data: address }]
  })
}

export async function startFakeUpstream (handler: FakeHandler): Promise<FakeUpstream> {
  const sock = dgram.createSocket('udp4')
  const received: packet.Packet[] = []
  sock.on('message', (msg, rinfo) => {
    let q: packet.Packet
    try { q = packet.decode(msg) } catch { return }
    received.push(q)
    handler(q, msg, b => sock.send(b, rinfo.port, rinfo.address), rinfo)
  })
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', () => resolve()))
  const port = sock.address().port
  return {
    url: `udp://127.0.0.1:${port}`,
    port,
    received,
    close: () => new Promise<void>(resolve => sock.close(() => resolve()))
  }
}
