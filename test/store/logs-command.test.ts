// `egressd logs search|stats` on a database file: the same rows as the API's search, in each format.

import t from 'tap'
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
