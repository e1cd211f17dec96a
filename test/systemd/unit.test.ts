// The systemd unit and the install scripts, checked without a running systemd: systemd-analyze
// verify (exit 0, no warning about the unit), the hardening that must be there, the exposure score
// of systemd-analyze security --offline (recorded below; lower is better), bash -n on the scripts,
// and install.sh / uninstall.sh --dry-run --prefix. A missing systemd-analyze is a failure naming
// the Debian package, never a skip.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tempDir } from '../helpers/tmp.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const UNIT = join(ROOT, 'systemd', 'egressd.service')
const INSTALL = join(ROOT, 'systemd', 'install.sh')
const UNINSTALL = join(ROOT, 'systemd', 'uninstall.sh')
// systemd-analyze security --offline=true, systemd 252: "1.7 OK". Raise only with a reason.
// 1.6 -> 1.7: setpriority is allowed again out of @resources (store.threadNice: the block log's
// threads lower their own priority so that DNS comes first).
const MAX_EXPOSURE = 1.7

interface Run { status: number | null, stdout: string, stderr: string }

function run (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000, env: { ...process.env, SYSTEMD_COLORS: '0', ...env } })
  if (r.error !== undefined) throw r.error
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function systemdAnalyze (): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin']) {
    if (existsSync(join(dir, 'systemd-analyze'))) return join(dir, 'systemd-analyze')
  }
  throw new Error('systemd-analyze is not installed: apt-get install systemd (the Debian package `systemd` provides it)')
}

// The unit with ExecStart pointing at files that exist here (this Node, this checkout's build):
// verify checks that the executable exists, and /usr/bin/node need not be this machine's Node.
const dir = tempDir('egressd-unit-')
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
const unitText = readFileSync(UNIT, 'utf8')
const copy = join(dir, 'egressd.service')
writeFileSync(copy, unitText.replace(
  /^ExecStart=\/usr\/bin\/node \/opt\/egressd\/dist\/cli\.js /m,
  `ExecStart=${process.execPath} ${join(ROOT, 'dist', 'cli.js')} `
))

/** Directives of the unit: "Section.Key" -> every value, in order. */
function directives (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const s = /^\[(\w+)\]$/.exec(line)
    if (s !== null) { section = s[1]; continue }
    const eq = line.indexOf('=')
    if (eq < 0) throw new Error(`not a directive: ${line}`)
    const key = `${section}.${line.slice(0, eq)}`
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)])
  }
  return out
}

t.test('systemd-analyze verify passes with no warning about the unit', async t => {
  const analyze = systemdAnalyze()
  const r = run(analyze, ['verify', '--man=no', copy])
  t.equal(r.status, 0, r.stderr)
  const output = (r.stdout + r.stderr).split('\n').filter(l => l.includes('egressd.service'))
  t.same(output, [], 'no warning about egressd.service (unknown keys, bad values)')
  t.ok(readFileSync(copy, 'utf8').includes(`ExecStart=${process.execPath} `), 'the verified copy runs this Node')
})

t.test('the unit has the directives the deployment relies on', async t => {
  const d = directives(unitText)
  const one = (key: string): string | undefined => {
    const v = d.get(key)
    t.equal(v?.length, 1, `${key} set once`)
    return v?.[0]
  }
  t.equal(one('Service.ExecStart'), '/usr/bin/node /opt/egressd/dist/cli.js start --config /etc/egressd/egressd.yaml')
  t.equal(one('Service.WorkingDirectory'), '/opt/egressd')
  t.equal(one('Service.DynamicUser'), 'yes')
  t.equal(one('Service.AmbientCapabilities'), 'CAP_NET_BIND_SERVICE', 'ambient: port 53 only')
  t.equal(one('Service.CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE', 'bounding set: nothing else')
  t.equal(one('Service.NoNewPrivileges'), 'yes')
  t.equal(one('Service.ProtectSystem'), 'strict')
  t.equal(one('Service.ProtectHome'), 'yes')
  t.equal(one('Service.PrivateUsers'), 'no', 'a user namespace would take CAP_NET_BIND_SERVICE away from the host network')
  t.equal(one('Service.MemoryDenyWriteExecute'), 'no', 'V8 JIT needs W->X pages')
  t.ok(d.get('Service.SystemCallFilter')?.includes('@system-service'), 'SystemCallFilter=@system-service')
  const filters = d.get('Service.SystemCallFilter') ?? []
  t.ok(filters.indexOf('setpriority') > filters.indexOf('~@privileged @resources'), 'setpriority allowed again after @resources is taken away (store.threadNice)')
  t.same(one('Service.RestrictAddressFamilies')?.split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_UNIX'])
  t.equal(one('Service.Type'), 'notify')
  t.equal(one('Service.NotifyAccess'), 'all', 'READY/WATCHDOG come from the systemd-notify child')
  t.equal(one('Service.WatchdogSec'), '30s')
  t.match(one('Service.ExecReload'), /^\/bin\/kill -HUP \$MAINPID$/)
  t.equal(one('Service.Restart'), 'on-failure')
  t.equal(one('Service.StateDirectory'), 'egressd')
  t.equal(one('Service.ConfigurationDirectory'), 'egressd')
  t.ok(d.get('Service.Environment')?.includes('EGRESSD_DATA_DIR=%S/egressd'), 'EGRESSD_DATA_DIR=%S/egressd')
  t.equal(one('Service.UMask'), '0077')
  t.notOk(d.has('Service.IPAddressDeny') || d.has('Service.IPAddressAllow'), 'no IP allow/deny list: upstreams are arbitrary')
  t.match(unitText, /CAP_NET_ADMIN/, 'the comment on what nftables sync needs')
})

t.test(`systemd-analyze security --offline: overall exposure <= ${MAX_EXPOSURE}`, async t => {
  const analyze = systemdAnalyze()
  const r = run(analyze, ['security', '--offline=true', '--no-pager', copy])
  t.equal(r.status, 0, r.stderr)
  const m = /Overall exposure level for egressd\.service: (\d+\.\d+) ([A-Z]+)/.exec(r.stdout)
  if (m === null) throw new Error(`no overall exposure line in:\n${r.stdout}\n${r.stderr}`)
  const score = Number(m[1])
  t.ok(score <= MAX_EXPOSURE, `exposure ${score} ${m[2]} (max ${MAX_EXPOSURE})`)
  t.ok(['OK', 'SAFE', 'PERFECT'].includes(m[2]), `band ${m[2]}`)
  // The same bound through systemd-analyze's own gate (threshold in tenths).
  const gate = run(analyze, ['security', '--offline=true', `--threshold=${Math.round(MAX_EXPOSURE * 10)}`, copy])
  t.equal(gate.status, 0, 'within --threshold')
})

t.test('install.sh and uninstall.sh parse (bash -n)', async t => {
  for (const f of [INSTALL, UNINSTALL]) {
    const r = run('bash', ['-n', f])
    t.equal(r.status, 0, `${f}: ${r.stderr}`)
  }
})

t.test('install.sh --dry-run --prefix shows every step and changes nothing', async t => {
  const prefix = mkdtempSync(join(dir, 'prefix-'))
  const r = run('bash', [INSTALL, '--dry-run', '--prefix', prefix])
  t.equal(r.status, 0, r.stderr)
  const out = r.stdout
  t.match(out, /checking Node\.js >= 20/)
  t.match(out, /npm ci --no-audit/)
  t.match(out, /npm run build/)
  t.match(out, `cp -R ${ROOT}/dist ${ROOT}/blocklists ${ROOT}/sources ${ROOT}/package.json ${ROOT}/package-lock.json ${prefix}/opt/egressd.new/`)
  t.match(out, /npm ci --omit=dev/)
  t.match(out, `install -m 0644 ${ROOT}/config/egressd.example.yaml ${prefix}/etc/egressd/egressd.yaml`)
  t.match(out, `check-config ${prefix}/etc/egressd/egressd.yaml`)
  t.match(out, `mv ${prefix}/opt/egressd.new ${prefix}/opt/egressd`)
  t.match(out, `install -m 0644 ${ROOT}/systemd/egressd.service ${prefix}/etc/systemd/system/egressd.service`)
  t.match(out, `systemctl --root=${prefix} enable egressd.service`)
  t.same(readdirSync(prefix), [], 'nothing written under the prefix')
})

t.test('install.sh --dry-run on / shows the systemctl steps', async t => {
  const r = run('bash', [INSTALL, '--dry-run'], { EGRESSD_SYSTEMD_RUN_DIR: join(dir, 'no-systemd') })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /warning: a real run would stop here: systemd is not running/)
  t.match(r.stdout, '+ install -m 0644 ' + join(ROOT, 'systemd', 'egressd.service') + ' /etc/systemd/system/egressd.service')
  t.match(r.stdout, '+ systemctl daemon-reload')
  t.match(r.stdout, '+ systemctl enable --now egressd.service')
})

t.test('install.sh without systemd says so and stops before changing anything', async t => {
  const r = run('bash', [INSTALL], { EGRESSD_SYSTEMD_RUN_DIR: join(dir, 'no-systemd') })
  t.equal(r.status, 1)
  if (process.getuid?.() === 0) {
    t.match(r.stderr, /systemd is not running on this machine/)
    t.match(r.stderr, /--no-start/)
  } else {
    t.match(r.stderr, /must run as root/)
  }
  t.notMatch(r.stdout, /^\+ /m, 'no command was run')
})

t.test('uninstall.sh --dry-run --prefix --purge lists the removals', async t => {
  const prefix = mkdtempSync(join(dir, 'prefix-'))
  const r = run('bash', [UNINSTALL, '--dry-run', '--purge', '--prefix', prefix])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, `rm -f ${prefix}/etc/systemd/system/egressd.service`)
  t.match(r.stdout, `rm -rf ${prefix}/opt/egressd`)
  t.match(r.stdout, `${prefix}/etc/egressd ${prefix}/var/lib/egressd ${prefix}/var/lib/private/egressd`)
  const keep = run('bash', [UNINSTALL, '--dry-run', '--prefix', prefix])
  t.equal(keep.status, 0, keep.stderr)
  t.match(keep.stdout, /kept: .*\/etc\/egressd/)
  t.notMatch(keep.stdout, /rm -rf .*\/etc\/egressd/)
})
