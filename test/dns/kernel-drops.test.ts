// Kernel drops of UDP sockets from /proc/net/udp{,6}: the address format (32-bit words in host
// byte order), the table parser, and real sockets on 127.0.0.1 and ::1 found with their drops.

import t from 'tap'
import dgram from 'node:dgram'
import { parseProcNetUdp, procAddress, udpKernelDrops, type UdpSocketAddress } from '../../src/dns/kernel-drops.js'
import { parseIp } from '../../src/policy/names.js'

const ip = (s: string): bigint => parseIp(s)!.value

t.test('addresses as /proc prints them', async t => {
  const cases: Array<[hex: string, littleEndian: boolean, address: string]> = [
    ['0100007F', true, '127.0.0.1'],
    ['7F000001', false, '127.0.0.1'],
    ['00000000', true, '0.0.0.0'],
    ['0201A8C0', true, '192.168.1.2'],
    ['00000000000000000000000001000000', true, '::1'],
    ['00000000000000000000000000000001', false, '::1'],
    ['B80D0120000000000000000001000000', true, '2001:db8::1'],
    ['0000000000000000FFFF00000100007F', true, '::ffff:127.0.0.1']
  ]
  for (const [hex, le, address] of cases) t.equal(procAddress(hex, le), ip(address), `${hex} (${le ? 'LE' : 'BE'}) is ${address}`)
})

t.test('the table: header and odd lines skipped, drops read from the last column', async t => {
  const text = [
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            ',
    ' 2919: 0100007F:C244 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 19770 2 00000000d9dc5de1 0         ',
    '  12: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 4711',
    'garbage',
    ''
  ].join('\n')
  t.same(parseProcNetUdp(text, 4, true), [
    { family: 4, address: ip('127.0.0.1'), port: 0xC244, drops: 0 },
    { family: 4, address: ip('0.0.0.0'), port: 53, drops: 4711 }
  ])
  const read = (path: string): string => { if (path !== '/proc/net/udp') throw new Error('ENOENT'); return text }
  t.same(udpKernelDrops([{ family: 4, host: '0.0.0.0', port: 53 }, { family: 4, host: '127.0.0.2', port: 53 }, { family: 6, host: '::1', port: 53 }], read),
    [4711, undefined, undefined], 'found, not found, table unreadable')
})

t.test('real sockets on 127.0.0.1 and ::1 are found in /proc', async t => {
  const socks = [dgram.createSocket('udp4'), dgram.createSocket({ type: 'udp6', ipv6Only: true })]
  t.teardown(() => { for (const s of socks) s.close() })
  await new Promise<void>(resolve => socks[0].bind(0, '127.0.0.1', () => resolve()))
  await new Promise<void>(resolve => socks[1].bind(0, '::1', () => resolve()))
  const bound = socks.map((s, i): UdpSocketAddress => ({ family: i === 0 ? 4 : 6, host: i === 0 ? '127.0.0.1' : '::1', port: s.address().port }))
  t.same(udpKernelDrops(bound), [0, 0])
})
