// A real upstream for integration tests: dnsmasq on a loopback address, authoritative for `test.`
// (so negative answers carry an SOA), serving the records the test asks for. Stopped by its PID.

import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { requireTool } from './tools.js'
import { freePort } from './ports.js'
import { dig } from './dig.js'
import { tempDir } from './tmp.js'

export interface Dnsmasq {
  readonly host: string
  readonly port: number
  /** `udp://host:port`, ready for the daemon's upstreams. */
  readonly url: string
  readonly log: () => string
  stop (): Promise<void>
}

/** Standard test zone: h.test A+AAAA, alias.test CNAME h.test, big.test with ~2 KB of TXT (truncates over UDP). */
export const TEST_ZONE = [
  'host-record=h.test,192.0.2.11,2001:db8::11',
  'host-record=other.test,192.0.2.12',
  'cname=alias.test,h.test',
  ...Array.from({ length: 8 }, (_, i) => `txt-record=big.test,"${String.fromCharCode(97 + i).repeat(250)}"`)
]

/**
 * Starts dnsmasq on loopback. By default it is authoritative for `test.` (TEST_ZONE, or `lines`);
 * with `auth: false` it is a plain local server answering from `lines` alone (e.g. `address=/#/...`,
 * which an authoritative-only dnsmasq would refuse for names outside its zone).
 */
export async function startDnsmasq (opts: { host?: string, lines?: string[], ttl?: number, auth?: boolean } = {}): Promise<Dnsmasq> {
  const bin = requireTool('dnsmasq')
  const host = opts.host ?? '127.0.0.1'
  const port = await freePort(host)
  const dir = tempDir('egressd-dnsmasq-')
  const conf = join(dir, 'dnsmasq.conf')
  const ttl = opts.ttl ?? 300
  writeFileSync(conf, [
    `port=${port}`, `listen-address=${host}`, 'bind-interfaces', 'no-resolv', 'no-hosts', 'no-poll',
    ...(opts.auth === false
      ? []
      : [`auth-server=ns.test,${host}`, 'auth-zone=test', `auth-ttl=${ttl}`, 'auth-soa=1,hostmaster.test,1200,120,604800,60']),
    `local-ttl=${ttl}`, 'cache-size=0', 'log-queries', 'log-facility=-',
    ...(opts.lines ?? TEST_ZONE)
  ].join('\n') + '\n')
  let output = ''
  const child: ChildProcess = spawn(bin, ['-k', '-C', conf, '--pid-file='], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', d => { output += String(d) })
  child.stderr?.on('data', d => { output += String(d) })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  // Ready when it answers (any rcode: the zone may not hold h.test).
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) break
    const r = await dig([`@${host}`, '-p', String(port), 'h.test', 'A', '+tries=1', '+time=1']).catch(() => undefined)
    if (r !== undefined) return { host, port, url: `udp://${host}:${port}`, log: () => output, stop }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  await stop()
  throw new Error(`dnsmasq did not start on ${host}:${port}:\n${output}`)
}
