// The client ACL stage: a client outside dns.allowClients gets REFUSED with EDE 18 and nothing else
// runs; every other client goes on to `next`.

import t from 'tap'
import { ClientAcl } from '../../../src/dns/client-acl.js'
import { DnsMetrics } from '../../../src/dns/metrics.js'
import { clientAclStage } from '../../../src/dns/stages/client-acl.js'
import { context, decoded, fakeNext } from './helpers.js'

const SERVFAIL = { kind: 'servfail', reason: 'from next' } as const

t.test('who is answered: rows of client -> refused here, or next called', async t => {
  const rows: Array<{ client: string, edns?: number, refused: boolean }> = [
    { client: '10.1.2.3', refused: false },
    { client: '10.255.255.255', refused: false },
    { client: 'fd00::5', refused: false },
    { client: '::ffff:10.0.0.1', refused: false },
    { client: '11.0.0.1', refused: true },
    { client: '8.8.8.8', edns: 0, refused: true },
    { client: '2001:db8::1', refused: true },
    { client: '::', edns: 0, refused: true }
  ]
  const metrics = new DnsMetrics()
  const stage = clientAclStage(new ClientAcl(['10.0.0.0/8', 'fd00::/8']), metrics, 1232)
  let refused = 0
  for (const row of rows) {
    const next = fakeNext(SERVFAIL)
    const o = stage(next)(context({ name: 'innocent.example', client: row.client, edns: row.edns, id: 4242 }))
    t.equal(next.calls, row.refused ? 0 : 1, `${row.client}: next ${row.refused ? 'not ' : ''}called`)
    if (!row.refused) {
      t.equal(o, SERVFAIL, `${row.client}: next's outcome passed on`)
      continue
    }
    refused++
    if (o === 0 || o.kind !== 'local') { t.fail(`${row.client}: a local answer`); continue }
    t.equal(o.result, 'refused', `${row.client}: counts as refused`)
    const a = decoded(o.answer)
    t.equal(a.id, 4242, `${row.client}: answers the query's ID`)
    t.equal(a.rcode, 5, `${row.client}: REFUSED`)
    t.same(a.ede, row.edns === undefined ? [] : [18], `${row.client}: EDE 18 to an EDNS client`)
    t.equal(metrics.refusedClients, refused, `${row.client}: counted`)
  }
})

t.test('with the default allowClients, loopback and private clients go on and public ones are refused', async t => {
  const { testConfig } = await import('../../helpers/daemon.js')
  const stage = clientAclStage(new ClientAcl(testConfig({}).dns.allowClients), new DnsMetrics(), 1232)
  for (const [client, passes] of [['127.0.0.1', true], ['192.168.1.1', true], ['100.64.0.1', true], ['172.32.0.1', false], ['9.9.9.9', false]] as const) {
    const next = fakeNext(SERVFAIL)
    stage(next)(context({ name: 'x.example', client }))
    t.equal(next.calls, passes ? 1 : 0, client)
  }
})
