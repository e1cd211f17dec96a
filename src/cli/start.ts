// `egressd start`: loads the config, builds and starts the Daemon, tells systemd, and wires the
// signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload, audited by the daemon). The entry point
// (src/cli.ts) has already chosen the config file (--config, EGRESSD_CONFIG, /etc/egressd) and put
// it in argv as --config. The body of start() belongs to the composition (the lead's), moved here
// verbatim from src/cli.ts.

import { parseCliArgs } from '../cli-args.js'
import { loadConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import { Daemon } from '../daemon.js'
import { ConfigError, PolicyError } from '../errors.js'
import { createLogger } from '../log.js'
import { SystemdNotifier } from '../systemd-notify.js'
import { BUNDLED_BLOCKLISTS } from './installation.js'

export const START_USAGE = `  egressd start [--config FILE] [--listen ADDR]... [--upstream URL]... [--blocklist FILE]...
      Runs the DNS filter on the config found as for every command (--config, EGRESSD_CONFIG,
      /etc/egressd/egressd.yaml), else on the built-in defaults (DNS on 127.0.0.1:5353 and
      [::1]:5353, upstreams from /etc/resolv.conf). --listen and --upstream replace dns.listen and
      upstreams of the config; --blocklist adds a plain list file (one name a line) to the lists.`

export async function start (argv: string[]): Promise<void> {
  const { values } = parseCliArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', multiple: true },
      upstream: { type: 'string', multiple: true },
      blocklist: { type: 'string', multiple: true }
    },
    strict: true
  })
  const load = (): Config => loadConfig({
    file: values.config,
    bundledBlocklistsDir: BUNDLED_BLOCKLISTS,
    overrides: { listen: values.listen, upstreams: values.upstream, blocklists: values.blocklist }
  })
  const config = load()
  const log = createLogger(config.log.level)
  const daemon = new Daemon(config, { log, loadConfig: load })
  await daemon.start()
  const systemd = new SystemdNotifier(process.env, log)
  systemd.ready(`serving DNS on ${daemon.addresses.filter(a => a.protocol === 'udp').map(a => `${a.host}:${a.port}`).join(', ')}`)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    systemd.stopping()
    log.info({ signal }, 'stopping: finishing queries in flight')
    // Exit once the log is written out (pino writes asynchronously).
    const exit = (code: number): void => { log.flush(() => process.exit(code)) }
    daemon.close().then(() => exit(0), err => {
      log.error({ err }, 'error while stopping')
      exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => {
    systemd.reloading()
    try {
      // Counted, logged and audited (actor `signal`) by the daemon, rejected or not.
      daemon.reloadConfig({ trigger: 'signal', actor: { name: 'signal', client: '' } })
    } catch (err) {
      if (!(err instanceof ConfigError) && !(err instanceof PolicyError)) log.error({ err }, 'reload failed')
    }
    systemd.ready('reloaded')
  })
}
