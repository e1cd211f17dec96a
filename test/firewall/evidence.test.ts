// Evidence from the firewall (src/firewall/evidence.ts) in network namespaces this test makes:
// client --(lan)-- gw --(wan)-- server. The gateway carries a rendered table with an address in a
// learned set; the client's rejected TCP and UDP attempts come back from nft's evidence sets as
// FirewallHits with the client, destination, protocol, port, category and set, one per pair per
// window, the next one carrying the attempts in between. A port sweep by one client costs one
// element and does not blind the evidence of another; full sets are reported and still reject.
// Bad nft output is counted, never thrown.

import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import pino from 'pino'
import { netnsTopology } from '../helpers/netns.js'
import { requireTool } from '../helpers/tools.js'
import type { FirewallConfig } from '../../src/config/types.js'
import type { FirewallHit } from '../../src/learn/types.js'
import { renderNftables } from '../../src/firewall/nftables.js'
import { FirewallEvidence, latestPorts, parseEvidenceSet, parsePortSet, type EvidenceDeps } from '../../src/firewall/evidence.js'

const nft = requireTool('nft')
const ip = requireTool('ip')
const log = pino({ level: 'silent' })
const tag = `eB${Math.random().toString(36).slice(2, 6)}`
const net = netnsTopology({ tag, clientAddresses: ['10.99.1.3'], serverAddresses: ['149.154.167.51', '192.0.2.80', '192.0.2.81'], routes: ['149.154.167.0/24', '192.0.2.0/24'] })
const ns = net.ns
t.teardown(net.teardown)

const firewall = (over: Partial<FirewallConfig> = {}): FirewallConfig => ({
  table: 'egressd', lanInterfaces: [net.lanInterface], lanCidrs: [], rejectAddresses: true, redirectDns: false,
  rejectDot: true, rejectDoq: true, sync: true, sharedRanges: [], evidence: { enabled: true, intervalMs: 1000, perPairSeconds: 300 }, ...over
})

/** From the client (from its address `from`): 'ok' if a TCP connection opens, else the error code. */
const connect = (host: string, port: number, from = '10.99.1.2'): string => net.connect(host, port, from)

/** From the client: `count` UDP datagrams to host:port, 50 ms apart. */
function sendUdp (host: string, port: number, count: number): void {
  const code = `const s=require('dgram').createSocket('udp4');s.on('error',()=>{});let n=0;` +
    `const go=()=>{s.send('x',${port},'${host}');if(++n<${count})setTimeout(go,50);else setTimeout(()=>s.close(),100)};go()`
  execFileSync(ip, ['netns', 'exec', ns.client, process.execPath, '-e', code], { timeout: 10_000 })
}

/** From the client: one UDP datagram to each port from `first`, `count` ports (a port sweep). */
function sweepUdp (host: string, first: number, count: number): void {
  const code = `const s=require('dgram').createSocket('udp4');s.on('error',()=>{});s.bind(0,'10.99.1.2',()=>{let n=0;` +
    `const go=()=>{for(let i=0;i<50&&n<${count};i++,n++)s.send('x',${first}+n,'${host}');if(n<${count})setImmediate(go);else setTimeout(()=>s.close(),200)};go()})`
  execFileSync(ip, ['netns', 'exec', ns.client, process.execPath, '-e', code], { timeout: 20_000 })
}

/** Elements of a set in the gateway's table. */
function setElements (set: string): Array<{ elem: { val: { concat: unknown[] }, counter?: { packets: number } } }> {
  const doc = JSON.parse(execFileSync(ip, ['netns', 'exec', ns.gw, nft, '-j', 'list', 'set', 'inet', 'egressd', set], { encoding: 'utf8' })) as
    { nftables: Array<{ set?: { elem?: Array<{ elem: { val: { concat: unknown[] }, counter?: { packets: number } } }> } }> }
  return doc.nftables.find(x => x.set !== undefined)?.set?.elem ?? []
}

/** Packets the kernel counted in evidence_v4 for a destination. */
function kernelPackets (destination: string): number {
  return setElements('evidence_v4').filter(e => e.elem.val.concat[1] === destination).reduce((sum, e) => sum + (e.elem.counter?.packets ?? 0), 0)
}


function applyTable (config: FirewallConfig, edit: (script: string) => string = s => s): void {
  const script = edit(renderNftables({
    config,
    dnsPort: 53,
    categories: [{ name: 'telegram', title: 'Telegram', v4: ['149.154.160.0/20'], v6: [], learned: { v4: [{ address: '192.0.2.80', timeoutSeconds: 3600 }], v6: [] } }],
    allow: { v4: [], v6: [] },
    exempt: { v4: [], v6: [] },
    generatedBy: 'evidence test'
  }))
  execFileSync(ip, ['netns', 'exec', ns.gw, nft, '-f', '-'], { input: script })
}

let clock = 1_000_000_000
function evidence (over: Partial<EvidenceDeps> = {}): { ev: FirewallEvidence, hits: FirewallHit[] } {
  const hits: FirewallHit[] = []
  const ev = new FirewallEvidence({
    firewall: () => firewall(),
    log,
    now: () => clock,
    onHit: h => { hits.push(h) },
    categories: () => ['telegram'],
    command: [ip, 'netns', 'exec', ns.gw, nft],
    ...over
  })
  t.teardown(() => ev.close())
  return { ev, hits }
}

t.test('rejected attempts to a learned address become hits: one per pair per window, the next with the attempts between', async t => {
  const server = spawn(ip, ['netns', 'exec', ns.server, process.execPath, '-e',
    "const net=require('net');for(const h of ['149.154.167.51','192.0.2.80','192.0.2.81']) net.createServer(s=>s.end()).listen(8080,h);" +
    "require('dgram').createSocket('udp4').bind(5000,'192.0.2.80');console.log('listening')"], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { server.kill() })
  await new Promise<void>(resolve => server.stdout.once('data', () => resolve()))
  t.equal(connect('192.0.2.80', 8080), 'ok', 'before the rules the learned address is reachable (the topology works)')

  applyTable(firewall())
  const { ev, hits } = evidence()
  await ev.readNow()
  t.same({ hits: hits.length, reads: ev.state.reads, failures: ev.state.failures }, { hits: 0, reads: 2, failures: 0 }, 'both sets read, nothing yet')

  t.match(connect('192.0.2.80', 8080), /^E(HOSTUNREACH|CONNREFUSED|ACCES)$/, 'the learned address is rejected')
  t.equal(connect('192.0.2.81', 8080), 'ok', 'its neighbour is not')
  clock += 5000
  await ev.readNow()
  t.equal(hits.length, 1)
  const first = hits[0]
  t.match(first, { ts: clock, client: '10.99.1.2', destination: '192.0.2.80', family: 4, proto: 'tcp', port: 8080, category: 'telegram', set: 'learned_telegram_v4' })
  t.ok(first.attempts >= 1, `attempts ${first.attempts}`)

  // Within the window: UDP and another TCP attempt to the same destination are carried, not emitted;
  // a Telegram range address is another pair and another set.
  sendUdp('192.0.2.80', 5000, 3)
  t.match(connect('192.0.2.80', 8080), /^E/)
  t.match(connect('149.154.167.51', 443), /^E(HOSTUNREACH|CONNREFUSED|ACCES)$/)
  clock += 5000
  await ev.readNow()
  t.equal(hits.length, 2, 'only the new pair gives a hit')
  t.match(hits[1], { client: '10.99.1.2', destination: '149.154.167.51', proto: 'tcp', port: 443, set: 'telegram_v4', category: 'telegram' })
  t.ok(ev.state.suppressed >= 1, `suppressed ${ev.state.suppressed}`)
  const total = kernelPackets('192.0.2.80')
  t.ok(total >= first.attempts + 4, `the kernel counted ${total} packets to the learned address`)

  clock += 10_000
  await ev.readNow()
  t.equal(hits.length, 2, 'nothing new, window not over: no hit')

  clock += 300_000
  await ev.readNow()
  t.equal(hits.length, 3, 'after the window the carried attempts are reported')
  t.match(hits[2], { client: '10.99.1.2', destination: '192.0.2.80', family: 4, category: 'telegram', set: 'learned_telegram_v4' })
  t.equal(hits[2].attempts, total - first.attempts, 'the hit carries every attempt since the previous one')
  t.ok(hits[2].proto === 'tcp' || hits[2].proto === 'udp')

  clock += 301_000
  await ev.readNow()
  t.equal(hits.length, 3, 'no attempts since: no hit')
  t.equal(ev.pairs, 0, 'pairs past their window without attempts are forgotten')

  // A full table sync recreates the sets: counters start again, and a new attempt is a new hit.
  applyTable(firewall())
  t.match(connect('192.0.2.80', 8080), /^E/)
  clock += 1000
  await ev.readNow()
  t.equal(hits.length, 4)
  t.match(hits[3], { destination: '192.0.2.80', proto: 'tcp', port: 8080 })
  t.equal(hits[3].attempts, kernelPackets('192.0.2.80'), 'counted from zero in the new set')
  t.equal(ev.state.failures, 0, ev.state.lastError ?? 'no error')
  t.equal(ev.state.hits, 4)

  // Unknown tags (a table rendered with categories the reader was not told of) still give hits, without a set.
  const { ev: blind, hits: blindHits } = evidence({ categories: () => [] })
  await blind.readNow()
  t.equal(blindHits.length, 1)
  t.equal(blindHits[0].set, undefined)
  t.equal(blindHits[0].category, undefined)
})

t.test('one client sweeping ports costs one element and does not blind the evidence of another', async t => {
  // Small sets, so that the sweep would fill them if the counted key had the port.
  applyTable(firewall(), s => s.replace(/(set evidence_v4 \{[^}]*?size )\d+;/, '$164;').replace(/(set evidence_ports_v4 \{[^}]*?size )\d+;/, '$116;'))
  const { ev, hits } = evidence()
  await ev.readNow()
  sweepUdp('192.0.2.80', 20000, 300)
  t.match(connect('192.0.2.80', 8080, '10.99.1.3'), /^E(HOSTUNREACH|CONNREFUSED|ACCES)$/, 'the other client is rejected')
  const counted = setElements('evidence_v4')
  t.equal(counted.length, 2, `one element per (client, destination, proto, set): ${JSON.stringify(counted.map(e => e.elem.val.concat))}`)
  t.equal(setElements('evidence_ports_v4').length, 16, 'the port samples are full')
  clock += 1000
  await ev.readNow()
  const sweeper = hits.find(h => h.client === '10.99.1.2')
  const other = hits.find(h => h.client === '10.99.1.3')
  t.match(sweeper, { destination: '192.0.2.80', proto: 'udp', category: 'telegram', set: 'learned_telegram_v4' })
  t.equal(sweeper?.attempts, kernelPackets('192.0.2.80') - (other?.attempts ?? 0), 'every datagram of the sweep counted')
  t.ok(sweeper !== undefined && sweeper.port >= 20000 && sweeper.port < 20300, `a port of the sweep: ${String(sweeper?.port)}`)
  t.match(other, { destination: '192.0.2.80', proto: 'tcp', category: 'telegram' }, "the other client's attempt is evidence")
  t.equal(other?.port, 0, 'its port is unknown: the port samples were full')
  t.same({ elements: ev.state.elements, full: ev.state.full, portsFull: ev.state.portsFull }, { elements: 2, full: false, portsFull: true })
})

t.test('full evidence sets do not let traffic through, and are reported with a warning once an hour', async t => {
  // No server listens now: a connection that passed the gateway would be refused by the server (ECONNREFUSED).
  applyTable(firewall(), s => s.replace(/size \d+;/g, 'size 1;'))
  t.equal(connect('192.0.2.80', 8080), 'EHOSTUNREACH', 'the first attempt fills both sets')
  t.equal(connect('192.0.2.80', 8081), 'EHOSTUNREACH', 'a second port (no room for its sample) is rejected all the same')
  t.equal(connect('192.0.2.80', 8080, '10.99.1.3'), 'EHOSTUNREACH', 'a second client (no room for its key) is rejected all the same')
  sendUdp('192.0.2.80', 5001, 1)
  const set = execFileSync(ip, ['netns', 'exec', ns.gw, nft, 'list', 'set', 'inet', 'egressd', 'evidence_v4'], { encoding: 'utf8' })
  t.equal(set.match(/ \. 192\.0\.2\.80 \./g)?.length, 1, 'the set holds one key')
  t.match(set, /10\.99\.1\.2 \. 192\.0\.2\.80 \. tcp \. 0x[0-9a-f]+ counter/, 'the first attempt\'s')
  t.same(setElements('evidence_ports_v4').map(e => e.elem.val.concat), [['10.99.1.2', '192.0.2.80', 'tcp', 8080]])
  const listed = execFileSync(ip, ['netns', 'exec', ns.gw, nft, 'list', 'chain', 'inet', 'egressd', 'forward'], { encoding: 'utf8' })
  const plain = listed.split('\n').find(l => /ip daddr @learned_telegram_v4 counter packets \d+/.test(l)) ?? ''
  // A TCP attempt may be more than one packet (the SYN is sent again), so at least the three attempts.
  t.ok(Number(/counter packets (\d+)/.exec(plain)?.[1]) >= 3, `the plain reject caught the attempts the evidence rule could not record: ${plain.trim()}`)

  const lines: string[] = []
  const captured = pino({ level: 'warn' }, new Writable({ write (chunk: Buffer, _enc, done) { lines.push(String(chunk)); done() } }))
  const { ev } = evidence({ log: captured })
  await ev.readNow()
  t.same({ elements: ev.state.elements, full: ev.state.full, portsFull: ev.state.portsFull }, { elements: 1, full: true, portsFull: true })
  clock += 30 * 60_000
  await ev.readNow()
  const warned = (): number => lines.filter(l => l.includes('firewall evidence set full')).length
  t.equal(warned(), 1, 'warned once within the hour')
  clock += 31 * 60_000
  await ev.readNow()
  t.equal(warned(), 2, 'and again after an hour')
})

t.test('the timer reads every intervalMs; sync or evidence off reads nothing; a missing table is a counted failure', async t => {
  applyTable(firewall())
  const { ev } = evidence()
  ev.start()
  for (let i = 0; i < 60 && ev.state.reads < 4; i++) await new Promise(resolve => setTimeout(resolve, 100))
  await ev.close()
  t.ok(ev.state.reads >= 4, `reads ${ev.state.reads}`)
  const reads = ev.state.reads
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.equal(ev.state.reads, reads, 'closed: no more reads')

  let config = firewall({ sync: false })
  const { ev: off } = evidence({ firewall: () => config })
  await off.readNow()
  config = firewall({ evidence: { enabled: false, intervalMs: 1000, perPairSeconds: 300 } })
  await off.readNow()
  t.same({ reads: off.state.reads, failures: off.state.failures }, { reads: 0, failures: 0 })

  const { ev: missing } = evidence({ firewall: () => firewall({ table: 'nosuchtable' }) })
  await missing.readNow()
  t.equal(missing.state.failures, 2)
  t.match(missing.state.lastError, /evidence_v6: .*No such file or directory/)

  const { ev: noNft } = evidence({ command: ['/nonexistent/nft'] })
  await noNft.readNow()
  t.equal(noNft.state.failures, 2)
  t.match(noNft.state.lastError, /ENOENT/)
})

t.test('parseEvidenceSet and parsePortSet are strict: bad output is an error, bad elements are counted and skipped', async t => {
  const wrap = (set: unknown): string => JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6' } }, { set }] })
  const good = { elem: { val: { concat: ['10.0.0.1', '192.0.2.1', 'udp', 42] }, expires: 10, counter: { packets: 7, bytes: 400 } } }
  for (const [text, error] of [
    ['', /no JSON/], ['{"nftables": 1}', /"nftables" array/], [wrap({ name: 'other' }), /without the set evidence_v4/],
    [wrap({ name: 'evidence_v4', elem: {} }), /not an array/], ['!Error: No such file', /^Error: No such file$/]
  ] as const) {
    const r = parseEvidenceSet(text, 'evidence_v4', 4)
    t.equal(r.ok, false, text)
    if (!r.ok) t.match(r.error, error)
  }
  const r = parseEvidenceSet(wrap({
    name: 'evidence_v4',
    handle: 9,
    size: 16384,
    elem: [
      good,
      { elem: { val: { concat: ['10.0.0.1', '192.0.2.1', 'tcp', '0x2a'] }, counter: { packets: 1, bytes: 60 } } },
      { elem: { val: { concat: ['10.0.0.1', '2001:db8::1', 'tcp', 42] }, counter: { packets: 1 } } },       // wrong family
      { elem: { val: { concat: ['10.0.0.1', '192.0.2.1', 'tcp', 443, 42] }, counter: { packets: 1 } } },    // the old key with a port
      { elem: { val: { concat: ['10.0.0.1', '192.0.2.1', 'tcp'] }, counter: { packets: 1 } } },             // no tag
      { elem: { val: { concat: ['10.0.0.1', '192.0.2.1', 'tcp', 42] }, counter: { packets: -1 } } },        // negative
      'x'
    ]
  }), 'evidence_v4', 4)
  t.equal(r.ok, true)
  if (!r.ok) return
  t.same([r.handle, r.size], [9, 16384])
  t.same(r.elements, [
    { client: '10.0.0.1', destination: '192.0.2.1', proto: 'udp', tag: 42, packets: 7 },
    { client: '10.0.0.1', destination: '192.0.2.1', proto: 'tcp', tag: 42, packets: 1 }
  ])
  t.equal(r.bad, 5)
  t.match(r.firstBad, /2001:db8::1/)
  const empty = parseEvidenceSet(wrap({ name: 'evidence_v6', handle: 3 }), 'evidence_v6', 6)
  t.same(empty, { ok: true, handle: 3, size: undefined, elements: [], bad: 0, firstBad: undefined })

  const ports = parsePortSet(wrap({
    name: 'evidence_ports_v6',
    size: 2048,
    elem: [
      { elem: { val: { concat: ['fd00::2', '2001:db8::1', 'tcp', 443] }, expires: 20 } },
      { elem: { val: { concat: ['fd00::2', '2001:db8::1', 'tcp', 8443] }, expires: 55 } },
      { elem: { val: { concat: ['fd00::2', '2001:db8::1', 'udp', '3478'] }, expires: 5 } },
      { elem: { val: { concat: ['fd00::2', '2001:db8::1', 'udp', 70000] }, expires: 5 } }   // port out of range
    ]
  }), 'evidence_ports_v6', 6)
  t.equal(ports.ok, true)
  if (!ports.ok) return
  t.equal(ports.bad, 1)
  const latest = latestPorts(ports.elements)
  t.equal(latest.get('fd00::2 2001:db8::1 tcp')?.port, 8443, 'the sample added last (most time left)')
  t.equal(latest.get('fd00::2 2001:db8::1 udp')?.port, 3478)
})

t.test('parse time of a full evidence set (16384 elements) read from the kernel', async t => {
  const name = 'evidence_v4'
  applyTable(firewall())
  const lines: string[] = []
  for (let i = 0; i < 16384; i++) {
    lines.push(`add element inet egressd ${name} { 10.${64 + (i >> 14)}.${(i >> 7) & 127}.${i & 127} . 203.0.${i & 255}.${(i >> 8) & 255} . tcp . 0x${(0x811c9dc5 + i).toString(16)} counter packets ${i + 1} bytes 60 }`)
  }
  execFileSync(ip, ['netns', 'exec', ns.gw, nft, '-f', '-'], { input: lines.join('\n') + '\n' })
  const text = execFileSync(ip, ['netns', 'exec', ns.gw, nft, '-j', 'list', 'set', 'inet', 'egressd', name], { encoding: 'utf8', maxBuffer: 64 << 20 })
  const started = process.hrtime.bigint()
  const r = parseEvidenceSet(text, name, 4)
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  t.equal(r.ok && r.elements.length, 16384, 'all elements parsed')
  t.equal(r.ok && r.size, 16384, 'the set is at its size')
  t.comment(`nft -j output ${(text.length / 1e6).toFixed(2)} MB, parsed in ${ms.toFixed(1)} ms`)
  t.ok(ms < 1000, `parsed in ${ms.toFixed(1)} ms`)
  applyTable(firewall())
})

t.test('a full pair map drops its oldest pair (counted); onHit throwing is not the reader\'s failure', async t => {
  // A fake nft for fault injection: prints the JSON file named by its last argument (the set).
  const { writeFileSync } = await import('node:fs')
  const { tempDir } = await import('../helpers/tmp.js')
  const dir = tempDir('egressd-evidence-')
  const fake = `${dir}/nft`
  writeFileSync(fake, `#!/bin/sh\nset -- "$@"\nfor a; do last=$a; done\ncat "${dir}/$last.json"\n`, { mode: 0o755 })
  const write = (name: string, elems: unknown[]): void => {
    writeFileSync(`${dir}/${name}.json`, JSON.stringify({ nftables: [{ set: { name, handle: 1, elem: elems } }] }))
  }
  const el = (client: string, packets: number): unknown => ({ elem: { val: { concat: [client, '192.0.2.1', 'tcp', 1] }, counter: { packets } } })
  write('evidence_v4', [el('10.0.0.1', 1), el('10.0.0.2', 1), el('10.0.0.3', 1)])
  write('evidence_v6', [])
  write('evidence_ports_v4', [])
  write('evidence_ports_v6', [])
  let calls = 0
  const { ev } = evidence({ command: [fake], maxPairs: 2, onHit: () => { calls++; throw new Error('boom') } })
  await ev.readNow()
  t.equal(calls, 3)
  t.equal(ev.state.failures, 0, 'a throwing onHit is logged, not a read failure')
  t.equal(ev.pairs, 2)
  // Pairs .2 and .3 get attempts inside their window; the new pair .4 pushes out .2 with its attempt.
  write('evidence_v4', [el('10.0.0.2', 2), el('10.0.0.3', 2), el('10.0.0.4', 5)])
  clock += 1000
  await ev.readNow()
  t.equal(calls, 4)
  t.equal(ev.pairs, 2)
  t.equal(ev.state.suppressed, 2)
  t.equal(ev.state.evictedPairs, 1, 'the dropped pair had an attempt not yet reported')
  write('evidence_v4', [el('10.0.0.3', 1)])
  clock += 1000
  await ev.readNow()
  t.equal(ev.state.suppressed, 3, 'a counter that went down starts again: a new attempt, inside the window')
  t.equal(calls, 4)
})
