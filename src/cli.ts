#!/usr/bin/env node
// The `egressd` command (package.json bin: dist/cli.js): picks the subcommand, hands it the CliIo
// (stdout that stops quietly on a closed pipe, stderr, terminal or not, env), and maps errors to
// messages and exit codes. Each command group lives in its own module: cli/start.ts (the daemon),
// cli/policy.ts (check-config, query, export), cli/admin.ts (rules, categories, reload, audit through
// the API), logs-command.ts, lists/cli.ts, api/token-cli.ts.
//
// Exit codes common to every command: 0 done, 1 failed (the message says why), 2 usage error.
// Some commands add their own (query: 3 blocked; check-config: 3 valid with warnings).

import { dirname } from 'node:path'
import { discoverConfig } from './config/discover.js'
import { loadConfig } from './config/load.js'
import { ConfigError, EgressdError, PolicyError } from './errors.js'
import { describeConfig, loadCliConfig } from './cli/config.js'
import { BUNDLED_BLOCKLISTS } from './cli/installation.js'
import { StdoutClosed, type CliIo } from './cli/io.js'

// Each command's module is imported when the command runs, not before: a command then loads only
// what it needs (an admin command does not load the daemon, fastify or SQLite), which keeps the
// CLI quick to start. The usage text imports them all.

/** The whole usage text (every command's part). */
async function usageText (): Promise<string> {
  const [start, policy, lists, packs, token, logs, admin, discovery, learned] = await Promise.all([
    import('./cli/start.js'), import('./cli/policy.js'), import('./lists/cli.js'), import('./packs/cli.js'),
    import('./api/token-cli.js'), import('./logs-command.js'), import('./cli/admin.js'), import('./cli/discovery.js'), import('./cli/learned.js')
  ])
  return `usage:
${start.START_USAGE}
${policy.POLICY_USAGE}
${lists.LISTS_USAGE}
${packs.PACKS_USAGE}
${token.TOKEN_USAGE}
${logs.LOGS_USAGE}
${discovery.DISCOVERY_USAGE}
${learned.LEARNED_USAGE}
${admin.ADMIN_USAGE}
  egressd help

  Every command that reads a config takes --config FILE, else $EGRESSD_CONFIG, else
  /etc/egressd/egressd.yaml when it exists, else the built-in defaults, and names the config and the
  data dir it used on stderr. Relative paths in a config file are relative to the file's directory.`
}

/** The value of --config/-c in argv (before `--`), if given, in any of its spellings. */
export function configFlag (argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') break
    if (a === '--config' || a === '-c') return argv[i + 1] ?? ''
    if (a.startsWith('--config=')) return a.slice('--config='.length)
    if (/^-c./.test(a)) return a.slice(2)
  }
  return undefined
}

/**
 * `start` keeps its own argument parsing (cli/start.ts): the config found here is handed to it as
 * --config, so SIGHUP re-reads the same file.
 */
async function startCommand (argv: string[], io: CliIo): Promise<void> {
  const choice = discoverConfig(configFlag(argv), io.env)
  const args = choice.file !== undefined && choice.origin !== '--config' ? ['--config', choice.file, ...argv] : argv
  let config
  try {
    // Only for the data dir in the message; start() loads the config itself, with its overrides.
    config = loadConfig({ file: choice.file, env: io.env, bundledBlocklistsDir: io.bundledBlocklistsDir })
  } catch {
    config = undefined // start() reports it
  }
  io.err(describeConfig(choice, config, io.env))
  const { start } = await import('./cli/start.js')
  await start(args)
}

export async function main (argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'start': await startCommand(rest, io); return -1 // keeps running
    case 'check-config': return (await import('./cli/policy.js')).checkConfig(rest, io)
    case 'query': return (await import('./cli/policy.js')).query(rest, io)
    case 'export': return (await import('./cli/policy.js')).exportRules(rest, io)
    case 'lists':
      if (rest[0] === 'generate' || rest[0] === 'coverage' || rest[0] === 'extract') return (await import('./packs/cli.js')).packsCommand(rest[0], rest.slice(1), io, dirname(io.bundledBlocklistsDir))
      return await (await import('./lists/cli.js')).listsCommand(rest, { bundledBlocklistsDir: io.bundledBlocklistsDir, loadConfig: file => loadCliConfig(io, file), isTTY: io.isTTY })
    case 'token': return (await import('./api/token-cli.js')).tokenCommand(rest, io.out)
    case 'logs': return (await import('./logs-command.js')).logsCommand(rest, io.out, io.now, { bundledBlocklistsDir: io.bundledBlocklistsDir, loadConfig: file => loadCliConfig(io, file), isTTY: io.isTTY })
    case 'discovery': return (await import('./cli/discovery.js')).discoveryCommand(rest, io.out, io.now, { bundledBlocklistsDir: io.bundledBlocklistsDir, loadConfig: file => loadCliConfig(io, file), isTTY: io.isTTY })
    case 'rules': return await (await import('./cli/admin.js')).rulesCommand(rest, io)
    case 'categories': return await (await import('./cli/admin.js')).categoriesCommand(rest, io)
    case 'reload': return await (await import('./cli/admin.js')).reloadCommand(rest, io)
    case 'audit': return await (await import('./cli/admin.js')).auditCommand(rest, io)
    case 'learned': return (await import('./cli/learned.js')).learnedCommand(rest, io)
    case 'help': case '--help': case '-h': io.out(await usageText() + '\n'); return 0
    default: throw new EgressdError('EGRESSD_ERR_USAGE', `${cmd === undefined ? 'no command given' : `unknown command "${cmd}"`}\n${await usageText()}`)
  }
}

const stdoutClosed = (): boolean => {
  const errored: NodeJS.ErrnoException | null = process.stdout.errored
  return errored?.code === 'EPIPE'
}

const io: CliIo = {
  // Throws StdoutClosed once the reader is gone, so long outputs stop early.
  out: text => {
    if (stdoutClosed()) throw new StdoutClosed()
    process.stdout.write(text)
  },
  err: text => { process.stderr.write(text) },
  isTTY: process.stdout.isTTY === true,
  env: process.env,
  now: Date.now,
  bundledBlocklistsDir: BUNDLED_BLOCKLISTS
}

// A closed stdout (the reader exited: `| head`) ends the command quietly with exit 0, whatever was
// writing. The error comes as an event after the failed write; io.out sees it sooner.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

main(process.argv.slice(2), io).then(code => {
  if (code >= 0) process.exitCode = code
}, async err => {
  if (err instanceof StdoutClosed || stdoutClosed()) { process.exitCode = 0; return }
  if (err instanceof ConfigError) process.stderr.write(`egressd: invalid configuration\n${err.message}\n`)
  else if (err instanceof PolicyError) process.stderr.write(`egressd: the blocklists cannot be loaded\n${err.message}\n`)
  else if (err instanceof EgressdError) process.stderr.write(`egressd: ${err.message}\n`)
  else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) process.stderr.write(`egressd: ${(err as Error).message}\n${await usageText()}\n`)
  else process.stderr.write(`egressd: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = (err instanceof EgressdError && err.code === 'EGRESSD_ERR_USAGE') || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true ? 2 : 1
})
