// Listener behaviour over raw sockets: RFC 7766 TCP (pipelining, out-of-order answers, idle
// timeout, in-flight cap) and malformed packets on UDP and TCP (FORMERR/NOTIMP or drop, counted,
// never forwarded, never fatal).

import t from 'tap'
import dgram from 'node:dgram'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import * as packet from 'dns-packet'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { aAnswer, startFakeUpstream } from '../helpers/fake-upstream.js'
import { stringData } from '../helpers/dns-records.js'

const upstream = await startDnsmasq()
t.teardown(() => upstream.stop())

function q (name: string, id: number, type: packet.RecordType = 'A'): Buffer {
  return packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] })
}

function frame (b: Buffer): Buffer {
  const f = Buffer.alloc(2 + b.length)
  f.writeUInt16BE(b.length, 0)
  b.copy(f, 2)
  return f
}

/** Opens a TCP connection and collects decoded answers as they arrive. */
async function tcpClient (host: string, port: number): Promise<{ sock: net.Socket, answers: packet.DecodedPacket[], raw: Buffer[], waitFor: (n: number, ms?: number) => Promise<void>, closed: Promise<void> }> {
  const sock = net.connect({ host, port })
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  const answers: packet.DecodedPacket[] = []
  const raw: Buffer[] = []
  let buf = Buffer.alloc(0)
  sock.on('data', d => {
    buf = Buffer.concat([buf, d])
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const m = buf.subarray(2, 2 + buf.readUInt16BE(0))
      raw.push(Buffer.from(m))
      answers.push(packet.decode(m))
      buf = buf.subarray(2 + m.length)
    }
  })
  const closed = new Promise<void>(resolve => sock.once('close', () => resolve()))
  const waitFor = async (n: number, ms = 5000): Promise<void> => {
    const until = Date.now() + ms
    while (answers.length < n && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 10))
  }
  return { sock, answers, raw, waitFor, closed }
}

t.test('TCP: several queries on one connection, in one write, all answered', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const c = await tcpClient(d.host, d.port)
  t.teardown(() => c.sock.destroy())
  c.sock.write(Buffer.concat([q('h.test', 1), q('other.test', 2), q('h.test', 3, 'AAAA'), q('alias.test', 4), q('nx.test', 5)].map(frame)))
  await c.waitFor(5)
  const byId = new Map(c.answers.map(a => [a.id, a]))
  t.equal(byId.size, 5)
  t.equal(stringData(byId.get(1)!.answers![0]), '192.0.2.11')
  t.equal(stringData(byId.get(2)!.answers![0]), '192.0.2.12')
  t.equal(stringData(byId.get(3)!.answers![0]), '2001:db8::11')
  t.equal(byId.get(4)!.answers!.length, 2)
  t.equal(byId.get(5)!.rcode, 'NXDOMAIN')
  // A query split across two writes is reassembled.
  const f = frame(q('h.test', 6))
  c.sock.write(f.subarray(0, 5))
  await new Promise(resolve => setTimeout(resolve, 50))
  c.sock.write(f.subarray(5))
  await c.waitFor(6)
  t.equal(c.answers[5].id, 6)
})

t.test('TCP: answers go out as they complete, not in query order', async t => {
  const fake = await startFakeUpstream((q0, _m, reply) => {
    const delay = q0.questions![0].name === 'slow.test' ? 400 : 0
    setTimeout(() => reply(aAnswer(q0, '192.0.2.5')), delay)
  })
  t.teardown(() => fake.close())
  const d = await startTestDaemon({ upstreams: [fake.url] })
  t.teardown(() => d.close())
  const c = await tcpClient(d.host, d.port)
  t.teardown(() => c.sock.destroy())
  c.sock.write(Buffer.concat([frame(q('slow.test', 10)), frame(q('fast.test', 11))]))
  await c.waitFor(2)
  t.same(c.answers.map(a => a.id), [11, 10], 'the fast answer overtakes the slow one')
})

t.test('TCP: idle connections are closed after the idle timeout', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url], dns: { tcp: { idleTimeoutMs: 300 } } })
  t.teardown(() => d.close())
  const c = await tcpClient(d.host, d.port)
  c.sock.write(frame(q('h.test', 1)))
  await c.waitFor(1)
  const started = Date.now()
  await c.closed
  t.ok(Date.now() - started >= 250, 'stays open while active, closes once idle')
  t.equal(d.daemon.metrics.tcp.idleClosed, 1)
})

t.test('TCP: at most maxInflightPerConnection queries in flight; the rest wait, none lost', async t => {
  let inUpstream = 0
  let maxSeen = 0
  const fake = await startFakeUpstream((q0, _m, reply) => {
    inUpstream++
    maxSeen = Math.max(maxSeen, inUpstream)
    setTimeout(() => { inUpstream--; reply(aAnswer(q0, '192.0.2.6')) }, 100)
  })
  t.teardown(() => fake.close())
  const d = await startTestDaemon({ upstreams: [fake.url], dns: { tcp: { maxInflightPerConnection: 4 } } })
  t.teardown(() => d.close())
  const c = await tcpClient(d.host, d.port)
  t.teardown(() => c.sock.destroy())
  c.sock.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => frame(q(`n${i}.test`, 100 + i)))))
  await c.waitFor(20, 8000)
  t.equal(c.answers.length, 20, 'every query answered')
  t.ok(maxSeen <= 4 + 1, `at most about 4 upstream queries at once (saw ${maxSeen})`)
})

const MALFORMED: Array<[string, Buffer, string | null]> = [
  ['short', Buffer.from([1, 2, 3, 4, 5]), null],
  ['response', (() => { const b = q('h.test', 7); b[2] |= 0x80; return b })(), null],
  ['opcode', (() => { const b = q('h.test', 7); b[2] |= 4 << 3; return b })(), 'NOTIMP'],
  ['qdcount', (() => { const b = q('h.test', 7); b[5] = 2; return b })(), 'FORMERR'],
  ['sections', (() => { const b = q('h.test', 7); b[7] = 1; return b })(), 'FORMERR'],
  ['label', (() => { const b = q('h.test', 7); b[12] = 0x50; return b })(), 'FORMERR'],
  ['pointer', Buffer.concat([q('h.test', 7).subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), 'FORMERR'],
  ['name-too-long', q(Array.from({ length: 5 }, () => 'x'.repeat(60)).join('.'), 7), 'FORMERR'],
  ['truncated', q('h.test', 7).subarray(0, 16), 'FORMERR'],
  ['trailing', Buffer.concat([q('h.test', 7), Buffer.from([0xff])]), 'FORMERR']
]

t.test('malformed UDP packets: FORMERR/NOTIMP or dropped, counted, never forwarded', async t => {
  const fake = await startFakeUpstream((q0, _m, reply) => reply(aAnswer(q0, '192.0.2.9')))
  t.teardown(() => fake.close())
  const d = await startTestDaemon({ upstreams: [fake.url] })
  t.teardown(() => d.close())
  const sock = dgram.createSocket('udp4')
  t.teardown(() => sock.close())
  const got: Buffer[] = []
  sock.on('message', m => got.push(m))
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', () => resolve()))
  for (const [kind, msg, rcode] of MALFORMED) {
    got.length = 0
    sock.send(msg, d.port, d.host)
    await new Promise(resolve => setTimeout(resolve, 60))
    if (rcode === null) {
      t.equal(got.length, 0, `${kind}: dropped`)
    } else {
      t.equal(got.length, 1, `${kind}: answered`)
      const r = got[0]
      t.equal(r.readUInt16BE(0), 7, `${kind}: same ID`)
      t.equal(r[2] & 0x80, 0x80, `${kind}: QR`)
      t.equal(packet.decode(r).rcode, rcode, `${kind}: ${rcode}`)
    }
    t.equal(d.daemon.metrics.malformed[kind as keyof typeof d.daemon.metrics.malformed], 1, `${kind}: counted`)
  }
  t.equal(fake.received.length, 0, 'nothing malformed reached the upstream')
  const ok = await dig([`@${d.host}`, '-p', String(d.port), 'h.test'])
  t.same(ok.answers.map(r => r.data), ['192.0.2.9'], 'still serving')
})

t.test('malformed TCP frames are answered in order and the connection keeps working', async t => {
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  const c = await tcpClient(d.host, d.port)
  t.teardown(() => c.sock.destroy())
  const bad = MALFORMED.filter(([, , rcode]) => rcode !== null)
  c.sock.write(Buffer.concat([...bad.map(([, m]) => frame(m)), frame(Buffer.from([9, 9, 9])), frame(q('h.test', 42))]))
  await c.waitFor(bad.length + 1)
  t.equal(c.answers.length, bad.length + 1, 'one answer per readable header; the 3-byte frame is dropped')
  t.same(c.answers.slice(0, bad.length).map(a => a.rcode), bad.map(([, , rcode]) => rcode))
  const last = c.answers.find(a => a.id === 42)!
  t.equal(stringData(last.answers![0]), '192.0.2.11')
})

t.test('TCP: a client that reads late still gets every answer (reading pauses while answers queue, resumes when they drain)', async t => {
  const d = await startTestDaemon({
    upstreams: [upstream.url],
    blocklists: { rules: { block: ['blocked.test'] } },
    store: { logQueries: 'none' },
    log: { level: 'warn' },
    dns: { tcp: { maxQueuedBytesPerConnection: 16384, stuckTimeoutMs: 30_000 } }
  })
  t.teardown(() => d.close())
  const c = await tcpClient(d.host, d.port)
  t.teardown(() => c.sock.destroy())
  c.sock.pause()
  const N = 40_000
  // Long names make long answers (the name is in the question and the SOA): about 18 MB of
  // answers, more than the kernel buffers hold, so the daemon has to stop reading.
  const name = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.blocked.test`
  const one = frame(q(name, 1))
  const all = Buffer.concat(Array.from({ length: N }, () => one))
  c.sock.write(all)
  const until = Date.now() + 20_000
  while (d.daemon.dnsSockets().tcpWriteBlocked === 0 && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(d.daemon.dnsSockets().tcpWriteBlocked, 1, 'reading paused while the client does not read')
  t.ok(d.daemon.dnsSockets().tcpMaxQueuedBytes <= 16384 + 512, 'with at most the mark (and one answer) queued')
  t.ok(d.daemon.metrics.queries.tcp < N, `not every query was read yet (${d.daemon.metrics.queries.tcp} of ${N})`)
  c.sock.resume()
  await c.waitFor(N, 30_000)
  t.equal(c.answers.length, N, 'every query answered once the client reads')
  t.ok(c.answers.every(a => a.rcode === 'NXDOMAIN' && a.id === 1))
  t.equal(d.daemon.dnsSockets().tcpWriteBlocked, 0)
  t.ok(d.daemon.metrics.tcp.writePaused >= 1)
  t.equal(d.daemon.metrics.tcp.stuckClosed, 0)
})

t.test('UDP: the receive buffer asked for (dns.udp.receiveBufferBytes) and what the kernel granted are logged; a cut is a warning', async t => {
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
  const huge = 256 * 1024 * 1024
  const d = await startTestDaemon({ upstreams: [upstream.url], dns: { udp: { receiveBufferBytes: huge } } })
  t.teardown(() => d.close())
  const line = d.logs().find(l => typeof l.msg === 'string' && l.msg.startsWith('UDP receive buffer'))!
  t.equal(line.requested, huge)
  const granted = d.daemon.dnsSockets().udp[0].receiveBufferBytes
  t.equal(line.granted, granted)
  // Linux grants min(request, net.core.rmem_max) and reports it doubled.
  t.equal(granted, Math.min(huge, rmemMax) * 2, `granted ${granted} with rmem_max ${rmemMax}`)
  if (granted < huge) {
    t.equal(line.level, 40, 'a buffer cut by net.core.rmem_max is a warning')
    t.match(String(line.msg), /net\.core\.rmem_max/)
  }
  const dflt = await startTestDaemon({ upstreams: [upstream.url], dns: { udp: { receiveBufferBytes: 0 } } })
  t.teardown(() => dflt.close())
  const l0 = dflt.logs().find(l => l.msg === 'UDP receive buffer')!
  t.equal(l0.requested, 0, '0 leaves the system default')
  t.equal(l0.granted, Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8')), 'net.core.rmem_default (not doubled: nobody asked)')
  t.equal((await dig([`@${dflt.host}`, '-p', String(dflt.port), 'h.test'])).answers[0].data, '192.0.2.11')
})
