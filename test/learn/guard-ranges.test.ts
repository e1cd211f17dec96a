// Never-block ranges after a reload (src/learn/guard.ts setRanges, src/learn/book.ts
// setGuardRanges): the guard rebuilds them from the new firewall.lanCidrs, upstreams and
// learning.neverBlock (and the gateway's addresses, re-read); the book takes addresses in a set
// that now fall in one out of it.

import t from 'tap'
import { LearnedBook } from '../../src/learn/book.js'
import { CollateralGuard } from '../../src/learn/guard.js'
import { LearnedStore } from '../../src/learn/store.js'
import { ipv4Number } from '../../src/policy/ip-index.js'
import { learningConfig, policyFile, quiet, RecordingSink } from './fixtures.js'

const T0 = Date.UTC(2030, 10, 11)

t.test('setRanges replaces the configured ranges and re-reads the gateway\'s addresses; the book holds what now falls in them', async t => {
  const db = policyFile().open()
  const now = (): number => T0
  const learning = learningConfig({ minExpirySeconds: 600 })
  const store = new LearnedStore({ db, log: quiet(), now, guardWindowMs: 3_600_000 })
  let ifaceAddress = '203.0.113.1' // special-purpose anyway
  const guard = new CollateralGuard({
    learning, lanCidrs: ['44.0.0.0/8'], upstreamHosts: ['46.1.1.1'], store, log: quiet(), now,
    interfaces: () => ({ eth0: [{ address: ifaceAddress, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:01', internal: false, cidr: `${ifaceAddress}/24` }] })
  })
  const sink = new RecordingSink()
  const book = new LearnedBook({ learning, guard, store, sink, log: quiet(), now })
  book.start()
  t.teardown(() => { book.close(); db.close() })
  t.match(guard.check('44.1.2.3'), { reason: 'never-block', range: '44.0.0.0/8 (firewall.lanCidrs)' })
  t.same(book.learn('telegram', 't.me', [ipv4Number('45.9.9.9'), ipv4Number('47.1.1.1'), ipv4Number('48.1.1.1')], [], 300, 'probe'), { active: 3, held: 0 })

  ifaceAddress = '48.1.1.1'
  const left = book.setGuardRanges({ lanCidrs: ['45.0.0.0/8'], upstreamHosts: ['47.1.1.1'] })
  t.equal(guard.check('44.1.2.3'), undefined, 'the old LAN range is gone')
  t.match(guard.check('45.9.9.9'), { reason: 'never-block', range: '45.0.0.0/8 (firewall.lanCidrs)' })
  t.match(guard.check('47.1.1.1'), { reason: 'never-block', range: '47.1.1.1/32 (upstream resolver)' })
  t.match(guard.check('48.1.1.1'), { reason: 'never-block', range: '48.1.1.1/32 (gateway address on eth0)' })
  t.equal(left, 3)
  t.same(book.list(), [])
  t.same(book.held().map(h => [h.address, h.reason, h.range]), [
    ['45.9.9.9', 'never-block', '45.0.0.0/8 (firewall.lanCidrs)'],
    ['47.1.1.1', 'never-block', '47.1.1.1/32 (upstream resolver)'],
    ['48.1.1.1', 'never-block', '48.1.1.1/32 (gateway address on eth0)']
  ])
  t.notOk(sink.has('telegram', '45.9.9.9') || sink.has('telegram', '47.1.1.1') || sink.has('telegram', '48.1.1.1'), 'removed from the sink')

  guard.setRanges({ lanCidrs: [], upstreamHosts: [], neverBlock: ['49.0.0.0/16'] })
  t.match(guard.check('49.0.1.1'), { reason: 'never-block', range: '49.0.0.0/16 (learning.neverBlock)' })
  t.equal(guard.check('45.9.9.9'), undefined)
})
