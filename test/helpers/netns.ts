// The network namespaces the firewall tests build: client --(lan)-- gateway --(wan)-- servers.
//
//   client 10.99.1.2 (and `clientAddresses`)  —  gateway 10.99.1.1 | 10.99.2.1  —  servers 10.99.2.2
//
// The servers' namespace holds `serverAddresses` on its loopback, routed from the gateway through
// 10.99.2.2; the gateway forwards. Interface names start with `tag` (the gateway's LAN side is
// `${tag}gl`). Every test traffic stays inside these namespaces; teardown deletes them.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { requireTool } from './tools.js'

export interface Topology {
  readonly tag: string
  readonly ns: { readonly client: string, readonly gw: string, readonly server: string }
  /** The gateway's LAN interface (for firewall.lanInterfaces). */
  readonly lanInterface: string
  /** Spawns `cmd args` inside namespace `name` (stdio piped). */
  readonly inNs: (name: string, cmd: string, args: string[]) => ChildProcess
  /** From the client (from its address `from`): 'ok' if a TCP connection opens, else the error code or TIMEOUT. */
  readonly connect: (host: string, port: number, from?: string) => string
  readonly teardown: () => void
}

export function netnsTopology (opts: { tag: string, clientAddresses?: string[], serverAddresses: string[], routes: string[] }): Topology {
  const ip = requireTool('ip')
  const { tag } = opts
  const ns = { client: `${tag}c`, gw: `${tag}g`, server: `${tag}s` }
  const sh = (...args: string[]): void => { execFileSync(ip, args, { stdio: 'pipe' }) }
  const teardown = (): void => { for (const n of Object.values(ns)) spawnSync(ip, ['netns', 'del', n], { stdio: 'ignore' }) }
  teardown()
  for (const n of Object.values(ns)) sh('netns', 'add', n)
  sh('link', 'add', `${tag}cl`, 'type', 'veth', 'peer', 'name', `${tag}gl`)
  sh('link', 'add', `${tag}gw`, 'type', 'veth', 'peer', 'name', `${tag}sw`)
  sh('link', 'set', `${tag}cl`, 'netns', ns.client)
  sh('link', 'set', `${tag}gl`, 'netns', ns.gw)
  sh('link', 'set', `${tag}gw`, 'netns', ns.gw)
  sh('link', 'set', `${tag}sw`, 'netns', ns.server)
  const x = (n: string, ...a: string[]): void => sh('-n', n, ...a)
  for (const n of Object.values(ns)) x(n, 'link', 'set', 'lo', 'up')
  for (const a of ['10.99.1.2', ...(opts.clientAddresses ?? [])]) x(ns.client, 'addr', 'add', `${a}/24`, 'dev', `${tag}cl`)
  x(ns.client, 'link', 'set', `${tag}cl`, 'up')
  x(ns.client, 'route', 'add', 'default', 'via', '10.99.1.1')
  x(ns.gw, 'addr', 'add', '10.99.1.1/24', 'dev', `${tag}gl`)
  x(ns.gw, 'addr', 'add', '10.99.2.1/24', 'dev', `${tag}gw`)
  x(ns.gw, 'link', 'set', `${tag}gl`, 'up')
  x(ns.gw, 'link', 'set', `${tag}gw`, 'up')
  for (const r of opts.routes) x(ns.gw, 'route', 'add', r, 'via', '10.99.2.2')
  x(ns.server, 'addr', 'add', '10.99.2.2/24', 'dev', `${tag}sw`)
  x(ns.server, 'link', 'set', `${tag}sw`, 'up')
  for (const a of opts.serverAddresses) x(ns.server, 'addr', 'add', `${a}/32`, 'dev', 'lo')
  x(ns.server, 'route', 'add', 'default', 'via', '10.99.2.1')
  execFileSync(ip, ['netns', 'exec', ns.gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], { stdio: 'pipe' })
  return {
    tag,
    ns,
    lanInterface: `${tag}gl`,
    inNs: (name, cmd, args) => spawn(ip, ['netns', 'exec', name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }),
    connect: (host, port, from) => {
      const local = from === undefined ? '' : `localAddress:'${from}',`
      const code = `const s=require('net').connect({host:'${host}',port:${port},${local}timeout:2000});` +
        `s.on('connect',()=>{console.log('ok');s.destroy()});s.on('timeout',()=>{console.log('TIMEOUT');s.destroy()});s.on('error',e=>console.log(e.code))`
      return execFileSync(ip, ['netns', 'exec', ns.client, process.execPath, '-e', code], { encoding: 'utf8', timeout: 10_000 }).trim()
    },
    teardown
  }
}
