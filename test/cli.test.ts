// The built `egressd` command as an admin runs it: check-config exit codes and messages, start on
// a config file, SIGHUP with a bad config (keeps serving), SIGHUP with a good one (applied),
// SIGTERM (in-flight queries finish, exit 0). Needs `npm run build` (npm test does it).

import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { startDnsmasq } from './helpers/dnsmasq.js'
import { freePort } from './helpers/ports.js'
import { dig } from './helpers/dig.js'
import { aAnswer, startFakeUpstream } from './helpers/fake-upstream.js'
import { tempDir } from './helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli.js')
const dir = tempDir('egressd-cli-')

function run (args: string[], cwd?: string): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, cwd })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('check-config: 0 for a valid file, 1 with every error as path: message', async t => {
  const good = run(['check-config', resolve(import.meta.dirname, '..', 'config', 'egressd.example.yaml')])
  t.equal(good.status, 0, good.stderr)
  t.match(good.stdout, /ok/)
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'dns:\n  listen: ["nope"]\n  bogus: 1\nupstreams: ["ftp://x"]\nlog: { level: loud }\n')
  const r = run(['check-config', bad])
  t.equal(r.status, 1)
  t.match(r.stdout, /^dns\.listen\.0: /m)
  t.match(r.stdout, /^dns\.bogus: unknown key/m)
  t.match(r.stdout, /^upstreams\.0: /m)
  t.match(r.stdout, /^log\.level: /m)
  t.match(r.stderr, /4 error\(s\)/)
  const missing = run(['check-config', join(dir, 'nope.yaml')])
  t.equal(missing.status, 1)
  t.match(missing.stdout, /cannot read/)
  const usage = run(['frobnicate'])
  t.equal(usage.status, 2)
  t.match(usage.stderr, /unknown command "frobnicate"/)
})

async function startCli (config: string, cwd?: string): Promise<{ child: ChildProcess, output: () => string, exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], cwd })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { out += String(d) })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  for (let i = 0; i < 100 && !out.includes('egressd started'); i++) {
    if (child.exitCode !== null) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  if (!out.includes('egressd started')) throw new Error(`egressd did not start:\n${out}`)
  return { child, output: () => out, exited }
}

const waitFor = async (cond: () => boolean, ms = 5000): Promise<void> => {
  for (const until = Date.now() + ms; !cond() && Date.now() < until;) await new Promise(resolve => setTimeout(resolve, 25))
}

t.test('SIGHUP: a bad config is rejected and the old one keeps serving; a good one is applied', async t => {
  const upstream = await startDnsmasq()
  t.teardown(() => upstream.stop())
  const port = await freePort()
  const config = join(dir, 'hup.yaml')
  writeFileSync(config, `dns: { listen: ["127.0.0.1:${port}"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["${upstream.url}"]\ndataDir: data\n`)
  const d = await startCli(config)
  t.teardown(() => { d.child.kill('SIGKILL') })
  const at = ['@127.0.0.1', '-p', String(port)]
  t.same((await dig([...at, 'h.test'])).answers.map(r => r.data), ['192.0.2.11'])

  writeFileSync(config, 'dns: { listen: [broken\n')
  d.child.kill('SIGHUP')
  await waitFor(() => d.output().includes('reload rejected'))
  t.match(d.output(), /reload rejected, the running config stays/)
  t.same((await dig([...at, 'other.test'])).answers.map(r => r.data), ['192.0.2.12'], 'still serving')

  const other = await startDnsmasq({ lines: ['host-record=h2.test,192.0.2.99'] })
  t.teardown(() => other.stop())
  writeFileSync(config, `dns: { listen: ["127.0.0.1:${port}"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["${other.url}"]\ndataDir: data\n`)
  d.child.kill('SIGHUP')
  await waitFor(() => d.output().includes('config reloaded'))
  t.match(d.output(), /"applied":\[[^\]]*"upstreams"/)
  t.same((await dig([...at, 'h2.test'])).answers.map(r => r.data), ['192.0.2.99'], 'the new upstream answers')
  d.child.kill('SIGTERM')
  t.equal(await d.exited, 0)
})

t.test('SIGTERM: queries in flight are answered, then exit 0', async t => {
  const slow = await startFakeUpstream((q, _m, reply) => { setTimeout(() => reply(aAnswer(q, '192.0.2.88')), 700) })
  t.teardown(() => slow.close())
  const port = await freePort()
  const config = join(dir, 'term.yaml')
  writeFileSync(config, `dns: { listen: ["127.0.0.1:${port}"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["${slow.url}"]\ndataDir: data\n`)
  const d = await startCli(config)
  t.teardown(() => { d.child.kill('SIGKILL') })
  const answer = dig(['@127.0.0.1', '-p', String(port), '+tries=1', '+time=5', 'slow.test'])
  await waitFor(() => slow.received.length > 0)
  d.child.kill('SIGTERM')
  const a = await answer
  t.same(a.answers.map(r => r.data), ['192.0.2.88'], 'the query in flight was answered')
  t.equal(await d.exited, 0)
  t.match(d.output(), /egressd stopped/)
})

t.test('start fails with a clear message when the port is taken', async t => {
  const upstream = await startFakeUpstream(() => {})
  t.teardown(() => upstream.close())
  const port = await freePort()
  const config = join(dir, 'twice.yaml')
  writeFileSync(config, `dns: { listen: ["127.0.0.1:${port}"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["${upstream.url}"]\ndataDir: data\n`)
  const first = await startCli(config)
  t.teardown(() => { first.child.kill('SIGKILL') })
  const second = run(['start', '--config', config])
  t.equal(second.status, 1)
  t.match(second.stderr, new RegExp(`cannot listen on tcp 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
})

t.test('query: prints the Verdict without sending DNS traffic; exit 3 when blocked, 0 when allowed', async t => {
  const config = join(dir, 'query.yaml')
  writeFileSync(config, [
    'upstreams: ["udp://127.0.0.1:9"]',
    'blocklists:',
    '  groups: [{ name: soc, clients: [10.20.0.0/24], exempt: true }]'
  ].join('\n') + '\n')
  const blocked = run(['query', 'Web.Telegram.ORG.', '--config', config])
  t.equal(blocked.status, 3, blocked.stderr)
  const v = JSON.parse(blocked.stdout)
  t.match(v, { name: 'web.telegram.org', verdict: 'block', action: 'nxdomain', category: 'telegram', rule: 'telegram.org', matched: 'qname', group: 'default' })
  t.match(v.list, /blocklists\/telegram\/domains\.txt$/)
  t.ok(Number.isInteger(v.line) && v.line > 0, 'the line in the list')
  const exempt = run(['query', 'web.telegram.org', '--client', '10.20.0.7', '--config', config])
  t.equal(exempt.status, 0)
  t.match(JSON.parse(exempt.stdout), { verdict: 'allow', group: 'soc' })
  const allowed = run(['query', 'example.org', '--config', config])
  t.equal(allowed.status, 0)
  t.match(JSON.parse(allowed.stdout), { verdict: 'allow' })
  const bad = run(['query', 'bad..name', '--config', config])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /not a name/)
})

t.test('from another working directory, the bundled lists are found in the installation unless the config sets blocklists.dir', async t => {
  const cwd = tempDir('egressd-cli-cwd-')
  const upstream = await startFakeUpstream((q, _m, reply) => { reply(aAnswer(q, '192.0.2.5')) })
  t.teardown(() => upstream.close())
  const port = await freePort()
  const config = join(dir, 'elsewhere.yaml')
  writeFileSync(config, `dns: { listen: ["127.0.0.1:${port}"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["${upstream.url}"]\ndataDir: data\n`)
  const d = await startCli(config, cwd)
  t.teardown(() => { d.child.kill('SIGKILL') })
  const at = ['@127.0.0.1', '-p', String(port)]
  t.equal((await dig([...at, 'web.telegram.org'])).status, 'NXDOMAIN', 'blocked by the bundled telegram list')
  t.same((await dig([...at, 'example.org'])).answers.map(r => r.data), ['192.0.2.5'])
  d.child.kill('SIGTERM')
  t.equal(await d.exited, 0)

  const q = run(['query', 'web.telegram.org', '--config', config], cwd)
  t.equal(q.status, 3, q.stderr)
  t.equal(JSON.parse(q.stdout).list, resolve(import.meta.dirname, '..', 'blocklists', 'telegram', 'domains.txt'))

  // A relative dir the config sets is relative to the config file's directory, not to the working
  // directory; when it is missing, check-config says how to get the bundled lists back.
  const own = join(dir, 'own-dir.yaml')
  writeFileSync(own, `upstreams: ["${upstream.url}"]\nblocklists: { dir: ./blocklists }\n`)
  const c = run(['check-config', own], cwd)
  t.equal(c.status, 1)
  t.match(c.stdout, new RegExp(`^${join(dir, 'blocklists')}: cannot read the blocklists folder: ENOENT`, 'm'))
  t.match(c.stdout, /^hint: blocklists\.dir is resolved against the config file's directory; remove it .* bundled with egressd/m)
})

t.test('option values starting with "-" are taken as values, in both forms', async t => {
  const config = join(dir, 'dash.yaml')
  writeFileSync(config, 'upstreams: ["udp://127.0.0.1:9"]\n')
  for (const args of [['--client', '-1'], ['--client=-1']]) {
    const r = run(['query', 'example.org', '--config', config, ...args])
    t.equal(r.status, 2, args.join(' '))
    t.match(r.stderr, /--client must be an IP address, got "-1"/, 'the value reached the command, not the parser')
  }
  const missing = run(['query', 'example.org', '--client', '--config', config])
  t.equal(missing.status, 2, 'an option name is not taken as a value (a usage error)')
  t.match(missing.stderr, /ambiguous|argument missing/)
})
