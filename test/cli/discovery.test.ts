// `egressd discovery` on a block-log file: a table on a terminal (one line per client and category,
// the pattern rule under it), JSON with --json or in a pipe, the same report as the API's; filters,
// bad values named, a missing file named; and the built command (dist/cli.js, `npx tsc -p
// tsconfig.json` first) wired into `egressd`.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { discoveryCommand } from '../../src/cli/discovery.js'
import type { BlockEvent } from '../../src/store/block-event.js'
import { EventWriter } from '../../src/store/block-writer.js'
import { firewallEvent } from '../../src/store/firewall-event.js'
import { tempDir } from '../helpers/tmp.js'
import { event, freshDb } from '../store/helpers.js'

const HOUR = 3_600_000
const NOW = Date.now()
const fw = (ts: number, client: string, attempts: number): BlockEvent =>
  firewallEvent({ ts, client, destination: '149.154.167.51', family: 4, proto: 'tcp', port: 443, attempts }, { category: 'telegram', set: 'telegram_v4', group: 'default' })
const { path, db } = freshDb()
new EventWriter(db).write([
  ...[50, 26, 2].map(h => event({ ts: NOW - h * HOUR, client: '10.2.0.1', qname: 'web.telegram.org', category: 'telegram' })),
  fw(NOW - 3 * HOUR, '10.2.0.1', 9),
  event({ ts: NOW - HOUR, client: '10.2.0.2', qname: 'wa.me', category: 'whatsapp' }),
  event({ ts: NOW - HOUR + 5000, client: '10.2.0.2', qname: 'wa.me', category: 'whatsapp', qtype: 28 }),
  fw(NOW - 30 * 60_000, '10.2.0.3', 4)
].sort((a, b) => a.ts - b.ts))
db.close()

const run = (args: string[], isTTY = false): string => {
  let text = ''
  const code = discoveryCommand(args, s => { text += s }, () => NOW, { isTTY })
  if (code !== 0) throw new Error(`exit ${code}`)
  return text
}

t.test('a table on a terminal', async t => {
  const lines = run(['--db', path], true).split('\n')
  t.match(lines[0], /^3 client\(s\) from \S+ to \S+$/)
  t.match(lines[1], /^CLIENT +GROUP +CATEGORY +PATTERN +DNS +FIREWALL +FIRST SEEN +LAST SEEN +PER DAY \(dns\/firewall\)$/)
  t.match(lines[2], /^10\.2\.0\.1 +default +telegram +installed-app +3 +9 +\S+Z +\S+Z +\d\d-\d\d \d\/\d/)
  t.match(lines[3], /^10\.2\.0\.3 +default +telegram +single-click +0 +4 /)
  t.match(lines[4], /^10\.2\.0\.2 +default +whatsapp +single-click +2 +0 /)
  t.match(lines[5], /^pattern: installed-app: /)
  t.match(run(['--db', path, '--client', '10.9.0.0/16'], true), /\(no client tried a blocked service in this range\)/)
})

t.test('JSON with --json and in a pipe; filters', async t => {
  const r = JSON.parse(run(['--db', path, '--json'], true))
  t.same(r.clients.map((c: { client: string, pattern: string }) => [c.client, c.pattern]), [['10.2.0.1', 'installed-app'], ['10.2.0.3', 'single-click'], ['10.2.0.2', 'single-click']])
  t.match(r.clients[0].categories[0], { category: 'telegram', dnsAttempts: 3, firewallAttempts: 9, days: 3 })
  t.same(JSON.parse(run(['--db', path])), r, 'a pipe gets JSON')
  t.same(JSON.parse(run(['--db', path, '--category', 'whatsapp'])).clients.map((c: { client: string }) => c.client), ['10.2.0.2'])
  t.same(JSON.parse(run(['--db', path, '--client', '10.2.0.3'])).clients.map((c: { client: string }) => c.client), ['10.2.0.3'])
  t.same(JSON.parse(run(['--db', path, '--since', '-90m'])).clients.map((c: { client: string }) => c.client), ['10.2.0.3', '10.2.0.2'])
})

t.test('errors', async t => {
  t.throws(() => run(['--db', path, '--since', 'yesterday']), { name: 'QueryError', parameter: 'since' })
  t.throws(() => run(['--db', path, '--client', 'host']), { name: 'QueryError', parameter: 'client' })
  t.throws(() => run(['--db', path, '--json', '--table']), { code: 'EGRESSD_ERR_USAGE' })
  t.throws(() => run(['--db', path, 'extra']), { code: 'EGRESSD_ERR_USAGE' })
  t.throws(() => run(['--db', join(tempDir('egressd-disc-none-'), 'none.sqlite')]), { code: 'EGRESSD_ERR_STORE', message: /no block log at .*none\.sqlite \(--db/ })
})

t.test('the built command', async t => {
  const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
  const json = spawnSync(process.execPath, [CLI, 'discovery', '--db', path, '--since', '-7d', '--json'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(json.status, 0, json.stderr)
  t.equal(JSON.parse(json.stdout).clients.length, 3)
  const table = spawnSync(process.execPath, [CLI, 'discovery', '--db', path, '--table'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(table.status, 0, table.stderr)
  t.match(table.stdout, /^10\.2\.0\.1 +default +telegram +installed-app /m)
  const help = spawnSync(process.execPath, [CLI, 'help'], { encoding: 'utf8', timeout: 60_000 })
  t.match(help.stdout, /egressd discovery \[--client IP\|CIDR\]/)
  const bad = spawnSync(process.execPath, [CLI, 'discovery', '--db', path, '--since', 'nope'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(bad.status, 1)
  t.match(bad.stderr, /since/)
})
