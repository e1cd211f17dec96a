// store.logQueries: all — allowed queries are logged too, with the rcode the client got and the
// time to answer, next to the block events; the default logs blocks only.

import t from 'tap'
import Fastify from 'fastify'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { blockRoutes } from '../../src/api/routes/blocks.js'
import type { BlockRow } from '../../src/store/block-event.js'
import { startTestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { startDnsmasq, TEST_ZONE } from '../helpers/dnsmasq.js'
import { tempDir } from '../helpers/tmp.js'

const lists = tempDir('egressd-lists-')
mkdirSync(join(lists, 'messenger'))
writeFileSync(join(lists, 'messenger', 'meta.yaml'), 'title: messenger\ndescription: test\npolicyRef: "test-ref"\nenabled: true\nlastReviewed: 2026-11-22\nsources: []\nmustNotBlock: []\n')
writeFileSync(join(lists, 'messenger', 'domains.txt'), 'blocked.test\n')

async function rowsOf (reader: NonNullable<Awaited<ReturnType<typeof startTestDaemon>>['daemon']['blockSearch']>, want: number): Promise<BlockRow[]> {
  const app = Fastify()
  await app.register(blockRoutes, { reader })
  try {
    let rows: BlockRow[] = []
    for (let i = 0; i < 60 && rows.length < want; i++) {
      rows = (await app.inject({ method: 'GET', url: '/api/v1/blocks?from=-1h' })).json().rows
      if (rows.length < want) await new Promise(resolve => setTimeout(resolve, 50))
    }
    return rows
  } finally {
    await app.close()
  }
}

t.test('logQueries all: allowed answers (NOERROR, NXDOMAIN from upstream) and blocks are all logged', async t => {
  const dns = await startDnsmasq({ lines: TEST_ZONE })
  t.teardown(() => dns.stop())
  const d = await startTestDaemon({ upstreams: [dns.url], blocklists: { dir: lists }, store: { batchMs: 100, logQueries: 'all' } })
  t.teardown(() => d.close())
  const ask = (name: string) => dig([`@${d.host}`, '-p', String(d.port), name, 'A', '+tries=1', '+time=3'])
  t.equal((await ask('h.test')).status, 'NOERROR')
  t.equal((await ask('h.test')).status, 'NOERROR', 'second time from the cache')
  t.equal((await ask('nothing-here.test')).status, 'NXDOMAIN')
  t.equal((await ask('www.blocked.test')).status, 'NXDOMAIN')
  const rows = await rowsOf(d.daemon.blockSearch!, 4)
  const allowed = rows.filter(r => r.action === 'allow')
  t.equal(allowed.length, 3, 'three allowed queries')
  t.same(allowed.map(r => [r.qname, r.rcode]).sort(), [['h.test', 0], ['h.test', 0], ['nothing-here.test', 3]])
  t.ok(allowed.every(r => r.matched === 'none' && r.category === '' && typeof r.latencyMs === 'number' && r.latencyMs >= 0), 'latency recorded')
  t.match(rows.filter(r => r.action === 'nxdomain'), [{ qname: 'www.blocked.test', category: 'messenger', rcode: null }])
})

t.test('logQueries blocked (default): allowed queries are not logged', async t => {
  const dns = await startDnsmasq({ lines: TEST_ZONE })
  t.teardown(() => dns.stop())
  const d = await startTestDaemon({ upstreams: [dns.url], blocklists: { dir: lists }, store: { batchMs: 100 } })
  t.teardown(() => d.close())
  const ask = (name: string) => dig([`@${d.host}`, '-p', String(d.port), name, 'A', '+tries=1', '+time=3'])
  t.equal((await ask('h.test')).status, 'NOERROR')
  t.equal((await ask('www.blocked.test')).status, 'NXDOMAIN')
  const rows = await rowsOf(d.daemon.blockSearch!, 1)
  await new Promise(resolve => setTimeout(resolve, 300)) // a second batch would have carried the allowed one
  const again = await rowsOf(d.daemon.blockSearch!, 1)
  t.equal(rows.length, 1)
  t.same(again.map(r => r.action), ['nxdomain'], 'only the block')
})

t.test('logQueries none: blocks are answered, counted and logged as lines, but nothing goes to SQLite', async t => {
  const dns = await startDnsmasq({ lines: TEST_ZONE })
  t.teardown(() => dns.stop())
  const d = await startTestDaemon({ upstreams: [dns.url], blocklists: { dir: lists }, store: { batchMs: 50, logQueries: 'none' } })
  t.teardown(() => d.close())
  const ask = (name: string) => dig([`@${d.host}`, '-p', String(d.port), name, 'A', '+tries=1', '+time=3'])
  t.equal((await ask('www.blocked.test')).status, 'NXDOMAIN')
  t.equal((await ask('h.test')).status, 'NOERROR')
  t.equal(d.daemon.metrics.blockedByCategory.get('messenger'), 1)
  await new Promise(resolve => setTimeout(resolve, 300)) // several batch intervals
  t.equal((await rowsOf(d.daemon.blockSearch!, 1)).length, 0, 'no rows')
  t.same({ written: d.daemon.blockLog?.stats.written, dropped: d.daemon.blockLog?.stats.dropped }, { written: 0, dropped: 0 })
})
