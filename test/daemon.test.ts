// The daemon's life cycle: the constructor touches nothing, start() that fails part-way closes
// everything it opened, stored custom rules are built into the first policy once.

import dgram from 'node:dgram'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import type { Config } from '../src/config/types.js'
import { Daemon } from '../src/daemon.js'
import { createLogger } from '../src/log.js'
import { testConfig } from './helpers/daemon.js'

function quietDaemon (config: Config): { daemon: Daemon, lines: () => Array<Record<string, unknown>> } {
  const out: string[] = []
  const sink = new Writable({ write (chunk, _e, cb) { out.push(...String(chunk).split('\n').filter(Boolean)); cb() } })
  return { daemon: new Daemon(config, { log: createLogger('info', sink) }), lines: () => out.map(l => JSON.parse(l)) }
}

/** Handles that keep the process alive, by kind (timers, sockets, worker threads' ports, ...). */
function resources (): Record<string, number> {
  const n: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) n[r] = (n[r] ?? 0) + 1
  return n
}

const settle = (): Promise<void> => new Promise(resolve => setTimeout(resolve, 200))

t.test('the constructor does no I/O: no data dir, no database, no socket until start()', async t => {
  const config = testConfig({})
  const before = resources()
  const { daemon } = quietDaemon(config)
  t.notOk(existsSync(join(config.dataDir, 'policy.sqlite')), 'no policy file yet')
  t.notOk(existsSync(config.store.path), 'no block log yet')
  t.same(resources(), before, 'no timer, socket or thread was opened')
  t.same(daemon.addresses, [])
  await daemon.close() // closing a daemon that never started is harmless
})

t.test('a DNS bind failure at start closes the block log threads, both databases and the expiry timer', async t => {
  const busy = dgram.createSocket('udp4')
  await new Promise<void>(resolve => busy.bind(0, '127.0.0.1', () => resolve()))
  t.teardown(() => busy.close())
  const port = busy.address().port
  await settle()
  const before = resources()
  const config = testConfig({ dns: { listen: [`127.0.0.1:${port}`] } })
  const { daemon, lines } = quietDaemon(config)
  await t.rejects(daemon.start(), { code: 'EGRESSD_ERR_LISTEN' })
  await settle()
  t.same(resources(), before, 'everything start() opened is closed again')
  t.ok(existsSync(join(config.dataDir, 'policy.sqlite')), 'the stores had been opened before the bind failed')
  t.ok(lines().some(l => l.msg === 'egressd stopped'))
  // The files can be removed and opened again: no handle of ours holds them (WAL/SHM files gone).
  t.same(readdirSync(config.dataDir).filter(f => f.endsWith('-wal') || f.endsWith('-shm')), [], 'SQLite files closed cleanly')
})

t.test('stored custom rules are part of the first build: the policy is built once at start', async t => {
  const config = testConfig({})
  const first = quietDaemon(config)
  await first.daemon.start()
  first.daemon.customPolicy!.addRule({ kind: 'block', rule: 'stored.example', comment: '', expiresAt: null }, { name: 'test', client: '' })
  await first.daemon.close()

  const second = quietDaemon(config)
  await second.daemon.start()
  t.teardown(() => second.daemon.close())
  const builds = second.lines().filter(l => l.msg === 'policy loaded')
  t.equal(builds.length, 1, 'one build, not a build and a rebuild for the stored rules')
  t.equal(second.daemon.policy.engine.generation, 1)
  t.equal(second.daemon.policy.engine.decideName('stored.example', second.daemon.policy.engine.groupOf('192.0.2.7'), 1)?.category, 'custom', 'the stored rule is in force')
})
