// Fuzzing the TCP framer of src/dns/listener.ts (RFC 7766 2-byte length framing; not exported on
// its own, so through a real socket): a DnsListener on 127.0.0.1 whose `serve` records what it is
// handed gets random streams of frames (empty, small, up to 65535 bytes, any bytes), written in
// random chunks, with or without a partial frame at the end. Every complete frame is served once,
// in order, with exactly its bytes; a partial frame never is; answers (now, later, or none, with a
// small in-flight cap so reading pauses and resumes) come back framed, in order.

import t from 'tap'
import net from 'node:net'
import { Writable } from 'node:stream'
import { PENDING as LATER, type Replier } from '../../src/dns/contract.js'
import { DnsListener } from '../../src/dns/listener.js'
import { DnsMetrics } from '../../src/dns/metrics.js'
import { UdpTurn } from '../../src/dns/udp-turn.js'
import { createLogger } from '../../src/log.js'
import { testConfig } from '../helpers/daemon.js'
import { fc, fuzz } from './harness.js'

const TARGET = 'dns-tcp-framer'

type Mode = 'now' | 'later' | 'none'
let mode: Mode = 'now'
let served: Buffer[] = []

/** The answer to a message: a marker byte and the message (so answers differ from queries). */
const answerTo = (msg: Buffer): Buffer => Buffer.concat([Buffer.from([0xa5]), msg.subarray(0, 65534)])

const config = testConfig({ dns: { listen: ['127.0.0.1:0'], tcp: { maxInflightPerConnection: 3, idleTimeoutMs: 30_000 } } })
const log = createLogger('silent', new Writable({ write (_c, _e, cb) { cb() } }))
const metrics = new DnsMetrics()
const turn = new UdpTurn()
const listener = new DnsListener({ dns: config.dns, log, metrics, turn }, (msg: Buffer, protocol: string, _client: string, replier: Replier) => {
  if (protocol !== 'tcp') return null
  served.push(Buffer.from(msg))
  if (mode === 'none') return null
  if (mode === 'now') return answerTo(msg)
  setImmediate(() => { replier.reply(null, answerTo(msg)) })
  return LATER
})
const bound = await listener.start()
const port = bound.find(b => b.protocol === 'tcp')!.port
t.teardown(() => listener.close(0))

interface Stream { frames: Uint8Array[], tail: Uint8Array, cuts: number[], mode: Mode }

const frameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.integer({ min: 300, max: 65535 }).map(n => new Uint8Array(n).fill(n & 0xff)) }
)

const streamArb: fc.Arbitrary<Stream> = fc.record({
  frames: fc.array(frameArb, { maxLength: 12 }),
  // A partial frame: a length larger than the bytes after it (or a lone first length byte).
  tail: fc.oneof(
    { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.uint8Array({ maxLength: 50 })).map(([len, b]) => Uint8Array.from([len >> 8, len & 0xff, ...b.subarray(0, Math.max(0, len - 1))])) }
  ),
  cuts: fc.array(fc.nat(), { maxLength: 10 }),
  mode: fc.constantFrom<Mode>('now', 'later', 'none')
})

function frame (b: Uint8Array): Buffer {
  const f = Buffer.alloc(2 + b.length)
  f.writeUInt16BE(b.length, 0)
  f.set(b, 2)
  return f
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

fuzz(t, {
  target: TARGET,
  name: 'random-streams',
  runs: 100,
  scale: 0.02,
  async: true,
  maxMsPerInput: 5000,
  arb: streamArb,
  check: async s => {
    served = []
    mode = s.mode
    const bytes = Buffer.concat([...s.frames.map(frame), Buffer.from(s.tail)])
    const cuts = [...new Set(s.cuts.map(c => bytes.length === 0 ? 0 : c % bytes.length))].sort((a, b) => a - b)
    const sock = net.connect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
    const answers: Buffer[] = []
    let buf = Buffer.alloc(0)
    sock.on('data', d => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        answers.push(Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0))))
        buf = buf.subarray(2 + buf.readUInt16BE(0))
      }
    })
    try {
      let from = 0
      for (const c of [...cuts, bytes.length]) {
        if (c <= from) continue
        sock.write(bytes.subarray(from, c))
        from = c
        await new Promise(resolve => setImmediate(resolve))
      }
      const want = s.frames.map(f => Buffer.from(f))
      const wantAnswers = s.mode === 'none' ? [] : want.map(answerTo)
      const until = Date.now() + 4000
      while ((served.length < want.length || answers.length < wantAnswers.length) && Date.now() < until) await sleep(2)
      await sleep(5) // anything extra would show up now
      if (served.length !== want.length) throw new Error(`served ${served.length} messages, want ${want.length}`)
      served.forEach((m, i) => { if (!m.equals(want[i])) throw new Error(`message ${i}: ${m.length} bytes ${m.subarray(0, 16).toString('hex')}, want ${want[i].length} bytes ${want[i].subarray(0, 16).toString('hex')}`) })
      if (answers.length !== wantAnswers.length) throw new Error(`${answers.length} answers, want ${wantAnswers.length}`)
      answers.forEach((a, i) => { if (!a.equals(wantAnswers[i])) throw new Error(`answer ${i} differs`) })
      if (sock.destroyed) throw new Error('the listener closed the connection')
    } finally {
      sock.destroy()
    }
  }
})
