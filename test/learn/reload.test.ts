// A reload moves the guard's never-block ranges with the config: a learned address that falls in
// a range now named by firewall.lanCidrs (or learning.neverBlock at the next start) leaves its set.

import t from 'tap'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, testConfig } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('a reload that puts a learned address into firewall.lanCidrs takes it out of its set', async t => {
  const upstream = await startDnsmasq({ auth: false, lines: ['host-record=web.whatsapp.com,11.0.0.10'] })
  t.teardown(() => upstream.stop())
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  t.equal((await dig([`@${d.host}`, '-p', String(d.port), 'web.whatsapp.com'])).status, 'NXDOMAIN')
  const book = d.daemon.learning!.book
  for (let i = 0; i < 100 && book.lookup('11.0.0.10') === undefined; i++) await sleep(50)
  t.equal(book.lookup('11.0.0.10')?.category, 'whatsapp', 'learned')
  const next = testConfig({ upstreams: [upstream.url], dataDir: d.daemon.config.dataDir, firewall: { lanCidrs: ['11.0.0.0/24'] } })
  const report = d.daemon.reload({ ...next, dns: d.daemon.config.dns, api: d.daemon.config.api })
  t.ok(report.applied.includes('firewall'), `the firewall slice applied: ${JSON.stringify(report.applied)}`)
  t.equal(book.lookup('11.0.0.10'), undefined, 'no longer in a set')
  t.match(book.held().find(h => h.address === '11.0.0.10'), { reason: 'never-block', range: /11\.0\.0\.0\/24/ }, 'held, naming the range')
})
