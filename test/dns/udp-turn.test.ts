// UdpTurn: the datagrams of an event-loop turn are handled in a row after the reading, then the
// turn's sends go out; a fault in one handler or one send costs the others nothing.

import t, { type Test } from 'tap'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { UdpTurn } from '../../src/dns/udp-turn.js'

const rinfo = (port: number): dgram.RemoteInfo => ({ address: '127.0.0.1', family: 'IPv4', port, size: 0 })
const nextTurn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

/** A real socket bound on loopback that collects what it receives. */
async function receiver (t: Test): Promise<{ port: number, got: string[], waitFor: (n: number) => Promise<void> }> {
  const sock = dgram.createSocket('udp4')
  t.teardown(() => { sock.close() })
  const got: string[] = []
  sock.on('message', m => got.push(m.toString()))
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  const waitFor = async (n: number): Promise<void> => {
    for (let i = 0; i < 200 && got.length < n; i++) await new Promise(resolve => setTimeout(resolve, 5))
  }
  return { port: sock.address().port, got, waitFor }
}

async function sender (t: Test): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4')
  t.teardown(() => { try { sock.close() } catch { /* closed by the test */ } })
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  return sock
}

t.test('datagrams are handled in arrival order after the reading, then the sends go out', async t => {
  const turn = new UdpTurn()
  const out = await sender(t)
  const peer = await receiver(t)
  const seen: string[] = []
  const sentWhenHandled: number[] = []
  const handler = {
    datagram: (msg: Buffer, from: dgram.RemoteInfo) => {
      seen.push(`${msg.toString()}:${from.port}`)
      sentWhenHandled.push(peer.got.length)
      turn.send(out, Buffer.from(`answer ${msg.toString()}`), peer.port, '127.0.0.1', () => { t.fail('no send fails') })
    }
  }
  turn.received(handler, Buffer.from('a'), rinfo(1001))
  turn.received(handler, Buffer.from('b'), rinfo(1002))
  turn.received(handler, Buffer.from('c'), rinfo(1003))
  t.same(seen, [], 'nothing is handled while the datagrams are being read')
  await nextTurn()
  t.same(seen, ['a:1001', 'b:1002', 'c:1003'], 'all handled in one turn, in order, with their sender')
  await peer.waitFor(3)
  t.same(sentWhenHandled, [0, 0, 0], 'no answer had gone out while the turn was handling')
  t.same(peer.got, ['answer a', 'answer b', 'answer c'], 'the answers went out in order')
})

t.test('a handler that throws: the other datagrams are handled, the sends go out, then the fault surfaces', async t => {
  const turn = new UdpTurn()
  const out = await sender(t)
  const peer = await receiver(t)
  const handler = {
    datagram: (msg: Buffer) => {
      if (msg.toString() === 'bad') throw new Error('handler bug')
      turn.send(out, msg, peer.port, '127.0.0.1', () => {})
    }
  }
  turn.received(handler, Buffer.from('one'), rinfo(1))
  turn.received(handler, Buffer.from('bad'), rinfo(2))
  turn.received(handler, Buffer.from('two'), rinfo(3))
  t.throws(() => { turn.run() }, /handler bug/, 'the fault is not swallowed')
  await peer.waitFor(2)
  t.same(peer.got, ['one', 'two'], 'the datagrams around the bad one were handled and answered')
})

t.test('a send that throws goes to its own error handler; the others go out', async t => {
  const turn = new UdpTurn()
  const closed = await sender(t)
  closed.close()
  const out = await sender(t)
  const peer = await receiver(t)
  const errors: Array<{ code: unknown, host: string }> = []
  turn.send(out, Buffer.from('first'), peer.port, '127.0.0.1', () => { t.fail('the first send does not fail') })
  turn.send(closed, Buffer.from('lost'), peer.port, '127.0.0.2', (err, host) => { errors.push({ code: (err as { code?: unknown }).code, host }) })
  turn.send(out, Buffer.from('last'), peer.port, '127.0.0.1', () => { t.fail('the last send does not fail') })
  await nextTurn()
  t.same(errors, [{ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING', host: '127.0.0.2' }], 'the send on the closed socket was reported with its host')
  await peer.waitFor(2)
  t.same(peer.got, ['first', 'last'], 'the sends before and after it went out')
})

t.test('a connected socket sends without an address (port 0)', async t => {
  const turn = new UdpTurn()
  const peer = await receiver(t)
  const out = await sender(t)
  out.connect(peer.port, '127.0.0.1')
  await once(out, 'connect')
  turn.send(out, Buffer.from('connected'), 0, '', () => { t.fail('the send does not fail') })
  await peer.waitFor(1)
  t.same(peer.got, ['connected'])
})
