// Reloads: the plan says per config slice what applies live and what needs a restart; restart-only
// changes keep their running values (firewall sync keeps redirecting to the bound DNS port); a
// reload that changes nothing says so; token changes are audited by name; a SIGHUP to the real
// `egressd start` is audited with actor `signal`. Needs `npm run build` for the SIGHUP test.

import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { configChanges, keepRunning, RELOAD_PLAN } from '../src/config/reload.js'
import { parseConfig } from '../src/config/load.js'
import { firewallScript } from '../src/firewall/sync.js'
import { call, startApiDaemon, TOKENS } from './api/helpers.js'
import { freePort } from './helpers/ports.js'
import { tempDir } from './helpers/tmp.js'

const parse = (o: unknown) => parseConfig(JSON.stringify(o), { file: 'x.json', resolvConf: '' })
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
const SIGNAL = { trigger: 'signal', actor: { name: 'signal', client: '' } } as const

t.test('the reload plan names real config keys and sorts changes into live and restart', async t => {
  const base = parse({ upstreams: ['udp://127.0.0.1:9'] })
  // Every key the plan declares exists in a loaded config (the type already requires every key of Config).
  const missing: string[] = []
  let slices = 0
  const walk = (plan: unknown, value: unknown, path: string): void => {
    if (typeof plan === 'string') { slices++; return }
    for (const [k, sub] of Object.entries(plan as object)) {
      if (value === null || typeof value !== 'object' || !(k in value)) missing.push(`${path}${k}`)
      else walk(sub, (value as Record<string, unknown>)[k], `${path}${k}.`)
    }
  }
  walk(RELOAD_PLAN, base, '')
  t.same(missing, [], 'every slice of the plan is a key of the config')
  t.ok(slices > 20, `${slices} slices declared`)
  t.same(configChanges(base, parse({ upstreams: ['udp://127.0.0.1:9'] })), { live: [], restart: [] }, 'the same config: nothing')
  const next = parse({
    upstreams: ['udp://127.0.0.1:10'],
    dns: { listen: ['127.0.0.1:5400'], allowClients: ['10.0.0.0/8'], tcp: { idleTimeoutMs: 5000 } },
    store: { logQueries: 'all', batchMs: 250 },
    log: { level: 'debug' }
  })
  const changes = configChanges(base, next)
  t.same(changes.live, ['dns.allowClients', 'upstreams', 'store.logQueries', 'log.level'])
  t.same(changes.restart, ['dns.listen', 'dns.tcp', 'store.batchMs'])
  const running = keepRunning(next, base, changes.restart)
  t.same(running.dns.listen, base.dns.listen, 'restart-only slices keep their running values')
  t.same(running.dns.tcp, base.dns.tcp)
  t.equal(running.store.batchMs, base.store.batchMs)
  t.equal(running.store.logQueries, 'all', 'live slices take the new value')
  t.same(running.dns.allowClients, next.dns.allowClients)
})

t.test('a reload that changes dns.listen needs a restart and the firewall keeps redirecting to the bound port', async t => {
  const bound = await freePort()
  const d = await startApiDaemon({ dns: { listen: [`127.0.0.1:${bound}`] }, firewall: { lanInterfaces: ['lan0'] } })
  t.teardown(() => d.close())
  const cfg = JSON.parse(readFileSync(d.configFile, 'utf8'))
  const other = await freePort()
  cfg.dns.listen = [`127.0.0.1:${other}`]
  writeFileSync(d.configFile, JSON.stringify(cfg))
  const r = d.daemon.reloadConfig(SIGNAL)
  t.same(r.needsRestart, ['dns.listen'])
  t.equal(r.status, 'unchanged', 'nothing else changed, so nothing was applied')
  t.same(d.daemon.config.dns.listen.map(l => l.port), [bound], 'the config in force keeps the address the sockets were bound with')
  const script = firewallScript(d.daemon.config, d.daemon.policyBuild, 'test')
  t.match(script, new RegExp(`redirect to :${bound}\\b`), 'LAN DNS still goes to the port egressd listens on')
  t.notMatch(script, new RegExp(`:${other}\\b`), 'not to the new port, where nothing listens until a restart')
})

t.test('an unchanged reload says so; token changes are audited by name', async t => {
  const d = await startApiDaemon()
  t.teardown(() => d.close())
  const same = d.daemon.reloadConfig(SIGNAL)
  t.match(same, { status: 'unchanged', applied: [], needsRestart: [], tokens: { added: [], removed: [], changed: [] } })
  t.equal(d.daemon.policy.engine.generation, 1, 'the policy was not swapped')
  t.equal(d.daemon.reloads.counts.signal.unchanged, 1)

  const cfg = JSON.parse(readFileSync(d.configFile, 'utf8'))
  cfg.api.tokens = [
    ...cfg.api.tokens.filter((x: { name: string }) => x.name !== 'viewer-token'),
    { name: 'soc-wall', role: 'viewer', sha256: sha('x'.repeat(32)) }
  ]
  cfg.api.tokens.find((x: { name: string }) => x.name === 'metrics-token').role = 'viewer'
  writeFileSync(d.configFile, JSON.stringify(cfg))
  const r = await call(d.base, 'POST', '/api/v1/reload', { token: TOKENS.admin })
  t.equal(r.status, 200, r.text)
  t.match(r.json, { status: 'applied', applied: ['api.tokens'] })
  const audit = await call(d.base, 'GET', '/api/v1/audit?action=config.reload', { token: TOKENS.admin })
  t.match(audit.json.entries[0], {
    actor: 'admin-token',
    after: { status: 'applied', tokens: { added: ['soc-wall'], removed: ['viewer-token'], changed: ['metrics-token'] } }
  })
  t.equal(audit.json.entries.length, 2, 'one audit row per reload (the API route does not write a second one)')
  t.match(audit.json.entries[1], { actor: 'signal', after: { status: 'unchanged' } })
})

t.test('SIGHUP to egressd start: the reload is audited with actor signal, a rejected one too', async t => {
  const dir = tempDir('egressd-sighup-')
  const admin = randomBytes(24).toString('base64url')
  const [dnsPort, apiPort] = [await freePort(), await freePort()]
  const file = join(dir, 'egressd.json')
  const cfg = {
    dns: { listen: [`127.0.0.1:${dnsPort}`] },
    api: { listen: `127.0.0.1:${apiPort}`, tokens: [{ name: 'ops', role: 'admin', sha256: sha(admin) }] },
    upstreams: ['udp://127.0.0.1:9'],
    dataDir: dir
  }
  writeFileSync(file, JSON.stringify(cfg))
  const child = spawn(process.execPath, [resolve(import.meta.dirname, '..', 'dist', 'cli.js'), 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { out += String(d) })
  const exited = new Promise(resolve => child.once('exit', resolve))
  t.teardown(async () => { child.kill('SIGTERM'); await exited })
  const waitFor = async (re: RegExp): Promise<void> => {
    for (const until = Date.now() + 10_000; !re.test(out) && Date.now() < until;) await new Promise(resolve => setTimeout(resolve, 25))
  }
  await waitFor(/egressd started/)
  t.match(out, /egressd started/)

  writeFileSync(file, JSON.stringify({ ...cfg, cache: { maxEntries: 777 } }))
  child.kill('SIGHUP')
  await waitFor(/"msg":"config reloaded"/)
  writeFileSync(file, '{"dns": {"listen": ["nope"]}}')
  child.kill('SIGHUP')
  await waitFor(/reload rejected/)
  const base = `http://127.0.0.1:${apiPort}`
  const audit = await call(base, 'GET', '/api/v1/audit', { token: admin })
  t.equal(audit.status, 200, audit.text)
  t.match(audit.json.entries, [
    { action: 'config.reload.rejected', actor: 'signal', after: { issues: [/^dns\.listen\.0: /] } },
    { action: 'config.reload', actor: 'signal', after: { status: 'applied', applied: ['cache'] } }
  ])
})
