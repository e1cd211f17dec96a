// GET /api/v1/status over the real API: the learned address sets (learning), the learned-set
// element batches (firewall.elements) and the evidence reads (firewall.evidence). A real daemon
// with a real dnsmasq upstream learns a blocked name's address; firewall.sync goes to a fake nft
// (fault injection: element batches fail as without the table, one evidence set reads, the other
// is missing), so every counter moves for a reason the test can name.

import t from 'tap'
import { dig } from '../helpers/dig.js'
import { startDnsmasq, type Dnsmasq } from '../helpers/dnsmasq.js'
import { evidenceTag, learnedSetName } from '../../src/firewall/nftables.js'
import { ELEMENT_BATCH_ERROR, evidenceElements, installFakeNft, type FakeNft } from './fake-nft.js'
import { call, startApiDaemon, TOKENS, type ApiDaemon } from './helpers.js'

const LEARNED = '93.184.216.34'

let upstream: Dnsmasq
t.before(async () => {
  // telegram.org and its subdomains resolve to a public-looking address (not a never-block range).
  upstream = await startDnsmasq({ auth: false, lines: [`address=/telegram.org/${LEARNED}`, 'address=/#/192.0.2.1'] })
})
t.teardown(async () => { await upstream.stop() })

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the status body as JSON
const status = async (d: ApiDaemon): Promise<any> => {
  const r = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.equal(r.status, 200)
  return r.json
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the status body as JSON
async function until (d: ApiDaemon, what: string, ok: (s: any) => boolean, ms = 10_000): Promise<any> {
  const end = Date.now() + ms
  for (;;) {
    const s = await status(d)
    if (ok(s)) return s
    if (Date.now() > end) throw new Error(`status: ${what} not within ${ms} ms: ${JSON.stringify({ learning: s.learning, firewall: s.firewall })}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

t.test('learning on, sync through a failing nft: learned address, failed element batch, evidence read and missing set', async t => {
  let nft: FakeNft | undefined
  let d: ApiDaemon | undefined
  t.teardown(async () => { await d?.close(); nft?.restore() })
  nft = installFakeNft()
  // The learned telegram set's tag, as the reject rules write it into the evidence key.
  const attempt = evidenceElements('10.9.8.7', LEARNED, 443, evidenceTag(learnedSetName('telegram', 4)), 3)
  nft.writeSet('evidence_v4', [attempt.counted])
  nft.writeSet('evidence_ports_v4', [attempt.port])
  d = await startApiDaemon({ upstreams: [upstream.url], firewall: { sync: true, evidence: { intervalMs: 1000 } } })

  const first = await status(d)
  t.equal(first.learning.enabled, true)
  t.equal(first.learning.active, 0, 'nothing learned yet')
  t.equal((await dig(['@127.0.0.1', '-p', String(d.dnsPort), 'web.telegram.org', 'A', '+tries=1', '+time=3'])).status, 'NXDOMAIN')

  const s = await until(d, 'learned, batch failed, evidence read', x =>
    x.learning.active >= 1 && x.firewall.elements.failures >= 1 && x.firewall.evidence.hits >= 1 && x.firewall.evidence.failures >= 1)
  t.same(s.learning, { enabled: true, active: 1, held: 0, queueDepth: 0, dropped: 0, lastStoreError: null }, 'one address learned, nothing held or dropped')
  t.equal(d.daemon.learning?.book.lookup(LEARNED)?.category, 'telegram', 'it is the address the blocked name resolved to')
  const listed = await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.viewer })
  t.equal(listed.status, 200)
  t.equal(s.learning.active, listed.json.learned.length, 'active agrees with the addresses GET /api/v1/learned lists')
  t.equal(s.learning.held, listed.json.held.length, 'held agrees with the held addresses it lists')

  const el = s.firewall.elements
  t.ok(el.batches >= 1 && el.failures >= 1 && el.failures <= el.batches, `element batches ${String(el.batches)}, failed ${String(el.failures)}`)
  t.equal(el.lastError, ELEMENT_BATCH_ERROR, 'the batch failed with nft\'s error')
  t.equal(el.lastOkAt, null, 'no batch succeeded')
  t.equal(el.pending, 0, 'the failed batch\'s changes were dropped (the full sync carries them)')
  t.ok(nft.calls().some(c => c === '-f -'), 'nft -f ran')

  const ev = s.firewall.evidence
  t.ok(ev.reads >= 1, 'evidence_v4 was read')
  t.ok(ev.failures >= 1, 'evidence_v6 does not exist: a failed read')
  t.match(ev.lastError, /evidence_v6/)
  t.equal(ev.hits, 1, 'one client and destination: one event inside its window')
  t.ok(Date.parse(ev.lastOkAt) > Date.now() - 60_000, 'lastOkAt is an ISO time')
  t.equal(s.firewall.failures, 0, 'full table syncs succeed (the fake takes them)')
  t.ok(s.firewall.attempts >= 1)
  t.ok(nft.calls().some(c => c === '-j list set inet egressd evidence_v6'), 'both families were read')
})

t.test('learning off: the block says so and reads zeros; sync off: nothing ran', async t => {
  const d = await startApiDaemon({ upstreams: [upstream.url], learning: { enabled: false } })
  t.teardown(() => d.close())
  t.equal((await dig(['@127.0.0.1', '-p', String(d.dnsPort), 'web.telegram.org', 'A', '+tries=1', '+time=3'])).status, 'NXDOMAIN')
  const s = await status(d)
  t.same(s.learning, { enabled: false, active: 0, held: 0, queueDepth: 0, dropped: 0, lastStoreError: null })
  t.same(s.firewall.elements, { batches: 0, failures: 0, lastError: null, lastOkAt: null, pending: 0 })
  t.same(s.firewall.evidence, { reads: 0, failures: 0, lastError: null, lastOkAt: null, hits: 0 })
})
