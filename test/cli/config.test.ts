// Which config the built `egressd` command reads (src/cli/config.ts, src/config/discover.ts):
// --config, else EGRESSD_CONFIG, else <etc>/egressd.yaml when it exists, else the built-in defaults,
// named on stderr with the data dir. <etc> is /etc/egressd; every run here points EGRESSD_ETC_DIR
// at a temp dir, so the real /etc never matters. Needs dist/ (npx tsc -p tsconfig.json).

import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { dig } from '../helpers/dig.js'
import { aAnswer, startFakeUpstream } from '../helpers/fake-upstream.js'
import { freePort } from '../helpers/ports.js'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const root = tempDir('egressd-cli-config-')
const cwd = join(root, 'cwd')
const etc = join(root, 'etc')
mkdirSync(cwd)
mkdirSync(etc)

/** A process environment without the variables under test, plus `extra`. */
function env (extra: Record<string, string>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, EGRESSD_ETC_DIR: etc }
  delete e.EGRESSD_CONFIG
  delete e.EGRESSD_DATA_DIR
  return { ...e, ...extra }
}

const run = (args: string[], extra: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, cwd, env: env(extra) })

/** A config that blocks `name` by an inline rule, with its own data dir (relative: next to the file). */
function config (file: string, name: string): string {
  writeFileSync(file, `upstreams: ["udp://127.0.0.1:9"]\ndataDir: data-${name}\nblocklists: { rules: { block: [${name}.example] } }\n`)
  return file
}

const flagFile = config(join(root, 'flag.yaml'), 'flag')
const envFile = config(join(root, 'env.yaml'), 'env')
const systemFile = join(etc, 'egressd.yaml')

/** Runs `query NAME.example`: exit 3 (blocked) only when the config whose inline rule names it was used. */
function uses (name: string, args: string[], extra: Record<string, string> = {}): { blocked: boolean, stderr: string } {
  const r = run(['query', `${name}.example`, ...args], extra)
  if (r.status !== 3) t.equal(r.status, 0, r.stderr)
  return { blocked: r.status === 3, stderr: r.stderr }
}

t.test('--config wins over EGRESSD_CONFIG and the system file', async t => {
  config(systemFile, 'system')
  const r = uses('flag', ['--config', flagFile], { EGRESSD_CONFIG: envFile })
  t.ok(r.blocked, 'the --config file was read')
  t.equal(r.stderr, `egressd: config ${flagFile}, data ${join(root, 'data-flag')}\n`, 'named on stderr, data dir next to the file')
  const rel = run(['query', 'flag.example', '-c', '../flag.yaml'])
  t.equal(rel.status, 3, 'a relative --config is relative to the working directory')
  t.match(rel.stderr, `config ${flagFile},`)
})

t.test('EGRESSD_CONFIG wins over the system file', async t => {
  config(systemFile, 'system')
  const r = uses('env', [], { EGRESSD_CONFIG: envFile })
  t.ok(r.blocked, 'the EGRESSD_CONFIG file was read')
  t.equal(r.stderr, `egressd: config ${envFile} (EGRESSD_CONFIG), data ${join(root, 'data-env')}\n`)
  const missing = run(['query', 'x.example'], { EGRESSD_CONFIG: join(root, 'nope.yaml') })
  t.equal(missing.status, 1, 'a file named by EGRESSD_CONFIG must exist')
  t.match(missing.stderr, /cannot read .*nope\.yaml: ENOENT/)
  t.match(missing.stderr, `config ${join(root, 'nope.yaml')} (EGRESSD_CONFIG)\n`)
})

t.test('the system file when it exists, with EGRESSD_DATA_DIR named', async t => {
  config(systemFile, 'system')
  const r = uses('system', [], { EGRESSD_CONFIG: '' })
  t.ok(r.blocked, 'the system file was read; an empty EGRESSD_CONFIG counts as unset')
  t.equal(r.stderr, `egressd: config ${systemFile}, data ${join(etc, 'data-system')}\n`)
  const d = run(['query', 'system.example'], { EGRESSD_DATA_DIR: '/var/lib/egressd-test' })
  t.equal(d.stderr, `egressd: config ${systemFile}, data /var/lib/egressd-test (EGRESSD_DATA_DIR)\n`)
})

t.test('the built-in defaults when there is no config anywhere', async t => {
  const empty = join(root, 'empty-etc')
  mkdirSync(empty)
  const r = run(['query', 'system.example'], { EGRESSD_ETC_DIR: empty })
  // The defaults take their upstreams from /etc/resolv.conf; without a nameserver there they do not
  // load, and the line names the config alone.
  t.match(r.stderr, `egressd: config none (built-in defaults: no --config, no EGRESSD_CONFIG, no ${join(empty, 'egressd.yaml')})`)
  if (r.status === 0) {
    t.match(r.stderr, `, data ${join(cwd, 'var')}\n`, 'the default data dir is relative to the working directory')
    t.match(JSON.parse(r.stdout), { verdict: 'allow' }, 'no inline rule from any of the files')
  } else {
    t.match(r.stderr, /no upstreams configured/)
  }
})

t.test('check-config, export, logs and lists use the same discovery', async t => {
  config(systemFile, 'system')
  const check = run(['check-config'])
  t.equal(check.status, 0, check.stdout + check.stderr)
  t.match(check.stdout, `${systemFile}: ok`)
  t.match(check.stderr, `egressd: config ${systemFile}, data`)
  const both = run(['check-config', flagFile, '--config', envFile])
  t.equal(both.status, 2)
  t.match(both.stderr, /one FILE \(or --config FILE\)/)
  const nft = run(['export', 'nftables'], { EGRESSD_CONFIG: envFile })
  t.equal(nft.status, 0, nft.stderr)
  t.match(nft.stdout, `egressd export nftables (${envFile})`)
  const logs = run(['logs', 'stats'])
  t.equal(logs.status, 1)
  t.match(logs.stderr, `egressd: config ${systemFile}, data ${join(etc, 'data-system')}\n`)
  t.match(logs.stderr, `no block log at ${join(etc, 'data-system', 'egressd.sqlite')}`)
  const lists = run(['lists', 'update'], { EGRESSD_CONFIG: envFile })
  t.equal(lists.status, 0, lists.stderr)
  t.match(lists.stderr, `egressd: config ${envFile} (EGRESSD_CONFIG)`)
  t.match(lists.stderr, 'no URL sources in the config')
})

t.test('start: the system file is found, named, and re-read on SIGHUP', async t => {
  const upstream = await startFakeUpstream((q, _m, reply) => { reply(aAnswer(q, '192.0.2.40')) })
  t.teardown(() => upstream.close())
  const startEtc = join(root, 'start-etc')
  mkdirSync(startEtc)
  const port = await freePort()
  const file = join(startEtc, 'egressd.yaml')
  const write = (block: string): void => writeFileSync(file,
    `dns: { listen: ["127.0.0.1:${port}"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["${upstream.url}"]\ndataDir: state\n` +
    `blocklists: { rules: { block: [${block}] } }\n`)
  write('first.example')
  const child = spawn(process.execPath, [CLI, 'start'], { cwd, env: env({ EGRESSD_ETC_DIR: startEtc }), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  let err = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { err += String(d) })
  const until = async (cond: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !cond() && child.exitCode === null; i++) await new Promise(resolve => setTimeout(resolve, 50))
  }
  await until(() => out.includes('egressd started'))
  t.match(out, 'egressd started', err)
  t.equal(err, `egressd: config ${file}, data ${join(startEtc, 'state')}\n`)
  const at = ['@127.0.0.1', '-p', String(port)]
  t.equal((await dig([...at, 'first.example'])).status, 'NXDOMAIN')
  t.same((await dig([...at, 'second.example'])).answers.map(a => a.data), ['192.0.2.40'])
  write('second.example')
  child.kill('SIGHUP')
  let status = ''
  for (const end = Date.now() + 5000; status !== 'NXDOMAIN' && Date.now() < end;) {
    await new Promise(resolve => setTimeout(resolve, 100))
    status = (await dig([...at, 'second.example'])).status
  }
  t.equal(status, 'NXDOMAIN', 'SIGHUP re-read the discovered file')
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
})
