// check-config's exit codes and its printing of every file's problems once, query's verdict from the
// discovered config and data dir (stored custom rules included), tables on a terminal and JSON in a
// pipe, and the daemon logging each skipped list line once at start-up. Needs dist/.

import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { openDatabase } from '../../src/store/db.js'
import { POLICY_MIGRATIONS } from '../../src/store/migrations.js'
import { RuleStore } from '../../src/store/rules.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const dir = tempDir('egressd-cli-policy-')
const etc = tempDir('egressd-cli-policy-etc-')

const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, EGRESSD_ETC_DIR: etc, ...extra }
  if (extra.EGRESSD_CONFIG === undefined) delete e.EGRESSD_CONFIG
  return e
}
const run = (args: string[], extra: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: env(extra) })

function list (name: string, lines: string[]): string {
  writeFileSync(join(dir, name), lines.join('\n') + '\n')
  return name
}

function configWith (name: string, sources: Array<{ name: string, path?: string, url?: string }>): string {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify({ upstreams: ['udp://127.0.0.1:9'], dataDir: `data-${name}`, blocklists: { sources, update: { allowHosts: ['127.0.0.1'] } } }))
  return file
}

t.test('check-config: 0 when clean, 3 when list lines were skipped (with the count), 1 when invalid', async t => {
  const clean = run(['check-config', configWith('clean.json', [{ name: 'good', path: list('good.txt', ['a.example', 'b.example']) }])])
  t.equal(clean.status, 0, clean.stdout + clean.stderr)
  t.match(clean.stdout, /: ok \(/)
  t.notMatch(clean.stdout, /warning/)

  const skipped = run(['check-config', configWith('skipped.json', [{ name: 'mixed', path: list('mixed.txt', ['ok.example', 'bad name', 'also-bad!']) }])])
  t.equal(skipped.status, 3, 'valid, but not clean')
  const warnings = skipped.stdout.split('\n').filter(l => l.startsWith('warning: '))
  t.same(warnings, [
    `warning: ${join(dir, 'mixed.txt')}:2: not a hostname: contains ' '`,
    `warning: ${join(dir, 'mixed.txt')}:3: not a hostname: contains '!'`
  ], 'each skipped line once, with its file and line (the path is relative to the config file)')
  t.match(skipped.stdout, /skipped\.json: valid, but 2 list line\(s\) skipped \(/)

  // A URL source without a downloaded copy yet is normal before the daemon's first download.
  const url = run(['check-config', configWith('url.json', [{ name: 'central', url: 'https://127.0.0.1:1/l.txt' }])])
  t.equal(url.status, 0, url.stdout)
  t.match(url.stdout, /has no downloaded copy yet/)
  t.match(url.stderr, /note: list source central: no downloaded copy/)

  const invalid = run(['check-config', configWith('invalid.json', [{ name: 'x' }])])
  t.equal(invalid.status, 1)
  t.match(invalid.stdout, /^blocklists\.sources\.0: give exactly one of "path" or "url"$/m)
})

t.test('check-config: when one list has no valid entry, every other file\'s problems are printed too, once', async t => {
  const file = configWith('broken.json', [
    { name: 'mixed', path: list('mixed2.txt', ['ok.example', 'bad name']) },
    { name: 'empty', path: list('empty.txt', ['not-valid!', 'nor-this!']) }
  ])
  const r = run(['check-config', file])
  t.equal(r.status, 1)
  const lines = r.stdout.trim().split('\n')
  t.same(lines.filter(l => l.includes('mixed2.txt')), [`warning: ${join(dir, 'mixed2.txt')}:2: not a hostname: contains ' '`], 'the other file\'s warning, once')
  t.same(lines.filter(l => l.includes('empty.txt:')), [
    `warning: ${join(dir, 'empty.txt')}:1: not a hostname: contains '!'`,
    `warning: ${join(dir, 'empty.txt')}:2: not a hostname: contains '!'`,
    `${join(dir, 'empty.txt')}: no valid entry (2 lines, 2 skipped)`
  ])
  t.equal(new Set(lines).size, lines.length, 'no line twice')
  t.match(r.stderr, /broken\.json: 1 error\(s\) in the blocklists, 3 warning\(s\)/)
})

t.test('query: the discovered config and its data dir decide, stored custom rules included', async t => {
  const file = join(etc, 'egressd.yaml')
  writeFileSync(file, 'upstreams: ["udp://127.0.0.1:9"]\ndataDir: state\nblocklists:\n  groups: [{ name: soc, clients: [10.20.0.0/24], exempt: true }]\n')
  const db = openDatabase(join(etc, 'state', 'policy.sqlite'), { migrations: POLICY_MIGRATIONS })
  new RuleStore(db).add({ kind: 'block', rule: 'stored-rule.example', comment: '', createdAt: Date.now(), createdBy: 'admin', expiresAt: null })
  db.close()
  const stored = run(['query', 'www.stored-rule.example'])
  t.equal(stored.status, 3, stored.stderr)
  t.match(JSON.parse(stored.stdout), { verdict: 'block', category: 'custom', rule: 'stored-rule.example' })
  t.equal(stored.stderr, `egressd: config ${file}, data ${join(etc, 'state')}\n`)
  const exempt = run(['query', 'web.telegram.org', '--client', '10.20.0.9'])
  t.equal(exempt.status, 0)
  t.match(JSON.parse(exempt.stdout), { verdict: 'allow', group: 'soc' }, 'the exempt group of the system config')
})

t.test('query output: JSON in a pipe or with --json, a table with --table or on a terminal', async t => {
  const file = configWith('out.json', [])
  const piped = run(['query', 'web.telegram.org', '--config', file])
  t.match(JSON.parse(piped.stdout), { verdict: 'block', category: 'telegram' })
  const table = run(['query', 'web.telegram.org', '--config', file, '--table'])
  t.equal(table.status, 3)
  t.match(table.stdout, /^name +web\.telegram\.org\ntype +A\nclient +127\.0\.0\.1\ngroup +default\nverdict +block\naction +nxdomain\ncategory +telegram\n/)
  const both = run(['query', 'x.example', '--config', file, '--json', '--table'])
  t.equal(both.status, 2)
  t.match(both.stderr, /--json or --table, not both/)
  // A real terminal: script(1) gives the command a pseudo-terminal as stdout.
  const script = requireTool('script')
  const cmd = [process.execPath, CLI, 'query', 'web.telegram.org', '--config', file].map(a => `'${a}'`).join(' ')
  const tty = spawnSync(script, ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 20_000, env: env() })
  t.match(tty.stdout, /verdict +block\r?\n/, 'a table on a terminal')
  t.notMatch(tty.stdout, /"verdict"/)
  const ttyJson = spawnSync(script, ['-qec', `${cmd} --json`, '/dev/null'], { encoding: 'utf8', timeout: 20_000, env: env() })
  t.match(ttyJson.stdout, /"verdict": "block"/, '--json on a terminal')
})

t.test('the daemon logs each skipped list line once at start-up, stored custom rules or not', async t => {
  const dataDir = tempDir('egressd-cli-policy-data-')
  const db = openDatabase(join(dataDir, 'policy.sqlite'), { migrations: POLICY_MIGRATIONS })
  new RuleStore(db).add({ kind: 'block', rule: 'stored.example', comment: '', createdAt: Date.now(), createdBy: 'admin', expiresAt: null })
  db.close()
  const file = join(dir, 'daemon.yaml')
  writeFileSync(file, `dns: { listen: ["127.0.0.1:0"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["udp://127.0.0.1:9"]\ndataDir: ${dataDir}\n` +
    `blocklists: { sources: [{ name: mixed, path: ${list('daemon-list.txt', ['ok.example', 'bad name'])} }] }\n`)
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { out += String(d) })
  for (let i = 0; i < 200 && !out.includes('egressd started') && child.exitCode === null; i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.match(out, 'egressd started')
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGTERM')
  t.equal(await exited, 0)
  t.equal(out.split('\n').filter(l => l.includes('daemon-list.txt:2: not a hostname')).length, 1, 'the warning once')
})

t.test('check-config: the rule guard refuses a too-broad config rule (exit 1, naming its path) and skips a too-broad extra-list line (exit 3, FILE:LINE)', async t => {
  const broadRule = join(dir, 'broad-rule.json')
  writeFileSync(broadRule, JSON.stringify({ upstreams: ['udp://127.0.0.1:9'], dataDir: 'data-broad', blocklists: { rules: { block: ['ok.example', 'com'] } } }))
  const refused = run(['check-config', broadRule])
  t.equal(refused.status, 1, refused.stderr)
  t.match(refused.stdout, /config blocklists\.rules\.block\.1: 'com' would block every name under the top-level domain com/)
  t.match(refused.stdout, /list it under blocklists\.guard\.force/)

  const forced = join(dir, 'forced-rule.json')
  writeFileSync(forced, JSON.stringify({ upstreams: ['udp://127.0.0.1:9'], dataDir: 'data-forced', blocklists: { rules: { block: ['com'] }, guard: { force: ['com'] } } }))
  const ok = run(['check-config', forced])
  t.equal(ok.status, 0, 'a forced rule is accepted: ' + ok.stderr)

  const skipped = run(['check-config', configWith('broad-list.json', [{ name: 'broad', path: list('broad.txt', ['fine.example', '0.0.0.0/0', 'google.com']) }])])
  t.equal(skipped.status, 3, skipped.stderr)
  t.match(skipped.stdout + skipped.stderr, /broad\.txt:2: skipped: '0\.0\.0\.0\/0'/)
  t.match(skipped.stdout + skipped.stderr, /broad\.txt:3: skipped: 'google\.com' would block/)
})

t.test('query ADDRESS: the firewall\'s coverage from the config and the lists (no daemon)', async t => {
  const cfg = (name: string, extra: Record<string, unknown>): string => {
    const file = join(dir, name)
    writeFileSync(file, JSON.stringify({ upstreams: ['udp://127.0.0.1:9'], dataDir: `data-${name}`, ...extra }))
    return file
  }
  const synced = cfg('fw-sync.json', { firewall: { sync: true, sharedRanges: ['whatsapp'] } })
  const shared = run(['query', '31.13.24.5', '--config', synced])
  t.equal(shared.status, 3, shared.stderr)
  const s = JSON.parse(shared.stdout)
  t.match(s, { address: '31.13.24.5', verdict: 'block', firewall: { sync: true, notes: [], covered: true, ranges: [], learned: [], held: [] } }, 'sync on: no export note')
  t.match(s.firewall.shared, [{ category: 'whatsapp', set: 'whatsapp_shared_v4', range: '31.13.24.0/21', cutsOff: ['Facebook', 'Instagram', 'Messenger', 'Threads'] }], 'the opted-in shared ranges and what they cut off')
  const table = run(['query', '149.154.167.51', '--config', synced, '--table'])
  t.equal(table.status, 3)
  t.match(table.stdout, /^verdict +block\nfirewall +sync on \(table inet egressd\): in a rejected set\nranges +telegram_v4 149\.154\.160\.0\/20 \(telegram, \S+\/telegram\/cidrs\.txt:13\)\n/m)

  // Not shared: the same address is in no set.
  const off = run(['query', '31.13.24.5', '--config', cfg('fw-off.json', {})])
  t.equal(off.status, 0)
  t.match(JSON.parse(off.stdout), { verdict: 'allow', firewall: { sync: false, covered: false, shared: [], notes: [/export it with `egressd export nftables`/] } })

  // An allow rule and an exempt client are accepted before any reject.
  const allowed = run(['query', '149.154.167.51', '--config', cfg('fw-allow.json', { blocklists: { rules: { allow: ['149.154.167.0/24'] } } })])
  t.equal(allowed.status, 0, allowed.stderr)
  t.match(JSON.parse(allowed.stdout), { verdict: 'allow', firewall: { covered: true, allowRule: '149.154.167.0/24', ranges: [{ set: 'telegram_v4' }], notes: [/export/, /an allow rule \(149\.154\.167\.0\/24, set allow_v4\) accepts/] } })
  const exempt = run(['query', '149.154.167.51', '--client', '10.20.0.9', '--config', cfg('fw-exempt.json', { blocklists: { groups: [{ name: 'soc', clients: ['10.20.0.0/24'], exempt: true }] } })])
  t.equal(exempt.status, 0)
  t.match(JSON.parse(exempt.stdout), { group: 'soc', verdict: 'allow', firewall: { covered: true, notes: [/export/, /exempt group/] } })

  // The never-block ranges (from the config), and learning off.
  const never = JSON.parse(run(['query', '203.0.113.9', '--config', cfg('fw-never.json', { learning: { neverBlock: ['203.0.113.0/24'] } })]).stdout)
  t.match(never.firewall.guard, { reason: 'never-block', range: '203.0.113.0/24 (special-purpose)' })
  const custom = JSON.parse(run(['query', '11.0.0.9', '--config', cfg('fw-never2.json', { learning: { neverBlock: ['11.0.0.0/24'] } })]).stdout)
  t.match(custom.firewall.guard, { reason: 'never-block', range: '11.0.0.0/24 (learning.neverBlock)' })
  const noLearning = JSON.parse(run(['query', '10.1.1.1', '--config', cfg('fw-nolearn.json', { learning: { enabled: false } })]).stdout)
  t.match(noLearning.firewall, { learning: false, learned: [], held: [] })
  t.notOk('guard' in noLearning.firewall)

  const badType = run(['query', '149.154.167.51', '--type', 'AAAA', '--config', synced])
  t.equal(badType.status, 2)
  t.match(badType.stderr, /--type is for names/)
})
