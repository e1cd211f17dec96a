// BlockReporter.firewall (src/store/block-reporter.ts): a hit whose set tag the evidence reader did
// not know (no category, no set) is counted, never silently dropped; a known one is counted by category.

import t from 'tap'
import pino from 'pino'
import { DnsMetrics } from '../../src/dns/metrics.js'
import { BlockReporter } from '../../src/store/block-reporter.js'

t.test('hits of an unknown set are counted with their attempts; known ones go to their category', async t => {
  const metrics = new DnsMetrics()
  const reporter = new BlockReporter({
    log: pino({ level: 'silent' }),
    now: () => 0,
    metrics,
    blockLog: () => undefined,
    logQueries: () => 'none',
    listHash: () => undefined,
    engine: () => undefined,
    learnedName: () => undefined
  })
  const hit = { ts: 1, client: '10.0.0.2', destination: '192.0.2.80', family: 4 as const, proto: 'tcp', port: 443, attempts: 3 }
  reporter.firewall(hit)
  reporter.firewall({ ...hit, attempts: 2 })
  t.same(reporter.firewallUnknownSet, { hits: 2, attempts: 5 })
  t.equal(metrics.firewallByCategory.size, 0, 'not counted for any category')
  reporter.firewall({ ...hit, category: 'telegram', set: 'learned_telegram_v4' })
  t.same(reporter.firewallUnknownSet, { hits: 2, attempts: 5 })
  t.equal(metrics.firewallByCategory.get('telegram'), 3)
})
