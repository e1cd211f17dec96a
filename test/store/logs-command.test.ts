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

const run = (args: string[]): { code: number, text: string } => {
  let text = ''
  const code = logsCommand(args, s => { text += s }, () => T0 + 86_400_000)
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

// The built command (dist/cli.js, `npx tsc -p tsconfig.json` first) as an admin runs it, from a
// directory other than the daemon's, on a log whose events are from the last hour.
const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const cwd = tempDir('egressd-logs-cwd-')
const recent = freshDb()
const NOW = Date.now()
// 3000 events 60 to 40 minutes ago, 3000 in the last 20 minutes: none near the -30m boundary.
new EventWriter(recent.db).write(Array.from({ length: 6000 }, (_, i) => event({ ts: NOW - 3_600_000 + (i < 3000 ? 0 : 2_400_000) + (i % 3000) * 400, client: `10.0.1.${i % 5}` })))
recent.db.close()

const cli = (args: string[]): { status: number | null, stdout: string, stderr: string } => {
  const r = spawnSync(process.execPath, [CLI, 'logs', ...args], { encoding: 'utf8', timeout: 30_000, cwd, maxBuffer: 64 * 1024 * 1024 })
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
      { encoding: 'utf8', timeout: 30_000, cwd })
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
