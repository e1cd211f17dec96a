import t from 'tap'
import { IpIndex, ipv4Number } from '../../src/policy/ip-index.js'
import { ipv4Text, parseIp } from '../../src/policy/names.js'

const v4 = (s: string): bigint => parseIp(s)?.value as bigint
const v6 = (s: string): bigint => parseIp(s)?.value as bigint

t.test('address parsing', async t => {
  t.equal(v4('149.154.167.51'), 0x959aa733n)
  t.equal(parseIp('256.1.1.1'), undefined)
  t.equal(parseIp('1.2.3'), undefined)
  t.same(parseIp('fe80::1%eth0'), { family: 6, value: (0xfe80n << 112n) | 1n }, 'zone id ignored')
  t.equal(v6('::1'), 1n)
  t.equal(v6('2001:db8::'), 0x20010db8n << 96n)
  t.equal(v6('::ffff:1.2.3.4'), (0xffffn << 32n) | 0x01020304n)
  t.equal(v6('2001:DB8:0:0:0:0:0:1'), (0x20010db8n << 96n) | 1n)
  t.equal(parseIp('1::2::3'), undefined)
  t.equal(parseIp('1:2:3:4:5:6:7:8:9'), undefined)
  t.equal(parseIp('12345::'), undefined)
})

t.test('the IPv4 fast parser agrees with the general one, and declines what it does not handle', async t => {
  const inputs = ['0.0.0.0', '255.255.255.255', '149.154.167.51', '10.0.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4',
    '1.2.3.04', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4 ', 'a.b.c.d', '', '::1', '::ffff:1.2.3.4', '1.2.3.4%eth0', '1000.1.1.1']
  for (const s of inputs) {
    const general = parseIp(s)
    const fast = ipv4Number(s)
    if (fast >= 0) {
      t.equal(BigInt(fast), general?.family === 4 ? general.value : undefined, `${s}: same value`)
      t.equal(ipv4Text(fast), s, `${s}: written back as it was`)
    } else t.not(general?.family === 4 && !s.includes('%'), true, `${s}: declined, and not a plain IPv4 address`)
  }
  t.equal(ipv4Number('255.255.255.255'), 2 ** 32 - 1)
})

t.test('ranges, overlaps, families and IPv4-mapped IPv6', async t => {
  const ip = new IpIndex()
  ip.add(4, v4('149.154.160.0'), v4('149.154.175.255'), 0)      // 149.154.160.0/20
  ip.add(4, v4('149.154.167.0'), v4('149.154.167.255'), 1)      // a /24 inside it
  ip.add(4, v4('91.108.4.0'), v4('91.108.7.255'), 2)
  ip.add(6, v6('2001:67c:4e8::'), v6('2001:67c:4e8:ffff:ffff:ffff:ffff:ffff'), 3)
  ip.build()
  const all = (): boolean => true
  const cases: Array<[string, number]> = [
    ['149.154.160.0', 0],
    ['149.154.175.255', 0],
    ['149.154.176.0', -1],
    ['149.154.159.255', -1],
    ['149.154.167.51', 0],
    ['91.108.5.1', 2],
    ['91.108.8.0', -1],
    ['2001:67c:4e8:f004::a', 3],
    ['2001:67c:4e9::1', -1],
    ['::ffff:149.154.167.51', 0],
    ['::ffff:8.8.8.8', -1],
    ['not-an-ip', -1]
  ]
  for (const [a, id] of cases) {
    t.equal(ip.match(a, all), id, a)
    const n = ipv4Number(a)
    if (n >= 0) t.equal(ip.matchV4(n, all), id, `${a} as a number`)
  }
  t.equal(ip.matchV4(2 ** 32 - 1, all), -1, '255.255.255.255 as a number')
  t.equal(ip.match('149.154.167.51', id => id === 1), 1, 'both ranges cover it; the caller picks')
  t.equal(ip.match('149.154.167.51', () => false), -1)
})

t.test('one id owning nested ranges covers the outer range on both sides of the inner one', async t => {
  const ip = new IpIndex()
  ip.add(4, v4('10.0.0.0'), v4('10.255.255.255'), 1)   // a group's 10.0.0.0/8
  ip.add(4, v4('10.1.0.0'), v4('10.1.255.255'), 1)     // and its 10.1.0.0/16
  ip.build()
  for (const a of ['10.0.0.5', '10.1.2.3', '10.2.0.1', '10.200.0.1', '10.255.255.255']) t.equal(ip.match(a, () => true), 1, a)
  t.equal(ip.match('11.0.0.0', () => true), -1)
})
