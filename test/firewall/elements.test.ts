// The learned sets' incremental element sync (src/firewall/elements.ts) against the real nft, in a
// network namespace this test makes (never the host's ruleset): elements added with their
// timeouts, removed whether present or not, refreshed, coalesced into one nft run per window; a
// failing batch is counted and never thrown; a full table sync and element batches do not interleave.

import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../helpers/tmp.js'
import type { FirewallConfig } from '../../src/config/types.js'
import { renderNftables } from '../../src/firewall/nftables.js'
import { ElementSync, batchScript, type ElementSyncDeps } from '../../src/firewall/elements.js'

const nft = requireTool('nft')
const ip = requireTool('ip')
const dir = tempDir('egressd-elements-')
const ns = `egB${Math.random().toString(36).slice(2, 8)}e`
const log = pino({ level: 'silent' })

const firewall = (over: Partial<FirewallConfig> = {}): FirewallConfig => ({
  table: 'egressd', lanInterfaces: ['eth1'], lanCidrs: [], rejectAddresses: true, redirectDns: false,
  rejectDot: false, rejectDoq: false, sync: true, sharedRanges: [], evidence: { enabled: false, intervalMs: 5000, perPairSeconds: 300 }, ...over
})

execFileSync(ip, ['netns', 'add', ns])
t.teardown(() => { spawnSync(ip, ['netns', 'del', ns], { stdio: 'ignore' }) })
const script = renderNftables({
  config: firewall(),
  dnsPort: 53,
  categories: [{ name: 'telegram', title: 'Telegram', v4: ['149.154.160.0/20'], v6: [] }, { name: 'doh-bypass', title: 'DoH', v4: [], v6: [] }],
  allow: { v4: [], v6: [] },
  exempt: { v4: [], v6: [] },
  generatedBy: 'elements test'
})
execFileSync(ip, ['netns', 'exec', ns, nft, '-f', '-'], { input: script })

/** Every nft run goes through this wrapper, which writes its start time (ms) to a file: spawns counted apart from the code's own state. */
const runs = join(dir, 'runs')
writeFileSync(runs, '')
const command = ['sh', '-c', `echo $(($(date +%s%N) / 1000000)) >> ${runs}; exec ${ip} netns exec ${ns} ${nft} "$@"`, 'nft']
const runTimes = (): number[] => readFileSync(runs, 'utf8').split('\n').filter(Boolean).map(Number)
const spawns = (): number => runTimes().length
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** The set's elements: address → timeout in seconds (0: none). */
function listSet (set: string): Map<string, number> {
  const out = execFileSync(ip, ['netns', 'exec', ns, nft, '-j', 'list', 'set', 'inet', 'egressd', set], { encoding: 'utf8' })
  const doc = JSON.parse(out) as { nftables: Array<{ set?: { elem?: Array<string | { elem: { val: string, timeout?: number } }> } }> }
  const elems = doc.nftables.find(x => x.set !== undefined)?.set?.elem ?? []
  return new Map(elems.map(e => typeof e === 'string' ? [e, 0] : [e.elem.val, e.elem.timeout ?? 0]))
}

function sync (over: Partial<ElementSyncDeps> = {}): ElementSync {
  const s = new ElementSync({ firewall: () => firewall(), log, now: Date.now, command, flushMs: 200, ...over })
  t.teardown(() => s.close())
  return s
}

t.test('adds with timeouts; removes one present and one never added in the same batch; re-adding refreshes the timeout', async t => {
  const s = sync()
  s.add('telegram', '203.0.113.1', 4, 3600)
  s.add('telegram', '203.0.113.2', 4, 600.9)
  s.add('telegram', '2001:db8::1', 6, 86400)
  s.add('doh-bypass', '198.51.100.7', 4, 120)
  await s.flushNow()
  t.same(s.state.lastError, undefined)
  t.same([...listSet('learned_telegram_v4')].sort(), [['203.0.113.1', 3600], ['203.0.113.2', 600]])
  t.same([...listSet('learned_telegram_v6')], [['2001:db8::1', 86400]])
  t.same([...listSet('learned_doh_bypass_v4')], [['198.51.100.7', 120]], "a category with '-' goes to its own set")

  s.remove('telegram', '203.0.113.1', 4)
  s.remove('telegram', '203.0.113.99', 4)
  s.add('telegram', '203.0.113.2', 4, 7200)
  s.add('telegram', '203.0.113.3', 4, 0.5)   // run out: a remove of an element that is not there
  await s.flushNow()
  t.equal(s.state.failures, 0, s.state.lastError ?? 'no error')
  t.same([...listSet('learned_telegram_v4')], [['203.0.113.2', 7200]], 'the present one is gone, the absent one failed nothing, the re-add has its new timeout')
  t.same({ batches: s.state.batches, added: s.state.added, removed: s.state.removed }, { batches: 2, added: 5, removed: 3 })
  t.ok(s.state.lastOkAt !== undefined)
})

t.test('100 changes in one window are one nft run; add then remove nets out to absent; the later add wins', async t => {
  const s = sync({ flushMs: 300 })
  const before = spawns()
  for (let i = 0; i < 100; i++) s.add('doh-bypass', `198.18.0.${i + 1}`, 4, 900)
  s.add('doh-bypass', '198.18.1.1', 4, 900)
  s.remove('doh-bypass', '198.18.1.1', 4)
  s.remove('doh-bypass', '198.18.1.2', 4)
  s.add('doh-bypass', '198.18.1.2', 4, 60)
  s.add('doh-bypass', '198.18.1.2', 4, 1800)
  t.equal(s.pending, 102, 'one pending change per (set, address)')
  // No flushNow: the timer writes the batch.
  for (let i = 0; i < 100 && (s.state.batches === 0 || s.pending > 0 || spawns() === before); i++) await new Promise(resolve => setTimeout(resolve, 50))
  await s.flushNow()
  t.equal(spawns() - before, 1, 'one nft spawn')
  t.equal(s.state.batches, 1, 'one batch')
  const set = listSet('learned_doh_bypass_v4')
  t.equal(set.size, 102, String(s.state.lastError))
  t.equal(set.get('198.18.0.77'), 900)
  t.notOk(set.has('198.18.1.1'), 'added then removed: absent')
  t.equal(set.get('198.18.1.2'), 1800, 'the later add wins')
})

t.test('a failing batch (a table that does not exist) is counted with its error, asks for a full sync once, and does not throw', async t => {
  let requests = 0
  const s = sync({ firewall: () => firewall({ table: 'nosuchtable' }), requestFullSync: () => { requests++ } })
  s.add('telegram', '203.0.113.5', 4, 60)
  s.remove('telegram', '203.0.113.6', 4)
  await s.flushNow()
  s.add('telegram', '203.0.113.7', 4, 60)
  await s.flushNow()
  t.equal(s.state.failures, 2)
  t.equal(s.state.droppedElements, 3)
  t.match(s.state.lastError, /No such file or directory/)
  t.equal(requests, 1, 'a full sync is requested at most once a minute')
  t.equal(s.pending, 0, 'the failed changes are not retried in a loop')
  t.equal(s.state.added, 0)

  const missing = sync({ command: ['/nonexistent/nft'] })
  missing.add('telegram', '203.0.113.5', 4, 60)
  await missing.flushNow()
  t.equal(missing.state.failures, 1)
  t.match(missing.state.lastError, /ENOENT/)
})

t.test('with firewall.sync off nothing is queued; a bad address is refused; a full pending map refuses new changes', async t => {
  let on = false
  const s = sync({ firewall: () => firewall({ sync: on }), maxPending: 2 })
  s.add('telegram', '203.0.113.8', 4, 60)
  t.equal(s.pending, 0)
  on = true
  s.add('telegram', '203.0.113.8', 4, 60)
  s.add('telegram', '203.0.113.9 }; flush ruleset; add element inet egressd learned_telegram_v4 { 1.1.1.1', 4, 60)
  s.add('telegram', '2001:db8::8', 4, 60)
  t.equal(s.state.refused, 2, 'not an address of the family')
  s.add('telegram', '203.0.113.10', 4, 60)
  s.add('telegram', '203.0.113.11', 4, 60)
  t.equal(s.pending, 2)
  t.equal(s.state.refused, 3, 'beyond maxPending')
  s.add('telegram', '203.0.113.8', 4, 90)
  t.equal(s.state.refused, 3, 'a change to a pending element is still taken')
  on = false
  await s.flushNow()
  t.equal(s.state.batches, 0, 'sync turned off before the flush: dropped, nft not run')
})

t.test('a full table sync: no batch while it runs, changes it carried are dropped, later ones kept', async t => {
  const s = sync({ flushMs: 50 })
  s.add('telegram', '203.0.113.20', 4, 60)
  const token = s.beginFullSync()
  await token.idle
  s.add('telegram', '203.0.113.21', 4, 60)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(s.state.batches, 0, 'no batch between beginFullSync and afterFullSync')
  s.afterFullSync(token, true)
  t.equal(s.pending, 1, 'the change queued before beginFullSync went with the full script')
  await s.flushNow()
  t.ok(listSet('learned_telegram_v4').has('203.0.113.21'))
  t.notOk(listSet('learned_telegram_v4').has('203.0.113.20'), 'dropped: the (pretend) full sync carried it')

  s.add('telegram', '203.0.113.22', 4, 60)
  const failed = s.beginFullSync()
  s.afterFullSync(failed, false)
  t.equal(s.pending, 1, 'a failed full sync drops nothing')
  await s.flushNow()
  t.ok(listSet('learned_telegram_v4').has('203.0.113.22'))
})

t.test('batchScript: idempotent removes and refreshing adds, per set, in chunks', async t => {
  const changes = Array.from({ length: 501 }, (_, i) => ({ set: 's', address: `10.0.${i >> 8}.${i & 255}`, timeout: '60s', seq: i }))
  const text = batchScript('tb', [...changes, { set: 'r', address: '10.9.9.9', timeout: undefined, seq: 999 }])
  const lines = text.trim().split('\n')
  t.equal(lines.length, 6 + 2)
  t.match(lines[0], /^add element inet tb s \{ 10\.0\.0\.0, /)
  t.match(lines[1], /^delete element inet tb s \{ 10\.0\.0\.0, /)
  t.match(lines[4], /^add element inet tb s \{ 10\.0\.0\.0 timeout 60s, /)
  t.equal(lines[5], 'add element inet tb s { 10.0.1.244 timeout 60s }')
  t.same(lines.slice(6), ['add element inet tb r { 10.9.9.9 }', 'delete element inet tb r { 10.9.9.9 }'])
})

t.test('changes for sets the last full sync did not render are refused; the rest of the batch is written', async t => {
  const s = sync({ flushMs: 50 })
  // The table has telegram and doh-bypass; the last full sync says so. whatsapp has no set in it.
  const token = s.beginFullSync()
  await token.idle
  const refused = s.state.refused
  s.add('whatsapp', '203.0.113.30', 4, 60)   // queued during the full sync, for a set its table does not have
  s.afterFullSync(token, true, ['learned_telegram_v4', 'learned_telegram_v6', 'learned_doh_bypass_v4', 'learned_doh_bypass_v6'])
  t.equal(s.pending, 0, 'dropped when the full sync lands')
  t.equal(s.state.refused - refused, 1)
  s.add('telegram', '203.0.113.31', 4, 60)
  s.add('whatsapp', '203.0.113.32', 4, 60)
  s.remove('whatsapp', '203.0.113.33', 4)
  t.equal(s.state.refused - refused, 3, 'changes to a set not in the table are refused (counted)')
  await s.flushNow()
  t.equal(s.state.failures, 0, String(s.state.lastError))
  t.ok(listSet('learned_telegram_v4').has('203.0.113.31'), 'the change to a set in the table is written')

  // Changes queued after beginFullSync for a set the new table no longer has are dropped when it lands.
  const next = s.beginFullSync()
  s.add('doh-bypass', '198.51.100.40', 4, 60)
  s.add('telegram', '203.0.113.34', 4, 60)
  s.afterFullSync(next, true, ['learned_telegram_v4', 'learned_telegram_v6'])
  t.equal(s.pending, 1, 'the doh-bypass change is dropped: its set is gone')
  t.equal(s.state.refused - refused, 4)
  await s.flushNow()
  t.equal(s.state.failures, 0, String(s.state.lastError))
  t.ok(listSet('learned_telegram_v4').has('203.0.113.34'))
  // A failed full sync changes nothing of what the table holds.
  const failed = s.beginFullSync()
  s.afterFullSync(failed, false, [])
  s.add('telegram', '203.0.113.35', 4, 60)
  t.equal(s.pending, 1)
  await s.flushNow()
})

t.test('a remove is written at once; adds wait for flushMs; during a full sync removes are written at once and again after it', async t => {
  const s = sync({ flushMs: 1000 })
  s.add('telegram', '203.0.113.40', 4, 600)
  s.add('telegram', '203.0.113.41', 4, 600)
  await s.flushNow()
  t.ok(listSet('learned_telegram_v4').has('203.0.113.40'))

  let before = spawns()
  const removedAt = Date.now()
  s.remove('telegram', '203.0.113.40', 4)
  for (let i = 0; i < 100 && listSet('learned_telegram_v4').has('203.0.113.40'); i++) await sleep(10)
  const goneAfter = Date.now() - removedAt
  t.notOk(listSet('learned_telegram_v4').has('203.0.113.40'), 'removed')
  t.equal(spawns() - before, 1)
  const startedAfter = runTimes()[before] - removedAt
  t.ok(startedAfter < 150, `nft started ${startedAfter} ms after remove() (flushMs is 1000)`)
  t.ok(goneAfter < 600, `gone from the kernel's set ${goneAfter} ms after remove()`)
  await sleep(50)

  before = spawns()
  s.add('telegram', '203.0.113.42', 4, 600)
  await sleep(400)
  t.equal(spawns() - before, 0, 'an add alone waits for its batch')
  s.remove('telegram', '203.0.113.41', 4)   // takes the pending add with it
  for (let i = 0; i < 100 && s.pending > 0; i++) await sleep(10)
  await s.flushNow()
  t.equal(spawns() - before, 1, 'one batch for the remove and the add queued before it')
  t.ok(listSet('learned_telegram_v4').has('203.0.113.42'))
  t.notOk(listSet('learned_telegram_v4').has('203.0.113.41'))

  // During a full sync: the remove is written at once, and again after the full sync (whose script
  // may have been rendered before it).
  s.add('telegram', '203.0.113.43', 4, 600)
  await s.flushNow()
  const token = s.beginFullSync()
  await token.idle
  before = spawns()
  s.remove('telegram', '203.0.113.43', 4)
  s.add('telegram', '203.0.113.44', 4, 600)
  for (let i = 0; i < 100 && listSet('learned_telegram_v4').has('203.0.113.43'); i++) await sleep(10)
  t.notOk(listSet('learned_telegram_v4').has('203.0.113.43'), 'removed during the full sync')
  t.notOk(listSet('learned_telegram_v4').has('203.0.113.44'), 'the add waits for the full sync')
  // The (pretend) full sync's script was rendered before the remove: it puts the element back.
  execFileSync(ip, ['netns', 'exec', ns, nft, 'add', 'element', 'inet', 'egressd', 'learned_telegram_v4', '{ 203.0.113.43 timeout 600s }'])
  s.afterFullSync(token, true, ['learned_telegram_v4', 'learned_telegram_v6', 'learned_doh_bypass_v4', 'learned_doh_bypass_v6'])
  for (let i = 0; i < 100 && (listSet('learned_telegram_v4').has('203.0.113.43') || s.pending > 0); i++) await sleep(10)
  await s.flushNow()
  t.notOk(listSet('learned_telegram_v4').has('203.0.113.43'), 'written again after the full sync')
  t.ok(listSet('learned_telegram_v4').has('203.0.113.44'))
  t.equal(s.state.failures, 0, String(s.state.lastError))
  t.equal(spawns() - before, 2, 'once during, once after')
})
