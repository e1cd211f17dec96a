// `egressd logs search|stats` on a database file: the same rows as the API's search, in each format.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { tempDir } from '../helpers/tmp.js'
import { logsCommand } from '../../src/logs-command.js'
import { EventWriter } from '../../src/store/block-writer.js'
import { event, freshDb } from './helpers.js'

const T0 = Date.UTC(2030, 0, 1)
const { path, db } = freshDb()
new EventWriter(db).write(Array.from({ length: 4500 }, (_, i) => event({ ts: T0 + i * 1000, client: `10.0.0.${i % 3}`, category: i % 2 === 0 ? 'telegram' : 'viber' })))
db.close()

const run = (args: string[], isTTY = false): { code: number, text: string } => {
  let text = ''
  const code = logsCommand(args, s => { text += s }, () => T0 + 86_400_000, { isTTY })
  return { code, text }
}

t.test('search: json, ndjson and csv hold the same rows, across pages', async t => {
  const json = JSON.parse(run(['search', '--db', path, '--client', '10.0.0.1', '--category', 'telegram']).text)
  t.equal(json.length, 750)
  t.ok(json.every((r: { client: string, category: string }) => r.client === '10.0.0.1' && r.category === 'telegram'))
  const nd = run(['search', '--db', path, '--client', '10.0.0.1', '--category', 'telegram', '--format', 'ndjson']).text.trim().split('\n').map(l => JSON.parse(l))
  t.same(nd, json)
  const csv = run(['search', '--db', path, '--client', '10.0.0.1', '--category', 'telegram', '--format', 'csv']).text.trim().split('\r\n')
  t.equal(csv.length, 751)
  t.equal(csv[1].split(',')[0], String(json[0].id))
  t.equal(JSON.parse(run(['search', '--db', path, '--limit', '2500']).text).length, 2500)
})

t.test('stats and errors', async t => {
  const s = JSON.parse(run(['stats', '--db', path, '--from', '2030-01-01T00:00:00Z', '--to', '2030-01-02T00:00:00Z']).text)
  t.equal(s.total, 4500)
  t.throws(() => run(['search', '--db', path, '--from', 'nope']), { name: 'QueryError', parameter: 'from' })
  t.throws(() => run(['frobnicate', '--db', path]), { code: 'EGRESSD_ERR_USAGE' })
})

t.test('stats: only the buckets with events unless --all; --client and --group narrow it', async t => {
  const range = ['--db', path, '--from', '2030-01-01T00:00:00Z', '--to', '2030-01-01T02:00:00Z', '--bucket', '1m']
  const sparse = JSON.parse(run(['stats', ...range]).text)
  t.equal(sparse.series.points.length, 75, 'the 75 minutes with events (4500 events, one a second)')
  t.ok(sparse.series.points.every((p: { count: number }) => p.count > 0))
  const all = JSON.parse(run(['stats', ...range, '--all']).text)
  t.equal(all.series.points.length, 120, 'every minute of the two hours')
  t.equal(all.series.points.filter((p: { count: number }) => p.count === 0).length, 45)
  t.equal(JSON.parse(run(['stats', ...range, '--client', '10.0.0.1']).text).total, 1500)
  t.equal(JSON.parse(run(['stats', ...range, '--client', '10.0.0.0/30']).text).total, 4500)
  t.equal(JSON.parse(run(['stats', ...range, '--group', 'nobody']).text).total, 0)
  t.throws(() => run(['stats', ...range, '--format', 'csv']), { code: 'EGRESSD_ERR_USAGE' })
  t.throws(() => run(['stats', ...range, '--top', '0']), { code: 'EGRESSD_ERR_USAGE' })
})

t.test('tables on a terminal, JSON with --json; --table in a pipe', async t => {
  const search = run(['search', '--db', path, '--client', '10.0.0.2'], true).text.split('\n')
  t.match(search[0], /^TIME +CLIENT +GROUP +QNAME +QTYPE +CATEGORY +ACTION +RULE$/)
  t.match(search[1], /^2030-01-01T01:14:5\d\.000Z +10\.0\.0\.2 +default +web\.telegram\.org +A +(telegram|viber) +nxdomain +telegram\.org$/)
  t.equal(search.filter(l => l.startsWith('2030-')).length, 100, 'a terminal gets the newest 100 without --limit')
  t.match(search.at(-2), /^\(the newest 100; more with --limit N, all with --format ndjson or csv\)$/)
  t.equal(run(['search', '--db', path, '--client', '10.0.0.2', '--limit', '3'], true).text.split('\n').filter(l => l.startsWith('2030-')).length, 3)
  t.equal(JSON.parse(run(['search', '--db', path, '--client', '10.0.0.2', '--json'], true).text).length, 1500, '--json: every row')
  t.match(run(['search', '--db', path, '--limit', '1', '--table']).text, /^TIME /, '--table in a pipe')
  t.throws(() => run(['search', '--db', path, '--json', '--format', 'csv']), { code: 'EGRESSD_ERR_USAGE' })
  const stats = run(['stats', '--db', path, '--from', '2030-01-01T00:00:00Z', '--to', '2030-01-01T02:00:00Z', '--bucket', '1h'], true).text
  t.match(stats, /^4500 event\(s\) from 2030-01-01T00:00:00\.000Z to 2030-01-01T02:00:00\.000Z\n/)
  t.match(stats, /^CATEGORY +ACTION +EVENTS\ntelegram +nxdomain +2250\nviber +nxdomain +2250\n/m)
  t.match(stats, /^PER 1h \(buckets with events; --all for every one\) +EVENTS\n2030-01-01T00:00:00\.000Z +3600\n2030-01-01T01:00:00\.000Z +900\n/m)
})

// The built command (dist/cli.js, `npx tsc -p tsconfig.json` first) as an admin runs it, from a
// directory other than the daemon's, on a log whose events are from the last hour.
const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const cwd = tempDir('egressd-logs-cwd-')
const recent = freshDb()
const NOW = Date.now()
// 3000 events 60 to 40 minutes ago, 3000 in the last 20 minutes: none near the -30m boundary.
new EventWriter(recent.db).write(Array.from({ length: 6000 }, (_, i) => event({ ts: NOW - 3_600_000 + (i < 3000 ? 0 : 2_400_000) + (i % 3000) * 400, client: `10.0.1.${i % 5}` })))
recent.db.close()

// No /etc/egressd/egressd.yaml of this machine: the CLI looks in an empty dir instead.
const env = { ...process.env, EGRESSD_ETC_DIR: tempDir('egressd-logs-etc-'), EGRESSD_CONFIG: '' }
const cli = (args: string[]): { status: number | null, stdout: string, stderr: string } => {
  const r = spawnSync(process.execPath, [CLI, 'logs', ...args], { encoding: 'utf8', timeout: 30_000, cwd, env, maxBuffer: 64 * 1024 * 1024 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('CLI: --from -24h and --from=-24h are the same relative time, for search and stats', async t => {
  const spaced = cli(['search', '--db', recent.path, '--from', '-24h', '--to', '-30m', '--format', 'ndjson'])
  t.equal(spaced.status, 0, spaced.stderr)
  const joined = cli(['search', '--db', recent.path, '--from=-24h', '--to=-30m', '--format', 'ndjson'])
  t.equal(joined.status, 0, joined.stderr)
  t.equal(spaced.stdout, joined.stdout)
  t.equal(spaced.stdout.trim().split('\n').length, 3000, 'the events from 60 to 40 minutes ago')
  for (const from of [['--from', '-2h'], ['--from=-2h']]) {
    const stats = cli(['stats', '--db', recent.path, ...from, '--to', '-30m'])
    t.equal(stats.status, 0, stats.stderr)
    t.equal(JSON.parse(stats.stdout).total, 3000)
  }
})

t.test('CLI: a reader that closes stdout early (| head -1) ends the command quietly with exit 0', async t => {
  for (const args of [['search', '--format', 'csv'], ['search', '--format', 'ndjson'], ['search']]) {
    const r = spawnSync('bash', ['-c', 'set -o pipefail; "$@" | head -c 1 >/dev/null', 'pipe', process.execPath, CLI, 'logs', ...args, '--db', recent.path, '--from', '-2h'],
      { encoding: 'utf8', timeout: 30_000, cwd, env })
    t.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`)
    t.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`)
  }
})

t.test('CLI: no block log where it looks gives a clear error naming the file, not a stack', async t => {
  const r = cli(['search'])
  t.equal(r.status, 1)
  t.match(r.stderr, `no block log at ${resolve(cwd, 'var', 'egressd.sqlite')}`)
  t.notMatch(r.stderr, /TypeError|\n\s+at /)
  const db = cli(['stats', '--db', 'nope.sqlite'])
  t.equal(db.status, 1)
  t.match(db.stderr, `no block log at ${resolve(cwd, 'nope.sqlite')} (--db`)
})
