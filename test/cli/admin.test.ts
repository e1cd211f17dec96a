// The admin commands of the built `egressd` (src/cli/admin.ts, api-client.ts) against a real daemon:
// rules list/add/remove (and the rule reaching DNS), categories, reload (applied and rejected),
// audit; the token from EGRESSD_TOKEN, --token-file or <etc>/cli.token; the URL from --api or from
// api.listen of the config; clear errors for a daemon that is not running, 401, 403 and 4xx.
// Needs dist/ (npx tsc -p tsconfig.json).

import t from 'tap'
import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { TOKENS, startApiDaemon } from '../api/helpers.js'
import { dig } from '../helpers/dig.js'
import { freePort } from '../helpers/ports.js'
import { tempDir } from '../helpers/tmp.js'
import { makeTestPki } from '../helpers/tls-fronts.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const etc = tempDir('egressd-cli-admin-etc-')

interface Run { status: number | null, stdout: string, stderr: string }

/** The CLI as a child process (asynchronously: the daemon runs in this process). */
function cli (args: string[], extra: Record<string, string> = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, EGRESSD_ETC_DIR: etc, ...extra }
  if (extra.EGRESSD_TOKEN === undefined) delete env.EGRESSD_TOKEN
  if (extra.EGRESSD_CONFIG === undefined) delete env.EGRESSD_CONFIG
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

t.test('rules, categories, reload and audit through the API', async t => {
  const d = await startApiDaemon()
  t.teardown(() => d.close())
  const admin = { EGRESSD_TOKEN: TOKENS.admin }
  const api = ['--api', d.base]
  const at = ['@127.0.0.1', '-p', String(d.dnsPort)]

  const add = await cli(['rules', 'add', 'chat.example.org', '--comment', 'from the CLI', '--ttl', '2h', ...api, '--table'], admin)
  t.equal(add.status, 0, add.stderr)
  t.match(add.stdout, /^added block chat\.example\.org \(rule (\d+), expires \d{4}-.*: from the CLI\)\n$/)
  const id = /rule (\d+)/.exec(add.stdout)?.[1] as string
  t.equal((await dig([...at, 'www.chat.example.org'])).status, 'NXDOMAIN', 'the rule reaches DNS at once')

  const list = await cli(['rules', 'list', ...api], admin)
  t.equal(list.status, 0, list.stderr)
  t.match(JSON.parse(list.stdout), { rules: [{ id: Number(id), kind: 'block', rule: 'chat.example.org', comment: 'from the CLI', createdBy: 'admin-token' }] }, 'JSON when stdout is not a terminal')
  const table = await cli(['rules', ...api, '--table'], { EGRESSD_TOKEN: TOKENS.viewer })
  t.equal(table.status, 0, 'a viewer may list; list is the default subcommand')
  t.match(table.stdout, /^ID +KIND +RULE +TYPE +EXPIRES +CREATED +BY +COMMENT\n/)
  t.match(table.stdout, new RegExp(`^ *${id} +block +chat\\.example\\.org +domain +\\d{4}-\\S+ +\\S+ +admin-token +from the CLI$`, 'm'))

  const dup = await cli(['rules', 'add', 'chat.example.org', ...api], admin)
  t.equal(dup.status, 1)
  t.match(dup.stderr, /egressd: POST \/api\/v1\/rules: 409 Conflict: .*exists already/, 'a 4xx shows the API\'s message')
  const bad = await cli(['rules', 'add', 'bad..name', ...api], admin)
  t.equal(bad.status, 1)
  t.match(bad.stderr, /400 Bad Request: .*rule/)

  const broad = await cli(['rules', 'add', 'com', ...api], admin)
  t.equal(broad.status, 1)
  t.match(broad.stderr, /422 Unprocessable Entity: .*'com' would block every name under the top-level domain com/, 'the rule guard refuses through the CLI')
  const forced = await cli(['rules', 'add', 'com', '--force', '--comment', 'drill', ...api, '--json'], admin)
  t.equal(forced.status, 0, forced.stderr)
  const forcedId = String((JSON.parse(forced.stdout) as { rule: { id: number } }).rule.id)
  t.equal((await cli(['rules', 'remove', forcedId, ...api], admin)).status, 0)
  const typed = await cli(['rules', 'add', 'v6.example $dnstype=AAAA', ...api, '--json'], admin)
  t.equal(typed.status, 0, typed.stderr)
  t.equal((JSON.parse(typed.stdout) as { rule: { rule: string } }).rule.rule, 'v6.example $dnstype=AAAA')
  t.equal((await cli(['rules', 'remove', String((JSON.parse(typed.stdout) as { rule: { id: number } }).rule.id), ...api], admin)).status, 0)
  t.equal((await cli(['rules', 'list', '--force', ...api], admin)).status, 2, 'rules list takes no --force')

  const viewerAdd = await cli(['rules', 'add', 'x.example', ...api], { EGRESSD_TOKEN: TOKENS.viewer })
  t.equal(viewerAdd.status, 1)
  t.match(viewerAdd.stderr, /the token from EGRESSD_TOKEN may not do this \(403\): it needs role admin/)
  const wrong = await cli(['rules', 'list', ...api], { EGRESSD_TOKEN: 'not-a-known-token' })
  t.equal(wrong.status, 1)
  t.match(wrong.stderr, new RegExp(`the API at ${d.base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} refused the token from EGRESSD_TOKEN \\(401\\).*role viewer`))

  const removed = await cli(['rules', 'remove', id, ...api, '--table'], admin)
  t.equal(removed.status, 0, removed.stderr)
  t.match(removed.stdout, `removed block chat.example.org (rule ${id}`)
  t.not((await dig([...at, 'www.chat.example.org'])).status, 'NXDOMAIN', 'unblocked')
  const gone = await cli(['rules', 'remove', id, ...api], admin)
  t.equal(gone.status, 1)
  t.match(gone.stderr, `DELETE /api/v1/rules/${id}: 404 Not Found`)

  const cats = await cli(['categories', ...api, '--table'], { EGRESSD_TOKEN: TOKENS.viewer })
  t.equal(cats.status, 0, cats.stderr)
  t.match(cats.stdout, /^CATEGORY +ENABLED +ACTION +ENTRIES +GROUPS DIFFERING +TITLE\n/)
  t.match(cats.stdout, /^telegram +yes +nxdomain +\d+ +- +Telegram/m)
  const off = await cli(['categories', 'disable', 'telegram', ...api, '--table'], admin)
  t.equal(off.status, 0, off.stderr)
  t.match(off.stdout, /^telegram: disabled for every group\n/)
  t.not((await dig([...at, 'web.telegram.org'])).status, 'NXDOMAIN', 'the category is off in DNS')
  const json = await cli(['categories', 'list', ...api], { EGRESSD_TOKEN: TOKENS.viewer })
  t.match(JSON.parse(json.stdout).categories.find((c: { name: string }) => c.name === 'telegram'), { enabled: false, overrides: { '*': { enabled: false } } })
  const badAction = await cli(['categories', 'action', 'telegram', 'explode', ...api], admin)
  t.equal(badAction.status, 1)
  t.match(badAction.stderr, /body\.action: must be one of nxdomain/)

  const reload = await cli(['reload', ...api, '--table'], admin)
  t.equal(reload.status, 0, reload.stderr)
  t.match(reload.stdout, /^status +\S+\nconfig +.*config\.yaml\napplied +.*\nneeds restart +.*\ngeneration +\d+\n$/)
  writeFileSync(d.configFile, 'dns: { listen: [nonsense] }\n')
  const rejected = await cli(['reload', ...api], admin)
  t.equal(rejected.status, 1, 'a rejected reload fails the command')
  t.match(JSON.parse(rejected.stdout), { issues: [/^dns\.listen\.0: /] })
  t.match(rejected.stderr, /reload rejected/)
  const rejectedTable = await cli(['reload', ...api, '--table'], admin)
  t.match(rejectedTable.stdout, /^dns\.listen\.0: /m, 'every problem printed')

  const audit = await cli(['audit', '--limit', '50', ...api, '--table'], admin)
  t.equal(audit.status, 0, audit.stderr)
  t.match(audit.stdout, /^ID +TIME +ACTOR +CLIENT +ACTION +TARGET +CHANGE\n/)
  for (const action of ['rule.add', 'rule.delete', 'category.update', 'config.reload']) t.match(audit.stdout, new RegExp(` admin-token +\\S+ +${action.replace('.', '\\.')}`), action)
  const auditJson = await cli(['audit', '--action', 'rule.add', ...api], admin)
  t.ok(JSON.parse(auditJson.stdout).entries.every((e: { action: string }) => e.action === 'rule.add'))
  const viewerAudit = await cli(['audit', ...api], { EGRESSD_TOKEN: TOKENS.viewer })
  t.match(viewerAudit.stderr, /403\): it needs role admin/)
})

t.test('the token: --token-file, EGRESSD_TOKEN, <etc>/cli.token; never an argument', async t => {
  const d = await startApiDaemon()
  t.teardown(() => d.close())
  const api = ['--api', d.base]
  const dir = tempDir('egressd-cli-token-')

  const none = await cli(['rules', 'list', ...api])
  t.equal(none.status, 2)
  t.match(none.stderr, `no API token: set EGRESSD_TOKEN, or give --token-file FILE (the default ${join(etc, 'cli.token')} does not exist)`)

  // As `egressd token create` prints it, kept in a file of mode 0600.
  const file = join(dir, 'admin.token')
  writeFileSync(file, `token: ${TOKENS.admin}\n# Keep it secret\n- { name: "x", role: admin, sha256: "..." }\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  const fromFile = await cli(['rules', 'list', ...api, '--token-file', file], { EGRESSD_TOKEN: TOKENS.viewer })
  t.equal(fromFile.status, 0, fromFile.stderr)
  t.equal(fromFile.stderr, '', 'no warning for a private file')
  const fileWins = await cli(['rules', 'add', 'file.example', ...api, '--token-file', file], { EGRESSD_TOKEN: TOKENS.viewer })
  t.equal(fileWins.status, 0, '--token-file wins over EGRESSD_TOKEN (admin, not viewer)')

  writeFileSync(join(etc, 'cli.token'), `${TOKENS.viewer}\n`)
  chmodSync(join(etc, 'cli.token'), 0o644)
  const fromEtc = await cli(['rules', 'list', ...api])
  t.equal(fromEtc.status, 0, fromEtc.stderr)
  t.match(fromEtc.stderr, `warning: the token file ${join(etc, 'cli.token')} can be read by other users (mode 644)`)
  const envWins = await cli(['rules', 'add', 'env.example', ...api], { EGRESSD_TOKEN: TOKENS.admin })
  t.equal(envWins.status, 0, 'EGRESSD_TOKEN wins over the default file')

  const empty = join(dir, 'empty.token')
  writeFileSync(empty, '# nothing\n', { mode: 0o600 })
  const noToken = await cli(['rules', 'list', ...api, '--token-file', empty])
  t.equal(noToken.status, 1)
  t.match(noToken.stderr, `${empty} holds no API token`)
  const missing = await cli(['rules', 'list', ...api, '--token-file', join(dir, 'nope')])
  t.match(missing.stderr, /cannot read the token file .*nope: ENOENT/)
  const arg = await cli(['rules', 'list', ...api, '--token', TOKENS.admin])
  t.equal(arg.status, 2, 'there is no option that takes the token itself')

  // A new token written to a file by `token create --out`, added to the config, reloaded, used.
  const made = join(dir, 'cli.token')
  const created = await cli(['token', 'create', '--role', 'viewer', '--name', 'from-cli', '--out', made])
  t.equal(created.status, 0, created.stderr)
  t.notMatch(created.stdout, /^token:/m, 'the token is not printed')
  t.equal(statSync(made).mode & 0o777, 0o600)
  const line = /^- \{ name: "from-cli", role: viewer, sha256: "([0-9a-f]{64})" \}$/m.exec(created.stdout)
  t.ok(line, created.stdout)
  const cfg = JSON.parse(readFileSync(d.configFile, 'utf8'))
  cfg.api.tokens.push({ name: 'from-cli', role: 'viewer', sha256: line?.[1] })
  writeFileSync(d.configFile, JSON.stringify(cfg))
  t.equal((await cli(['reload', ...api], { EGRESSD_TOKEN: TOKENS.admin })).status, 0)
  const withNew = await cli(['rules', 'list', ...api, '--token-file', made])
  t.equal(withNew.status, 0, withNew.stderr)
  t.equal(withNew.stderr, '')
  const again = await cli(['token', 'create', '--role', 'viewer', '--out', made])
  t.equal(again.status, 2, 'an existing file is never overwritten')
  t.match(again.stderr, /EEXIST/)
})

t.test('the URL: api.listen of the discovered config, --api, and a daemon that is not running', async t => {
  const d = await startApiDaemon()
  t.teardown(() => d.close())
  const dir = tempDir('egressd-cli-url-')
  const port = new URL(d.base).port
  const file = join(dir, 'egressd.yaml')
  writeFileSync(file, `upstreams: ["udp://127.0.0.1:9"]\napi: { listen: "0.0.0.0:${port}", allowPlaintext: true }\n`)
  const admin = { EGRESSD_TOKEN: TOKENS.admin }
  const viaConfig = await cli(['rules', 'list'], { ...admin, EGRESSD_CONFIG: file })
  t.equal(viaConfig.status, 0, viaConfig.stderr)
  t.match(viaConfig.stderr, `egressd: config ${file} (EGRESSD_CONFIG)`)
  t.same(JSON.parse(viaConfig.stdout), { rules: [] }, 'a wildcard api.listen is reached on loopback')

  const portZero = join(dir, 'zero.yaml')
  writeFileSync(portZero, 'upstreams: ["udp://127.0.0.1:9"]\napi: { listen: "127.0.0.1:0" }\n')
  const zero = await cli(['rules', 'list', '--config', portZero], admin)
  t.equal(zero.status, 2)
  t.match(zero.stderr, /has port 0 .*give --api URL/)

  const closed = await freePort()
  writeFileSync(file, `upstreams: ["udp://127.0.0.1:9"]\napi: { listen: "127.0.0.1:${closed}" }\n`)
  const down = await cli(['reload', '--config', file], admin)
  t.equal(down.status, 1)
  t.match(down.stderr, `egressd: cannot reach the egressd API at http://127.0.0.1:${closed} (api.listen of ${file}): connection refused. Is the daemon running?`)
  const downApi = await cli(['audit', '--api', `http://127.0.0.1:${closed}`], admin)
  t.match(downApi.stderr, `cannot reach the egressd API at http://127.0.0.1:${closed} (--api): connection refused`)
  const notUrl = await cli(['audit', '--api', 'localhost'], admin)
  t.equal(notUrl.status, 2)
  t.match(notUrl.stderr, /--api must be/)
})

t.test('https: api.tls gives an https URL; --ca names the CA to trust', async t => {
  const pki = makeTestPki()
  t.teardown(() => pki.remove())
  const pair = pki.issue('egressd-api', ['IP:127.0.0.1'])
  const cert = join(pki.dir, 'api.pem')
  writeFileSync(cert, pair.cert)
  writeFileSync(join(pki.dir, 'api.key'), pair.key)
  const d = await startApiDaemon({ api: { tls: { cert, key: join(pki.dir, 'api.key') } } })
  t.teardown(() => d.close())
  const port = new URL(d.base).port
  const dir = tempDir('egressd-cli-https-')
  mkdirSync(join(dir, 'tls'))
  writeFileSync(join(dir, 'tls', 'api.pem'), readFileSync(cert))
  const file = join(dir, 'egressd.yaml')
  // Relative api.tls paths: next to the config file.
  writeFileSync(file, `upstreams: ["udp://127.0.0.1:9"]\napi: { listen: "127.0.0.1:${port}", tls: { cert: tls/api.pem, key: tls/api.key } }\n`)
  const admin = { EGRESSD_TOKEN: TOKENS.admin }
  const untrusted = await cli(['rules', 'list', '--config', file], admin)
  t.equal(untrusted.status, 1)
  t.match(untrusted.stderr, `the egressd API at https://127.0.0.1:${port} (api.listen of ${file}): its TLS certificate is not trusted`)
  t.match(untrusted.stderr, /give --ca FILE/)
  const trusted = await cli(['rules', 'list', '--config', file, '--ca', pki.caFile], admin)
  t.equal(trusted.status, 0, trusted.stderr)
  t.same(JSON.parse(trusted.stdout), { rules: [] })
  const plain = await cli(['rules', 'list', '--api', `http://127.0.0.1:${port}`], admin)
  t.equal(plain.status, 1, 'http:// to an HTTPS API fails with a message')
  t.match(plain.stderr, /^egressd: /)
})
