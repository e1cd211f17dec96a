// The nftables export checked by the real nft (`nft -c`), and applied in network namespaces made
// by this test: a client behind a gateway cannot reach a Telegram address or DoT, but reaches an
// allowed address. All traffic stays inside the test's namespaces.

import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { netnsTopology } from '../helpers/netns.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../helpers/tmp.js'
import type { FirewallConfig } from '../../src/config/types.js'
import { evidenceTag, evidenceTags, learnedSetName, renderNftables, sharedSetName, type FirewallInput } from '../../src/firewall/nftables.js'

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

const firewall = (over: Partial<FirewallConfig> = {}): FirewallConfig => ({
  table: 'egressd_t', lanInterfaces: ['eth1'], lanCidrs: ['10.0.0.0/8', 'fd00::/8'], rejectAddresses: true, redirectDns: true,
  rejectDot: true, rejectDoq: true, sync: false, sharedRanges: [], evidence: { enabled: true, intervalMs: 5000, perPairSeconds: 300 }, ...over
})
const input = (config: FirewallConfig, categories: FirewallInput['categories']): FirewallInput =>
  ({ config, dnsPort: 53, categories, allow: { v4: [], v6: [] }, exempt: { v4: [], v6: [] }, generatedBy: 'test' })

t.test('learned, shared and evidence sets: rendered as nft accepts them', async t => {
  const script = renderNftables(input(firewall(), [
    {
      name: 'whatsapp',
      title: 'WhatsApp',
      v4: ['157.240.0.0/16'],
      v6: [],
      shared: { v4: ['31.13.64.0/18'], v6: ['2a03:2880::/32'] },
      learned: {
        v4: [
          { address: '157.240.1.1', timeoutSeconds: 3600 },
          { address: '157.240.1.1', timeoutSeconds: 7200.7 },   // a duplicate: the longer timeout stays
          { address: '157.240.1.2', timeoutSeconds: 0.4 },      // run out: left out
          { address: '2a03:2880::1', timeoutSeconds: 60 },      // wrong family: left out
          { address: '1.2.3.4 } ; flush ruleset', timeoutSeconds: 60 } // not an address: never in the script
        ],
        v6: [{ address: '2a03:2880:f003::1', timeoutSeconds: 86400 }]
      }
    },
    { name: 'doh-bypass', title: 'DoH', v4: ['1.1.1.1/32'], v6: [] }
  ]))
  const r = nftCheck(script)
  t.equal(r.status, 0, r.stderr)
  t.equal(learnedSetName('doh-bypass', 6), 'learned_doh_bypass_v6')
  t.equal(sharedSetName('whatsapp', 4), 'whatsapp_shared_v4')
  t.match(script, /set learned_whatsapp_v4 \{\n {4}type ipv4_addr; flags timeout; comment "WhatsApp: learned addresses"; elements = \{ 157\.240\.1\.1 timeout 7200s \}\n/)
  t.match(script, /set learned_whatsapp_v6 \{[^}]*elements = \{ 2a03:2880:f003::1 timeout 86400s \}/)
  t.notMatch(script, /flush ruleset|157\.240\.1\.2/, 'nothing but addresses with time left goes into a learned set')
  t.match(script, /set learned_doh_bypass_v4 \{\n {4}type ipv4_addr; flags timeout; comment "DoH: learned addresses";\n {2}\}/, 'a category with nothing learned has empty learned sets')
  t.same(setElements(script, 'whatsapp_shared_v4'), ['31.13.64.0/18'])
  t.same(setElements(script, 'whatsapp_shared_v6'), ['2a03:2880::/32'])
  t.notMatch(script, /doh_bypass_shared/, 'no shared sets for a category without them')
  // The counted key has no port (bounded by clients x destinations); a small short-lived set names ports.
  t.match(script, /set evidence_v4 \{\n {4}type ipv4_addr \. ipv4_addr \. inet_proto \. mark; flags dynamic,timeout; timeout 900s; size 16384;/)
  t.match(script, /set evidence_v6 \{\n {4}type ipv6_addr \. ipv6_addr \. inet_proto \. mark;/)
  t.match(script, /set evidence_ports_v4 \{\n {4}type ipv4_addr \. ipv4_addr \. inet_proto \. inet_service; flags dynamic,timeout; timeout 60s; size 2048;/)
  t.match(script, /set evidence_ports_v6 \{\n {4}type ipv6_addr \. ipv6_addr \. inet_proto \. inet_service;/)
  // Every set of a category is rejected: with evidence, a TCP/UDP rule recording the attempt, then a
  // plain reject for the other protocols (and for when the evidence set is full).
  for (const [set, ip] of [['whatsapp_v4', 'ip'], ['whatsapp_shared_v4', 'ip'], ['learned_whatsapp_v4', 'ip'], ['whatsapp_v6', 'ip6'], ['whatsapp_shared_v6', 'ip6'], ['learned_whatsapp_v6', 'ip6'], ['learned_doh_bypass_v4', 'ip']]) {
    const v = ip === 'ip' ? 'v4' : 'v6'
    const lan = ip === 'ip' ? 'ip saddr @lan_v4' : 'ip6 saddr @lan_v6'
    t.match(script, new RegExp(`${ip} daddr @${set} meta l4proto \\{ tcp, udp \\} update @evidence_${v} \\{ ${ip} saddr \\. ${ip} daddr \\. meta l4proto \\. ${evidenceTag(set)} counter \\} ` +
      `add @evidence_ports_${v} \\{ ${ip} saddr \\. ${ip} daddr \\. meta l4proto \\. th dport \\} counter reject with icmpx type admin-prohibited`), `${set}: evidence rule`)
    t.match(script, new RegExp(`${ip} daddr @${set} counter reject with icmpx type admin-prohibited`), `${set}: plain reject`)
    t.match(script, new RegExp(`iifname \\{ "eth1" \\} ${lan} ${ip} daddr @${set} meta`), `${set}: LAN traffic only`)
  }
  const tags = evidenceTags(['whatsapp', 'doh-bypass'])
  t.same(tags.get(evidenceTag('learned_doh_bypass_v6')), { category: 'doh-bypass', set: 'learned_doh_bypass_v6', kind: 'learned' })
  t.equal(tags.size, 12, 'tags of 2 categories x 3 kinds x 2 families do not collide')

  const off = renderNftables(input(firewall({ evidence: { enabled: false, intervalMs: 5000, perPairSeconds: 300 } }), [{ name: 'telegram', title: 'Telegram', v4: [], v6: [] }]))
  t.equal(nftCheck(off).status, 0)
  t.notMatch(off, /evidence|update @/, 'evidence off: no evidence sets, no update')
  t.match(off, /ip daddr @learned_telegram_v4 counter reject/)
  const noReject = renderNftables(input(firewall({ rejectAddresses: false }), [{ name: 'telegram', title: 'Telegram', v4: [], v6: [] }]))
  t.equal(nftCheck(noReject).status, 0)
  t.notMatch(noReject, /evidence|reject with icmpx type admin-prohibited comment "egressd: telegram"/, 'rejectAddresses off: no evidence sets, no reject of the sets')
  t.match(noReject, /set learned_telegram_v4 \{/, 'the learned sets are still there for the element sync')
})

t.test('two rendered sets with one nft name are refused, naming both categories', async t => {
  const cat = (name: string, shared = false): FirewallInput['categories'][number] =>
    ({ name, title: name, v4: [], v6: [], ...shared ? { shared: { v4: ['192.0.2.0/24'], v6: [] } } : {} })
  const cases: Array<[string, FirewallInput['categories'], RegExp]> = [
    ["'-' and '_'", [cat('doh-bypass'), cat('doh_bypass')], /set name doh_bypass_v4 of category "doh_bypass" \(its published ranges\) is also that of category "doh-bypass" \(its published ranges\)/],
    ['a category named like a learned set', [cat('x'), cat('learned_x')], /set name learned_x_v4 of category "learned_x" \(its published ranges\) is also that of category "x" \(its learned addresses\)/],
    ['a category named like a shared set', [cat('x', true), cat('x_shared')], /set name x_shared_v4 of category "x_shared" \(its published ranges\) is also that of category "x" \(its shared ranges\)/],
    ["a category named like egressd's own set", [cat('lan')], /set name lan_v4 of category "lan" \(its published ranges\) is also that of egressd's own lan set/],
    ['a category named like the evidence set', [cat('evidence')], /set name evidence_v4 of category "evidence" \(its published ranges\) is also that of egressd's own evidence set/]
  ]
  for (const [name, categories, message] of cases) {
    t.throws(() => renderNftables(input(firewall(), categories)), { code: 'EGRESSD_ERR_POLICY_INVALID', message }, name)
  }
  // Without shared ranges turned on, x_shared beside x is no clash; evidence off frees the evidence names.
  t.equal(nftCheck(renderNftables(input(firewall(), [cat('x'), cat('x_shared')]))).status, 0)
  t.equal(nftCheck(renderNftables(input(firewall({ evidence: { enabled: false, intervalMs: 5000, perPairSeconds: 300 } }), [cat('evidence')]))).status, 0)
})

// ---- network namespaces: client --(lan)-- gw --(wan)-- server --------------------------------

const tag = `eg${process.pid % 100000}`

t.test('in network namespaces: blocked addresses and DoT are rejected, allowed ones pass; sync applies the rules', async t => {
  const net = netnsTopology({ tag, serverAddresses: ['149.154.167.51', '192.0.2.80'], routes: ['149.154.167.0/24', '192.0.2.0/24'] })
  t.teardown(net.teardown)
  const { ns, inNs } = net
  const connectFromClient = (host: string, port: number): string => net.connect(host, port)
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
    `firewall: { lanInterfaces: [${net.lanInterface}], sync: true }`,
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
