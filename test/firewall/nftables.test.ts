// The nftables export checked by the real nft (`nft -c`), and applied in network namespaces made
// by this test: a client behind a gateway cannot reach a Telegram address or DoT, but reaches an
// allowed address. All traffic stays inside the test's namespaces.

import t from 'tap'
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const nft = requireTool('nft')
const ip = requireTool('ip')
const dir = tempDir('egressd-nft-')

function exportScript (configYaml: string, extra: string[] = []): string {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, configYaml)
  return execFileSync(process.execPath, [CLI, 'export', 'nftables', '--config', file, ...extra], { encoding: 'utf8' })
}

function nftCheck (script: string): { status: number | null, stderr: string } {
  const r = spawnSync(nft, ['-c', '-f', '-'], { input: script, encoding: 'utf8' })
  return { status: r.status, stderr: r.stderr }
}

const setElements = (script: string, name: string): string[] => {
  const m = script.match(new RegExp(`set ${name} \\{[^}]*?elements = \\{ ([^}]*) \\}`))
  return m === null ? [] : m[1].split(', ')
}

const ALL = ['telegram', 'whatsapp', 'viber', 'discord', 'teams', 'skype', 'snapchat', 'threema', 'wechat', 'gmail', 'signal', 'zoom', 'doh-bypass']

t.test('the default config exports a script nft accepts', async t => {
  const script = exportScript('upstreams: ["udp://127.0.0.1:9"]\n')
  const r = nftCheck(script)
  t.equal(r.status, 0, r.stderr)
  t.ok(setElements(script, 'telegram_v4').includes('149.154.160.0/20'), "Telegram's 149.154.160.0/20 is in telegram_v4")
  t.ok(setElements(script, 'telegram_v6').includes('2001:67c:4e8::/48'), "Telegram's 2001:67c:4e8::/48 is in telegram_v6")
  t.notMatch(script, /set signal_v4/, 'disabled categories have no sets')
  t.match(script, /no firewall\.lanInterfaces or firewall\.lanCidrs configured: DNS is not redirected/)
})

t.test('every category on, LAN by interface and v4+v6 ranges, custom CIDRs, exempt group: nft accepts it', async t => {
  const cats = ALL.map(c => `    ${c}: { enabled: true }`).join('\n')
  const script = exportScript([
    'dns: { listen: ["0.0.0.0:53", "[::]:53"] }',
    'upstreams: ["udp://127.0.0.1:9"]',
    'blocklists:',
    '  categories:',
    cats,
    '  rules: { block: ["203.0.113.0/24", "2001:db8:bad::/48"], allow: ["149.154.167.99"] }',
    '  groups: [{ name: soc, clients: ["10.20.0.0/24", "fd00:20::/64"], exempt: true }]',
    'firewall: { lanInterfaces: [eth1, "br-lan"], lanCidrs: [10.0.0.0/8, "fd00::/8"] }'
  ].join('\n') + '\n', ['--table', 'egressd_test'])
  const r = nftCheck(script)
  t.equal(r.status, 0, r.stderr)
  for (const c of ALL) t.match(script, new RegExp(`set ${c.replace('-', '_')}_v4 \\{`), `${c} has a v4 set`)
  t.same(setElements(script, 'custom_v4'), ['203.0.113.0/24'])
  t.same(setElements(script, 'custom_v6'), ['2001:db8:bad::/48'])
  t.same(setElements(script, 'allow_v4'), ['149.154.167.99/32'])
  t.same(setElements(script, 'exempt_v6'), ['fd00:20::/64'])
  t.match(script, /table inet egressd_test \{/)
  t.match(script, /iifname \{ "eth1", "br-lan" \} ip saddr @lan_v4 udp dport 53 counter redirect to :53/)
  t.match(script, /ip6 saddr @lan_v6 tcp dport 853 counter reject with tcp reset/)
  t.match(script, /udp dport 853 counter reject/)
})

t.test('bad firewall settings are config errors', async t => {
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, 'firewall: { table: "1bad", lanCidrs: [lan] }\n')
  const r = spawnSync(process.execPath, [CLI, 'check-config', file], { encoding: 'utf8' })
  t.equal(r.status, 1)
  t.match(r.stdout, /firewall\.table: /)
  t.match(r.stdout, /firewall\.lanCidrs\.0: expected an IP address or CIDR/)
})

// ---- network namespaces: client --(lan)-- gw --(wan)-- server --------------------------------

const tag = `eg${process.pid % 100000}`
const ns = { client: `${tag}c`, gw: `${tag}g`, server: `${tag}s` }
const sh = (...args: string[]): void => { execFileSync(ip, args, { stdio: 'pipe' }) }
const inNs = (name: string, cmd: string, args: string[]): ChildProcess => spawn(ip, ['netns', 'exec', name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })

function setupNamespaces (): void {
  for (const n of Object.values(ns)) sh('netns', 'add', n)
  sh('link', 'add', `${tag}cl`, 'type', 'veth', 'peer', 'name', `${tag}gl`)
  sh('link', 'add', `${tag}gw`, 'type', 'veth', 'peer', 'name', `${tag}sw`)
  sh('link', 'set', `${tag}cl`, 'netns', ns.client)
  sh('link', 'set', `${tag}gl`, 'netns', ns.gw)
  sh('link', 'set', `${tag}gw`, 'netns', ns.gw)
  sh('link', 'set', `${tag}sw`, 'netns', ns.server)
  const x = (n: string, ...a: string[]): void => sh('-n', n, ...a)
  for (const n of Object.values(ns)) x(n, 'link', 'set', 'lo', 'up')
  x(ns.client, 'addr', 'add', '10.99.1.2/24', 'dev', `${tag}cl`)
  x(ns.client, 'link', 'set', `${tag}cl`, 'up')
  x(ns.client, 'route', 'add', 'default', 'via', '10.99.1.1')
  x(ns.gw, 'addr', 'add', '10.99.1.1/24', 'dev', `${tag}gl`)
  x(ns.gw, 'addr', 'add', '10.99.2.1/24', 'dev', `${tag}gw`)
  x(ns.gw, 'link', 'set', `${tag}gl`, 'up')
  x(ns.gw, 'link', 'set', `${tag}gw`, 'up')
  x(ns.gw, 'route', 'add', '149.154.167.0/24', 'via', '10.99.2.2')
  x(ns.gw, 'route', 'add', '192.0.2.0/24', 'via', '10.99.2.2')
  x(ns.server, 'addr', 'add', '10.99.2.2/24', 'dev', `${tag}sw`)
  x(ns.server, 'link', 'set', `${tag}sw`, 'up')
  x(ns.server, 'addr', 'add', '149.154.167.51/32', 'dev', 'lo')
  x(ns.server, 'addr', 'add', '192.0.2.80/32', 'dev', 'lo')
  x(ns.server, 'route', 'add', 'default', 'via', '10.99.2.1')
  execFileSync(ip, ['netns', 'exec', ns.gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], { stdio: 'pipe' })
}

function teardownNamespaces (): void {
  for (const n of Object.values(ns)) spawnSync(ip, ['netns', 'del', n], { stdio: 'ignore' })
}

/** From the client namespace: 'ok' if a TCP connection to host:port opens, else the error code. */
function connectFromClient (host: string, port: number): string {
  const code = `const s=require('net').connect({host:'${host}',port:${port},timeout:2000});` +
    `s.on('connect',()=>{console.log('ok');s.destroy()});s.on('timeout',()=>{console.log('TIMEOUT');s.destroy()});s.on('error',e=>console.log(e.code))`
  return execFileSync(ip, ['netns', 'exec', ns.client, process.execPath, '-e', code], { encoding: 'utf8', timeout: 10_000 }).trim()
}

t.test('in network namespaces: blocked addresses and DoT are rejected, allowed ones pass; sync applies the rules', async t => {
  teardownNamespaces()
  setupNamespaces()
  t.teardown(teardownNamespaces)
  // Servers in the "internet" namespace: one Telegram address, one allowed address, and port 853.
  const server = inNs(ns.server, process.execPath, ['-e',
    "const net=require('net');for(const [h,p] of [['149.154.167.51',8080],['192.0.2.80',8080],['192.0.2.80',853]]) net.createServer(s=>s.end()).listen(p,h);console.log('listening')"])
  t.teardown(() => { server.kill() })
  await new Promise<void>(resolve => server.stdout!.once('data', () => resolve()))

  t.equal(connectFromClient('149.154.167.51', 8080), 'ok', 'before the rules: Telegram reachable (the topology works)')
  t.equal(connectFromClient('192.0.2.80', 853), 'ok', 'before the rules: port 853 reachable')

  const config = join(dir, 'netns.yaml')
  writeFileSync(config, [
    'dns: { listen: ["127.0.0.1:5353"] }',
    'upstreams: ["udp://127.0.0.1:9"]',
    `firewall: { lanInterfaces: [${tag}gl], sync: true }`,
    'log: { level: info }'
  ].join('\n') + '\n')
  // The daemon itself applies the rules (sync) inside the gateway namespace.
  const daemon = inNs(ns.gw, process.execPath, [CLI, 'start', '--config', config])
  t.teardown(() => { daemon.kill('SIGKILL') })
  let out = ''
  daemon.stdout!.on('data', d => { out += String(d) })
  daemon.stderr!.on('data', d => { out += String(d) })
  for (let i = 0; i < 100 && !out.includes('nftables rules applied') && !out.includes('nftables sync failed'); i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.match(out, /nftables rules applied/, 'egressd applied the rules with nft')
  const listed = execFileSync(ip, ['netns', 'exec', ns.gw, nft, 'list', 'set', 'inet', 'egressd', 'telegram_v4'], { encoding: 'utf8' })
  t.match(listed, /149\.154\.160\.0\/20/, 'the telegram set is loaded in the kernel')

  t.equal(connectFromClient('192.0.2.80', 8080), 'ok', 'an allowed address passes')
  t.match(connectFromClient('149.154.167.51', 8080), /^E(HOSTUNREACH|CONNREFUSED|ACCES)$/, 'a Telegram address is rejected')
  t.equal(connectFromClient('192.0.2.80', 853), 'ECONNREFUSED', 'DNS over TLS gets a TCP reset')
  daemon.kill('SIGTERM')
})
