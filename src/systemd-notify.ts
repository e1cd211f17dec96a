// Tells systemd (Type=notify) that egressd is ready, stopping, and alive (watchdog), through the
// systemd-notify tool: Node cannot send on a unix datagram socket itself. systemd-notify (since
// systemd 246) waits until the manager has taken the message, so it is not lost when it exits.
// Inactive unless the service manager set NOTIFY_SOCKET; the entry point passes the environment.

import { spawn } from 'node:child_process'
import type { Logger } from 'pino'

export class SystemdNotifier {
  readonly #active: boolean
  readonly #watchdogMs: number
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined

  constructor (env: NodeJS.ProcessEnv, log: Logger) {
    this.#active = (env.NOTIFY_SOCKET ?? '') !== ''
    const usec = Number(env.WATCHDOG_USEC ?? 0)
    this.#watchdogMs = this.#active && Number.isFinite(usec) && usec > 0 ? Math.floor(usec / 1000) : 0
    this.#log = log.child({ mod: 'systemd' })
  }

  #send (...states: string[]): void {
    if (!this.#active) return
    const child = spawn('systemd-notify', [`--pid=${process.pid}`, ...states], { stdio: 'ignore' })
    child.on('error', err => this.#log.warn({ err: err.message }, 'systemd-notify failed'))
  }

  /** READY=1, and the watchdog keep-alive at half the interval systemd asked for. */
  ready (status: string): void {
    this.#send('--ready', `--status=${status}`)
    if (this.#watchdogMs > 0 && this.#timer === undefined) {
      this.#timer = setInterval(() => this.#send('WATCHDOG=1'), Math.max(1000, this.#watchdogMs / 2))
      this.#timer.unref()
    }
  }

  reloading (): void { this.#send('RELOADING=1') }

  stopping (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#send('STOPPING=1')
  }
}
