#!/usr/bin/env node
// The `egressd` command: start the daemon, or check a config file. Parses argv, loads the config
// once, wires signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload) and maps errors to exit codes.

import { parseArgs } from 'node:util'
import { loadConfig } from './config/load.js'
import type { Config } from './config/types.js'
import { ConfigError, EgressdError } from './errors.js'
import { createLogger } from './log.js'
import { Daemon } from './daemon.js'

const USAGE = `usage:
  egressd start [--config FILE] [--listen ADDR]... [--upstream URL]...
      Runs the DNS filter. Without --config, runs on the built-in defaults
      (DNS on 127.0.0.1:5353 and [::1]:5353, upstreams from /etc/resolv.conf).
      --listen and --upstream replace dns.listen and upstreams of the config.
  egressd check-config FILE
      Validates FILE; prints every error as path.to.field: message. Exit 0 if valid, 1 if not.
  egressd help`

function usage (message?: string): never {
  throw new EgressdError('EGRESSD_ERR_USAGE', message === undefined ? USAGE : `${message}\n${USAGE}`)
}

async function start (argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', multiple: true },
      upstream: { type: 'string', multiple: true }
    },
    strict: true
  })
  const load = (): Config => loadConfig({
    file: values.config,
    overrides: { listen: values.listen, upstreams: values.upstream }
  })
  const config = load()
  const log = createLogger(config.log.level)
  const daemon = new Daemon(config, { log })
  await daemon.start()

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'stopping: finishing queries in flight')
    daemon.close().then(() => { log.flush(); process.exit(0) }, err => {
      log.error({ err }, 'error while stopping')
      log.flush()
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => {
    try {
      daemon.reload(load())
    } catch (err) {
      const issues = err instanceof ConfigError ? err.issues : undefined
      log.error({ err: err instanceof ConfigError ? undefined : err, issues, config: values.config }, `reload rejected, the running config stays: ${(err as Error).message}`)
    }
  })
}

function checkConfig (argv: string[]): number {
  const file = argv[0]
  if (file === undefined || argv.length > 1) usage('check-config needs exactly one FILE')
  try {
    const c = loadConfig({ file })
    process.stdout.write(`${file}: ok (${c.dns.listen.length} listen address(es), ${c.upstreams.length} upstream(s))\n`)
    return 0
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const i of err.issues) process.stdout.write(`${i.path === '' ? '(file)' : i.path}: ${i.message}\n`)
    process.stderr.write(`${file}: ${err.issues.length} error(s)\n`)
    return 1
  }
}

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'start': await start(rest); return -1 // keeps running
    case 'check-config': return checkConfig(rest)
    case 'help': case '--help': case '-h': process.stdout.write(USAGE + '\n'); return 0
    default: usage(cmd === undefined ? 'no command given' : `unknown command "${cmd}"`)
  }
}

main(process.argv.slice(2)).then(code => {
  if (code >= 0) process.exitCode = code
}, err => {
  if (err instanceof ConfigError) process.stderr.write(`egressd: invalid configuration\n${err.message}\n`)
  else if (err instanceof EgressdError) process.stderr.write(`egressd: ${err.message}\n`)
  else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) process.stderr.write(`egressd: ${(err as Error).message}\n${USAGE}\n`)
  else process.stderr.write(`egressd: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = (err instanceof EgressdError && err.code === 'EGRESSD_ERR_USAGE') ? 2 : 1
})
