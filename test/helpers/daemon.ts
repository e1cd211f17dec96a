// An in-process daemon for integration tests: listens on 127.0.0.1 with an OS-chosen port, logs
// into memory (tests can read the lines), and is closed by the test.

import { Writable } from 'node:stream'
import { parseConfig } from '../../src/config/load.js'
import { createLogger } from '../../src/log.js'
import { Daemon } from '../../src/daemon.js'
import { tempDir } from './tmp.js'

export interface TestDaemon {
  readonly daemon: Daemon
  readonly host: string
  readonly port: number
  /** Log lines written so far, parsed. */
  readonly logs: () => Array<Record<string, unknown>>
  close (): Promise<void>
}

export function testConfig (overrides: Record<string, unknown>) {
  // Port 9 (discard) on loopback: a harmless upstream for tests that never forward. Each daemon
  // gets its own data dir (SQLite) and an OS-chosen API port, so tests can run side by side.
  const base = {
    dns: { listen: ['127.0.0.1:0'] },
    api: { listen: '127.0.0.1:0' },
    upstreams: ['udp://127.0.0.1:9'],
    dataDir: tempDir('egressd-test-'),
    log: { level: 'info' }
  }
  const merged = {
    ...base,
    ...overrides,
    dns: { ...base.dns, ...(overrides.dns as object ?? {}) },
    api: { ...base.api, ...(overrides.api as object ?? {}) }
  }
  return parseConfig(JSON.stringify(merged), { file: 'test-config.json', resolvConf: '' })
}

export async function startTestDaemon (overrides: Record<string, unknown>, deps: { now?: () => number } = {}): Promise<TestDaemon> {
  const lines: string[] = []
  const sink = new Writable({ write (chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb() } })
  const config = testConfig(overrides)
  const log = createLogger(config.log.level, sink)
  const daemon = new Daemon(config, { log, now: deps.now })
  await daemon.start()
  const udp = daemon.addresses.find(a => a.protocol === 'udp')!
  return {
    daemon,
    host: udp.host,
    port: udp.port,
    logs: () => lines.map(l => JSON.parse(l) as Record<string, unknown>),
    close: () => daemon.close()
  }
}
