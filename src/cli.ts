#!/usr/bin/env node
// The `egressd` command: start the daemon, or check a config file. Parses argv, loads the config
// once, wires signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload) and maps errors to exit codes.

import { parseCliArgs } from './cli-args.js'
import { loadConfig } from './config/load.js'
import type { Config } from './config/types.js'
import { ConfigError, EgressdError, PolicyError } from './errors.js'
import { isIP } from 'node:net'
import { createLogger } from './log.js'
import { pino } from 'pino'
import { buildEngine, type EngineBuild } from './policy/build.js'
import { readStoredPolicy } from './stored-policy.js'
import { checkName } from './policy/check.js'
import { normalizeName } from './policy/names.js'
import { Daemon } from './daemon.js'
import { firewallScript } from './firewall/sync.js'
import { SystemdNotifier } from './systemd-notify.js'
import { LOGS_USAGE, logsCommand } from './logs-command.js'
import { LISTS_USAGE, listsCommand } from './lists/cli.js'
import { TOKEN_USAGE, tokenCommand } from './api/token-cli.js'
import { fileURLToPath } from 'node:url'

/** The lists shipped with egressd, next to dist/ in the installation: the default blocklists.dir. */
const BUNDLED_BLOCKLISTS = fileURLToPath(new URL('../blocklists', import.meta.url))

const USAGE = `usage:
  egressd start [--config FILE] [--listen ADDR]... [--upstream URL]... [--blocklist FILE]...
      Runs the DNS filter. Without --config, runs on the built-in defaults
      (DNS on 127.0.0.1:5353 and [::1]:5353, upstreams from /etc/resolv.conf).
      --listen and --upstream replace dns.listen and upstreams of the config;
      --blocklist adds a plain list file (one name a line) to the lists.
  egressd check-config FILE
      Validates FILE and compiles its blocklists; prints every error as path.to.field: message
      (or FILE:LINE: message for list lines). Exit 0 if valid, 1 if not.
  egressd query NAME [--client IP] [--type A] [--config FILE]
      Prints the policy Verdict for NAME as the running daemon would decide it (no DNS traffic).
      Exit 0 if allowed, 3 if blocked.
  egressd export nftables [--table NAME] [--config FILE]
      Prints the nft script (sets of the enabled categories' address ranges, LAN rules, DNS
      redirect, DoT/DoQ reject); apply it with: egressd export nftables | nft -f -
${LISTS_USAGE}
${TOKEN_USAGE}
${LOGS_USAGE}
  egressd help`

function usage (message?: string): never {
  throw new EgressdError('EGRESSD_ERR_USAGE', message === undefined ? USAGE : `${message}\n${USAGE}`)
}

async function start (argv: string[]): Promise<void> {
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

/**
 * The lists as the daemon on this config's data dir compiles them: with the downloaded copies of URL
 * sources and the store's custom rules and category overrides. What cannot be read is said on stderr.
 */
function buildAsDaemon (config: Config): EngineBuild {
  const stored = readStoredPolicy(config, createLogger('warn', pino.destination({ dest: 2, sync: true })))
  for (const n of stored.notes) process.stderr.write(`note: ${n}\n`)
  return buildEngine(config.blocklists, 1, stored.inputs)
}

function checkConfig (argv: string[]): number {
  const file = argv[0]
  if (file === undefined || argv.length > 1) usage('check-config needs exactly one FILE')
  try {
    const c = loadConfig({ file, bundledBlocklistsDir: BUNDLED_BLOCKLISTS })
    const b = buildAsDaemon(c)
    for (const w of b.warnings) process.stdout.write(`warning: ${w}\n`)
    const s = b.engine.stats()
    process.stdout.write(`${file}: ok (${c.dns.listen.length} listen address(es), ${c.upstreams.length} upstream(s), ` +
      `${b.engine.categories.filter(x => x.enabled).length} categories enabled, ${s.names} name rules, ${s.addresses} address rules)\n`)
    return 0
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const i of err.issues) process.stdout.write(`${i.path === '' ? '(file)' : i.path}: ${i.message}\n`)
      process.stderr.write(`${file}: ${err.issues.length} error(s)\n`)
      return 1
    }
    if (err instanceof PolicyError) {
      for (const p of err.problems) process.stdout.write(`${p}\n`)
      process.stderr.write(`${file}: ${err.problems.length} error(s) in the blocklists\n`)
      return 1
    }
    throw err
  }
}

function exportRules (argv: string[]): number {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { table: { type: 'string' }, config: { type: 'string', short: 'c' } },
    allowPositionals: true,
    strict: true
  })
  if (positionals.length !== 1 || positionals[0] !== 'nftables') usage('export needs the word nftables')
  const loaded = loadConfig({ file: values.config, bundledBlocklistsDir: BUNDLED_BLOCKLISTS })
  const table = values.table ?? loaded.firewall.table
  if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(table)) usage(`--table must be letters, digits and _, starting with a letter; got "${table}"`)
  const config = { ...loaded, firewall: { ...loaded.firewall, table } }
  const build = buildAsDaemon(config)
  process.stdout.write(firewallScript(config, build, `egressd export nftables (${config.source})`))
  return 0
}

function query (argv: string[]): number {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { client: { type: 'string' }, type: { type: 'string' }, config: { type: 'string', short: 'c' } },
    allowPositionals: true,
    strict: true
  })
  if (positionals.length !== 1) usage('query needs exactly one NAME')
  const name = normalizeName(positionals[0])
  if ('error' in name) usage(`not a name: ${name.error}`)
  const client = values.client ?? '127.0.0.1'
  if (isIP(client) === 0) usage(`--client must be an IP address, got "${client}"`)
  const config = loadConfig({ file: values.config, bundledBlocklistsDir: BUNDLED_BLOCKLISTS })
  const engine = buildAsDaemon(config).engine
  const out = checkName(engine, name.name, values.type ?? 'A', client)
  process.stdout.write(JSON.stringify(out, null, 2) + '\n')
  return out.verdict === 'block' ? 3 : 0
}

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'start': await start(rest); return -1 // keeps running
    case 'check-config': return checkConfig(rest)
    case 'query': return query(rest)
    case 'export': return exportRules(rest)
    case 'lists': return await listsCommand(rest, { bundledBlocklistsDir: BUNDLED_BLOCKLISTS })
    case 'token': return tokenCommand(rest, writeOut)
    case 'logs': return logsCommand(rest, writeOut, Date.now, { bundledBlocklistsDir: BUNDLED_BLOCKLISTS })
    case 'help': case '--help': case '-h': process.stdout.write(USAGE + '\n'); return 0
    default: usage(cmd === undefined ? 'no command given' : `unknown command "${cmd}"`)
  }
}

/** Thrown by writeOut once stdout is closed (`egressd logs search | head -1`): stops the output loop. */
class StdoutClosed extends Error {}

const stdoutClosed = (): boolean => (process.stdout.errored as NodeJS.ErrnoException | null)?.code === 'EPIPE'

/** Writes to stdout; throws StdoutClosed once the reader is gone, so long outputs stop early. */
function writeOut (text: string): void {
  if (stdoutClosed()) throw new StdoutClosed()
  process.stdout.write(text)
}

// A closed stdout (the reader exited: `| head`) ends the command quietly with exit 0, whatever was
// writing. The error comes as an event after the failed write; writeOut sees it sooner.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

main(process.argv.slice(2)).then(code => {
  if (code >= 0) process.exitCode = code
}, err => {
  if (err instanceof StdoutClosed || stdoutClosed()) { process.exitCode = 0; return }
  if (err instanceof ConfigError) process.stderr.write(`egressd: invalid configuration\n${err.message}\n`)
  else if (err instanceof PolicyError) process.stderr.write(`egressd: the blocklists cannot be loaded\n${err.message}\n`)
  else if (err instanceof EgressdError) process.stderr.write(`egressd: ${err.message}\n`)
  else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) process.stderr.write(`egressd: ${(err as Error).message}\n${USAGE}\n`)
  else process.stderr.write(`egressd: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = (err instanceof EgressdError && err.code === 'EGRESSD_ERR_USAGE') ? 2 : 1
})
