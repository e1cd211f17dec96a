// Type=notify readiness and watchdog through the real systemd-notify, received on a unix datagram
// socket by a small python listener that plays the service manager (and answers the barrier).

import t from 'tap'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { requireTool } from './helpers/tools.js'
import { freePort } from './helpers/ports.js'
import { tempDir } from './helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli.js')

t.test('READY=1 with a status once DNS listens, WATCHDOG=1 while running, STOPPING=1 on SIGTERM', async t => {
  requireTool('systemd-notify')
  const python = requireTool('python3')
  const dir = tempDir('egressd-notify-')
  const sock = join(dir, 'notify')
  const manager = spawn(python, [resolve(import.meta.dirname, 'fixtures', 'notify-socket.py'), sock], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { manager.kill() })
  let messages = ''
  manager.stdout.on('data', d => { messages += String(d) })
  const until = async (cond: () => boolean, ms = 8000): Promise<void> => {
    for (const end = Date.now() + ms; !cond() && Date.now() < end;) await new Promise(resolve => setTimeout(resolve, 25))
  }
  await until(() => messages.includes('bound'))

  const port = await freePort()
  const config = join(dir, 'egressd.yaml')
  writeFileSync(config, `dns: { listen: ["127.0.0.1:${port}"] }\napi: { listen: "127.0.0.1:0" }\nupstreams: ["udp://127.0.0.1:9"]\nlog: { level: warn }\n`)
  const daemon = spawn(process.execPath, [CLI, 'start', '--config', config], {
    env: { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '2000000' },
    stdio: 'ignore'
  })
  t.teardown(() => { daemon.kill('SIGKILL') })
  const exited = new Promise<number | null>(resolve => daemon.once('exit', code => resolve(code)))

  await until(() => messages.includes('READY=1'))
  t.match(messages, new RegExp(`READY=1 STATUS=serving DNS on 127\\.0\\.0\\.1:${port}`))
  t.match(messages, new RegExp(`MAINPID=${daemon.pid}`), 'the daemon names itself as the main process')
  await until(() => messages.includes('WATCHDOG=1'), 4000)
  t.match(messages, /WATCHDOG=1/, 'watchdog keep-alive at half of WATCHDOG_USEC')
  daemon.kill('SIGTERM')
  t.equal(await exited, 0)
  await until(() => messages.includes('STOPPING=1'), 3000)
  t.match(messages, /STOPPING=1/)
})
