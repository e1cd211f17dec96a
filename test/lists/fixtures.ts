// Shared setup for the list-update tests: a dnsmasq upstream that also knows `lists.test`
// (127.0.0.1), a throwaway CA with a certificate for 127.0.0.1 and lists.test, list texts, a daemon
// with one URL source, and domain-specific checks (blocked by the list, or answered upstream).

import { dig } from '../helpers/dig.js'
import { startDnsmasq, TEST_ZONE, type Dnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { makeTestPki, type KeyPair, type TestPki } from '../helpers/tls-fronts.js'
import { tempDir } from '../helpers/tmp.js'

export const EMPTY_BLOCKLISTS = tempDir('egressd-lists-bundled-')

/** 20 filler names plus first.test: the version every test starts from. */
export const V1 = ['# central list v1', 'first.test', ...Array.from({ length: 20 }, (_, i) => `filler-${i}.test`)].join('\n') + '\n'
/** V1 plus h.test (which dnsmasq answers). */
export const V2 = V1 + 'h.test\n'

export interface World {
  readonly dns: Dnsmasq
  readonly pki: TestPki
  readonly cert: KeyPair
  close (): Promise<void>
}

export async function startWorld (): Promise<World> {
  const dns = await startDnsmasq({ lines: [...TEST_ZONE, 'host-record=lists.test,127.0.0.1', 'host-record=public.test,192.0.2.80'] })
  const pki = makeTestPki()
  const cert = pki.issue('lists.test', ['DNS:lists.test', 'IP:127.0.0.1'])
  return { dns, pki, cert, close: async () => { await dns.stop(); pki.remove() } }
}

export interface DaemonOptions {
  readonly source: Record<string, unknown>
  readonly update?: Record<string, unknown>
  readonly dataDir?: string
}

/** A daemon with one URL source named `central`, forwarding to the world's dnsmasq. */
export async function listDaemon (world: World, o: DaemonOptions): Promise<TestDaemon> {
  return startTestDaemon({
    upstreams: [world.dns.url],
    ...(o.dataDir !== undefined && { dataDir: o.dataDir }),
    blocklists: {
      dir: EMPTY_BLOCKLISTS,
      sources: [{ name: 'central', format: 'plain', timeoutMs: 2000, ...o.source }],
      update: { allowHosts: ['127.0.0.1'], ...o.update }
    }
  })
}

/** Waits until every source had its first (start-up) attempt and nothing runs any more. */
export async function firstAttempts (td: TestDaemon): Promise<void> {
  for (let i = 0; i < 200 && td.daemon.lists.status().some(s => s.lastAttempt === undefined); i++) {
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  await td.daemon.lists.settled()
}

const ask = (td: TestDaemon, name: string) => dig([`@${td.host}`, '-p', String(td.port), name, 'A', '+tries=1', '+time=3'])

/** True when the daemon answers `name` with a block (NXDOMAIN + EDE 15 Blocked). */
export async function blocked (td: TestDaemon, name: string): Promise<boolean> {
  const r = await ask(td, name)
  return r.status === 'NXDOMAIN' && /15 \(Blocked\)/.test(r.ede ?? '')
}

/** True when `name` is answered by the upstream (NOERROR with an address, no EDE). */
export async function answered (td: TestDaemon, name: string): Promise<boolean> {
  const r = await ask(td, name)
  return r.status === 'NOERROR' && r.answers.some(a => a.type === 'A') && r.ede === undefined
}

export const warnings = (td: TestDaemon) => td.logs().filter(l => l.msg === 'list update rejected; the previous version stays in use')
