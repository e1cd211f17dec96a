// The block log in a real daemon: blocked dig queries reach the API within 2 s with everything the
// verdict said (category, list, line, rule, list hash); a kill -9 of a daemon process in the middle
// of writing leaves a database that passes integrity_check and holds every event flushed before.

import t from 'tap'
import Fastify from 'fastify'
import Database from 'better-sqlite3'
import dnsPacket from 'dns-packet'
import dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { startTestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { freePort } from '../helpers/ports.js'
import { blockRoutes } from '../../src/api/routes/blocks.js'
import type { BlockRow } from '../../src/store/block-event.js'
import { tempDir } from '../helpers/tmp.js'

const lists = tempDir('egressd-lists-')
const domains = '# test list\nblocked.test\n=exact.test\n'
mkdirSync(join(lists, 'messenger'))
writeFileSync(join(lists, 'messenger', 'meta.yaml'), 'title: messenger\ndescription: test\npolicyRef: "test-ref"\nenabled: true\nlastReviewed: 2026-11-22\nsources: []\nmustNotBlock: []\n')
writeFileSync(join(lists, 'messenger', 'domains.txt'), domains)

t.test('events of real blocked queries appear in the API within 2 s', async t => {
  const d = await startTestDaemon({ blocklists: { dir: lists }, store: { batchMs: 200 } })
  t.teardown(() => d.close())
  t.ok(d.daemon.db, 'the daemon exposes its read-write connection')
  const reader = d.daemon.blockSearch
  if (reader === undefined) throw new Error('no block search')
  const app = Fastify()
  await app.register(blockRoutes, { reader })
  t.teardown(() => app.close())

  const r = await dig([`@${d.host}`, '-p', String(d.port), 'www.blocked.test', 'AAAA'])
  t.equal(r.status, 'NXDOMAIN')
  const asked = Date.now()
  let rows: BlockRow[] = []
  while (Date.now() - asked < 2000 && rows.length === 0) {
    rows = (await app.inject({ method: 'GET', url: '/api/v1/blocks?domain=blocked.test&suffix=true' })).json().rows
    if (rows.length === 0) await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(Date.now() - asked < 2000, `in the API after ${Date.now() - asked} ms`)
  t.match(rows, [{
    client: '127.0.0.1', group: 'default', qname: 'www.blocked.test', qtype: 'AAAA', matched: 'qname', value: 'www.blocked.test',
    category: 'messenger', action: 'nxdomain', list: join(lists, 'messenger', 'domains.txt'), line: 2, rule: 'blocked.test',
    listHash: createHash('sha256').update(domains).digest('hex').slice(0, 16)
  }])
  t.ok(d.logs().some(l => l.msg === 'blocked' && l.qname === 'www.blocked.test' && l.category === 'messenger'), 'and a pino line')
})

function query (name: string, id: number): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] })
}

t.test('kill -9 mid-write: the file passes integrity_check and holds every flushed event', async t => {
  const dir = tempDir('egressd-kill-')
  const port = await freePort()
  const config = join(dir, 'egressd.yaml')
  writeFileSync(config, [
    'dns:', `  listen: ["127.0.0.1:${port}"]`, 'api:', '  listen: "127.0.0.1:0"', 'upstreams: ["udp://127.0.0.1:9"]',
    `dataDir: ${dir}`, `blocklists: { dir: ${lists} }`, 'store: { batchMs: 100 }', 'log: { level: warn }', ''
  ].join('\n'))
  const child = spawn(process.execPath, ['dist/cli.js', 'start', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', c => { stderr += String(c) })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const sock = dgram.createSocket('udp4')
  t.teardown(() => sock.close())
  let answers = 0
  const answered = new Set<number>()
  sock.on('message', (m: Buffer) => { answers++; answered.add(m.readUInt16BE(0)) })
  const send = (name: string, id: number) => new Promise<void>(resolve => sock.send(query(name, id), port, '127.0.0.1', () => resolve()))

  // Wait for DNS to answer.
  for (let i = 0; i < 100 && answers === 0; i++) { await send('ready.blocked.test', i); await new Promise(resolve => setTimeout(resolve, 100)) }
  t.ok(answers > 0, `daemon answers ${stderr}`)
  // 300 events, each answered (a query is sent again until it is: on a busy machine the kernel may
  // drop a datagram of a burst, and then there is no event to keep), then more than two batch
  // intervals: they are flushed.
  const unanswered = (): number[] => Array.from({ length: 300 }, (_, i) => i).filter(i => !answered.has(1000 + i))
  for (let round = 0; round < 20 && unanswered().length > 0; round++) {
    for (const i of unanswered()) await send(`f${i}.blocked.test`, 1000 + i)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  t.same(unanswered(), [], 'all 300 queries answered')
  await new Promise(resolve => setTimeout(resolve, 800))
  // A burst in flight, and kill -9 in the middle of it.
  let sent = 0
  const burst = (async () => { for (let i = 0; i < 3000; i++) { await send(`b${i}.blocked.test`, 5000 + (i % 60000)); sent++; if (i % 50 === 0) await new Promise(resolve => setImmediate(resolve)) } })()
  await new Promise(resolve => setTimeout(resolve, 250))
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await burst
  await exited

  const db = new Database(join(dir, 'egressd.sqlite'))
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok')
  const flushed = db.prepare("SELECT count(DISTINCT n.name) AS n FROM events e JOIN names n ON n.id = e.qname WHERE n.name LIKE 'f%.blocked.test'").get() as { n: number }
  t.equal(flushed.n, 300, 'every event flushed before the kill is there')
  const burstRows = (db.prepare("SELECT count(*) AS n FROM events e JOIN names n ON n.id = e.qname WHERE n.name LIKE 'b%.blocked.test'").get() as { n: number }).n
  t.ok(burstRows <= sent, `${burstRows} of ${sent} burst events made it (the rest was in the last batch interval)`)
  db.close()
})

t.test('a store from a newer egressd: DNS starts, the block log is disabled and reported loudly', async t => {
  const dataDir = tempDir('egressd-newer-')
  const db = new Database(join(dataDir, 'egressd.sqlite'))
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)')
  db.prepare('INSERT INTO schema_migrations VALUES (999, ?, 0)').run('from the future')
  db.close()
  const d = await startTestDaemon({ dataDir, blocklists: { dir: lists } })
  t.teardown(() => d.close())
  t.equal(d.daemon.db, undefined)
  t.equal(d.daemon.blockLog, undefined)
  t.equal((await dig([`@${d.host}`, '-p', String(d.port), 'blocked.test'])).status, 'NXDOMAIN', 'DNS answers')
  const err = d.logs().find(l => String(l.msg).startsWith('STORE UNAVAILABLE'))
  t.ok(err, 'loud error')
  t.match(JSON.stringify(err), /newer than this egressd understands/)
})
