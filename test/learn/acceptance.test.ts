// Issue 24's acceptance, end to end in network namespaces this test makes:
//
//   client 10.99.1.2 --(lan)-- gateway 10.99.1.1 / 10.99.2.1 --(wan)-- servers 10.99.2.2
//
// The gateway runs egressd (firewall sync on) with a real dnsmasq on its loopback as the upstream.
// dnsmasq answers a banned name with address A, an allowed name with B, and a second banned name
// with B as well. After the client's lookups a connection to A is rejected at the gateway and
// one to B passes; B is held back with both names; the rejected connection is a firewall event
// with the client's address in the block log and in the discovery report; a restart keeps A in
// the kernel's learned set; expiry removes it. All traffic stays inside the test's namespaces.

import t from 'tap'
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { netnsTopology, type Topology } from '../helpers/netns.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const ip = requireTool('ip')
const nft = requireTool('nft')
const dnsmasq = requireTool('dnsmasq')
const dig = requireTool('dig')
const dir = tempDir('egressd-learn-')

const tag = `el${process.pid % 100000}`
const A = '11.0.0.10' // web.whatsapp.com
const B = '11.0.0.20' // portal.example.com and mmg.whatsapp.net
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
let net: Topology

/** dig from the client namespace at egressd on the gateway: the status and the A records. */
function lookup (name: string): { status: string, addresses: string[] } {
  const out = execFileSync(ip, ['netns', 'exec', net.ns.client, dig, '@10.99.1.1', '-p', '5353', '+tries=1', '+time=3', name, 'A'], { encoding: 'utf8' })
  const status = /status: (\w+)/.exec(out)?.[1] ?? '?'
  const addresses = [...out.matchAll(/^\S+\s+\d+\s+IN\s+A\s+(\S+)$/gm)].map(m => m[1])
  return { status, addresses }
}

const cli = (config: string, ...args: string[]): string => execFileSync(process.execPath, [CLI, ...args, '--config', config], { encoding: 'utf8' })

function learnedSet (): string {
  const r = spawnSync(ip, ['netns', 'exec', net.ns.gw, nft, 'list', 'set', 'inet', 'egressd', 'learned_whatsapp_v4'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout : `nft failed: ${r.stderr}`
}

async function until<T> (what: string, get: () => T, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms
  let v = get()
  while (!ok(v)) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(v).slice(0, 600)}`)
    await sleep(250)
    v = get()
  }
  return v
}

interface Learned { address: string, category: string, name: string }
interface Held extends Learned { reason: string, sharedWith: string[] }
const learnedJson = (config: string): { learned: Learned[], held: Held[] } => JSON.parse(cli(config, 'learned', '--json')) as { learned: Learned[], held: Held[] }

t.test('learned address sets, the collateral guard and firewall evidence, in network namespaces', async t => {
  net = netnsTopology({ tag, serverAddresses: [A, B], routes: ['11.0.0.0/24'] })
  t.teardown(net.teardown)
  const { ns, inNs } = net
  const connectFromClient = (host: string, port: number): string => net.connect(host, port)
  const server = inNs(ns.server, process.execPath, ['-e',
    `const net=require('net');for(const h of ['${A}','${B}']) net.createServer(s=>s.end()).listen(8443,h);console.log('listening')`])
  t.teardown(() => { server.kill() })
  await new Promise<void>(resolve => server.stdout!.once('data', () => resolve()))
  t.equal(connectFromClient(A, 8443), 'ok', 'before egressd: A is reachable (the topology works)')

  // The upstream: dnsmasq on the gateway's loopback, TTL 1 s (expiry is then the configured floor).
  const conf = join(dir, 'dnsmasq.conf')
  writeFileSync(conf, [
    'port=5300', 'listen-address=127.0.0.1', 'bind-interfaces', 'no-resolv', 'no-hosts', 'no-poll', 'local-ttl=1', 'cache-size=0',
    `host-record=web.whatsapp.com,${A}`, `host-record=portal.example.com,${B}`, `host-record=mmg.whatsapp.net,${B}`
  ].join('\n') + '\n')
  const upstream = inNs(ns.gw, dnsmasq, ['-k', '-C', conf, '--pid-file='])
  t.teardown(() => { upstream.kill() })

  const config = join(dir, 'egressd.yaml')
  writeFileSync(config, [
    'dns: { listen: ["10.99.1.1:5353"], allowClients: ["10.99.1.0/24"] }',
    'upstreams: ["udp://127.0.0.1:5300"]',
    'api: { listen: "127.0.0.1:0" }',
    `dataDir: ${join(dir, 'var')}`,
    `firewall: { lanInterfaces: [${net.lanInterface}], sync: true, evidence: { intervalMs: 1000, perPairSeconds: 60 } }`,
    'learning: { minExpirySeconds: 25, maxExpirySeconds: 25 }',
    'log: { level: info }'
  ].join('\n') + '\n')
  let out = ''
  const start = async (): Promise<ChildProcess> => {
    out = ''
    const d = inNs(ns.gw, process.execPath, [CLI, 'start', '--config', config])
    d.stdout!.on('data', c => { out += String(c) })
    d.stderr!.on('data', c => { out += String(c) })
    await until('the first nftables apply', () => out, o => /nftables rules applied|nftables sync failed/.test(o), 10_000)
    t.notMatch(out, /nftables sync failed/, 'egressd applied its table')
    return d
  }
  let daemon = await start()
  t.teardown(() => { daemon.kill('SIGKILL') })

  // The client's lookups: the allowed name first, then both banned names.
  t.same(lookup('portal.example.com'), { status: 'NOERROR', addresses: [B] }, 'the allowed name resolves to B')
  t.equal(lookup('web.whatsapp.com').status, 'NXDOMAIN', 'the banned name is blocked')
  t.equal(lookup('mmg.whatsapp.net').status, 'NXDOMAIN', 'the second banned name is blocked')

  const seen = await until('A learned and B held back', () => learnedJson(config),
    j => j.learned.some(l => l.address === A) && j.held.some(h => h.address === B), 10_000)
  const a = seen.learned.find(l => l.address === A)!
  t.match(a, { category: 'whatsapp', name: 'web.whatsapp.com' }, 'A is learned for whatsapp from web.whatsapp.com')
  t.notOk(seen.learned.some(l => l.address === B), 'B is not in a learned set')
  const b = seen.held.find(h => h.address === B)!
  t.match(b, { category: 'whatsapp', name: 'mmg.whatsapp.net', reason: 'allowed-name' }, 'B is held back, learned from the banned name')
  t.ok(b.sharedWith.includes('portal.example.com'), 'and lists the allowed name that shares it')
  await until('A in the kernel set', learnedSet, s => s.includes(A), 5000)
  t.notMatch(learnedSet(), new RegExp(B.replace(/\./g, '\\.')), 'B is not in the kernel set')

  t.match(connectFromClient(A, 8443), /^E(HOSTUNREACH|CONNREFUSED|ACCES)$/, 'a connection to A is rejected')
  t.equal(connectFromClient(B, 8443), 'ok', 'a connection to B passes')

  // The rejected attempt is evidence: a firewall event with the client's address, and the report.
  const events = await until('the firewall event', () => JSON.parse(cli(config, 'logs', 'search', '--client', '10.99.1.2', '--json')) as Array<Record<string, unknown>>,
    rows => rows.some(r => r.matched === 'firewall'), 15_000)
  t.match(events.find(r => r.matched === 'firewall'), { client: '10.99.1.2', value: A, port: 8443, proto: 'tcp', category: 'whatsapp' }, 'the block log has the firewall event')
  const report = JSON.parse(cli(config, 'discovery', '--client', '10.99.1.2', '--json')) as { clients: Array<{ client: string, categories: Array<{ category: string, dnsAttempts: number, firewallAttempts: number }> }> }
  const tried = report.clients.find(c => c.client === '10.99.1.2')?.categories.find(c => c.category === 'whatsapp')
  t.ok(tried !== undefined && tried.dnsAttempts >= 2 && tried.firewallAttempts >= 1, `the discovery report has the client trying whatsapp by DNS and at the firewall: ${JSON.stringify(tried)}`)

  // A restart keeps A in the set (from the store).
  daemon.kill('SIGTERM')
  await new Promise(resolve => daemon.once('exit', resolve))
  daemon = await start()
  await until('A back in the kernel set after the restart', learnedSet, s => s.includes(A), 5000)
  t.pass('a restart keeps A in the learned set')

  // Expiry removes it: from the kernel and from the store.
  await until('A expired', () => ({ kernel: learnedSet(), stored: learnedJson(config).learned.map(l => l.address) }),
    v => !v.kernel.includes(A) && !v.stored.includes(A), 40_000)
  t.pass('expiry removes A from the set and the store')
  daemon.kill('SIGTERM')
  await new Promise(resolve => daemon.once('exit', resolve))
})
