// `egressd lists ...`: keygen, sign and verify for the team that publishes lists, and update, which
// runs the daemon's own fetch -> verify -> check -> compile -> store path against the data dir
// (list hosts resolved through the configured upstreams). A running daemon reads the stored copies
// on SIGHUP or replaces them on its next cycle; `POST /api/v1/lists/update` makes it update now.

import { readFileSync, writeFileSync } from 'node:fs'
import { parseCliArgs } from '../cli-args.js'
import { pino } from 'pino'
import { loadConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import { formatTable, OUTPUT_OPTIONS, outputMode } from '../cli/output.js'
import { DnsMetrics } from '../dns/metrics.js'
import { UpstreamPool } from '../dns/upstream/pool.js'
import { UdpTurn } from '../dns/udp-turn.js'
import { EgressdError } from '../errors.js'
import { createLogger } from '../log.js'
import { loadRuleGuard } from '../packs/collateral.js'
import { buildEngine } from '../policy/build.js'
import { upstreamHostResolver } from './host-resolver.js'
import { generateKeys, privateKey, publicKey, signList, verifyList } from './signature.js'
import { ListUpdater } from './updater.js'

export const LISTS_USAGE = `  egressd lists update [--source NAME] [--force] [--config FILE] [--json | --table]
      Downloads the URL sources now (all, or NAME), checks them like the daemon does and stores the
      accepted copies in the data dir; --force accepts a list that shrank more than maxShrink.
      Prints one result per source (a table on a terminal, else one JSON line each); exit 0 if none
      was rejected, 1 otherwise. A running daemon picks the copies up on SIGHUP (or use
      POST /api/v1/lists/update to make it update itself).
  egressd lists keygen --out PREFIX
      Writes a new Ed25519 key pair: PREFIX.key (private, PKCS#8 PEM, mode 0600) and PREFIX.pub
      (public, SPKI PEM); prints the public key in base64 for blocklists.update.publicKeys.
  egressd lists sign FILE --key PRIVATE.pem [--out FILE.sig]
      Writes the detached signature of FILE (base64) to FILE.sig.
  egressd lists verify FILE --pubkey PUBLIC [--sig FILE.sig]
      Exit 0 if the signature verifies with the public key (PEM file), 1 if not.`

const usage = (message: string): never => { throw new EgressdError('EGRESSD_ERR_USAGE', `${message}\nusage:\n${LISTS_USAGE}`) }

const read = (file: string, what: string): Buffer => {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_USAGE', `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

export interface ListsCommandOptions {
  /** Passed to loadConfig: the installation's lists (see LoadConfigOptions). */
  bundledBlocklistsDir?: string
  /** How the CLI finds and loads the config (cli/config.ts: discovery, named on stderr); default loadConfig of --config. */
  loadConfig?: (file: string | undefined) => Config
  /** stdout is a terminal: a table by default. Default false (JSON lines). */
  isTTY?: boolean
}

export async function listsCommand (argv: string[], opts: ListsCommandOptions = {}): Promise<number> {
  const [sub, ...rest] = argv
  switch (sub) {
    case 'update': return await update(rest, opts)
    case 'keygen': return keygen(rest)
    case 'sign': return sign(rest)
    case 'verify': return verify(rest)
    default: return usage(sub === undefined ? 'lists needs a subcommand' : `unknown lists subcommand "${sub}"`)
  }
}

function keygen (argv: string[]): number {
  const { values } = parseCliArgs({ args: argv, options: { out: { type: 'string' } }, strict: true })
  if (values.out === undefined) usage('keygen needs --out PREFIX')
  const k = generateKeys()
  writeFileSync(`${values.out}.key`, k.privatePem, { mode: 0o600, flag: 'wx' })
  writeFileSync(`${values.out}.pub`, k.publicPem, { flag: 'wx' })
  process.stdout.write(`private key: ${values.out}.key (keep it secret)\npublic key:  ${values.out}.pub\nfor the config: ${k.publicBase64}\n`)
  return 0
}

function sign (argv: string[]): number {
  const { values, positionals } = parseCliArgs({ args: argv, options: { key: { type: 'string' }, out: { type: 'string' } }, allowPositionals: true, strict: true })
  if (positionals.length !== 1 || values.key === undefined) usage('sign needs FILE and --key PRIVATE.pem')
  const file = positionals[0]
  const key = privateKey(read(values.key as string, 'the private key').toString())
  const out = values.out ?? `${file}.sig`
  writeFileSync(out, signList(read(file, 'the list'), key))
  process.stdout.write(`${out}\n`)
  return 0
}

function verify (argv: string[]): number {
  const { values, positionals } = parseCliArgs({ args: argv, options: { pubkey: { type: 'string' }, sig: { type: 'string' } }, allowPositionals: true, strict: true })
  if (positionals.length !== 1 || values.pubkey === undefined) usage('verify needs FILE and --pubkey PUBLIC')
  const file = positionals[0]
  const key = publicKey(values.pubkey as string, read(values.pubkey as string, 'the public key').toString())
  const sigFile = values.sig ?? `${file}.sig`
  if (verifyList(read(file, 'the list'), read(sigFile, 'the signature'), [key]) === undefined) {
    process.stdout.write(`${file}: signature ${sigFile} does NOT verify\n`)
    return 1
  }
  process.stdout.write(`${file}: signature ok\n`)
  return 0
}

async function update (argv: string[], opts: ListsCommandOptions): Promise<number> {
  const { values } = parseCliArgs({
    args: argv,
    options: { source: { type: 'string' }, force: { type: 'boolean' }, config: { type: 'string', short: 'c' }, ...OUTPUT_OPTIONS },
    strict: true
  })
  const mode = outputMode(values, opts.isTTY === true)
  const config = opts.loadConfig?.(values.config) ?? loadConfig({ file: values.config, bundledBlocklistsDir: opts.bundledBlocklistsDir })
  // Logs on stderr; stdout carries the results.
  const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level, pino.destination({ dest: 2, sync: true }))
  const pool = new UpstreamPool({
    upstreams: config.upstreams,
    udpSockets: 2,
    turn: new UdpTurn(),
    ednsUdpSize: config.dns.ednsUdpSize,
    ttl: config.cache,
    log,
    metrics: new DnsMetrics(),
    now: Date.now
  })
  try {
    const updater = new ListUpdater({
      config,
      log,
      resolveHost: upstreamHostResolver(() => pool),
      // The same check as the daemon's swap: the lists must compile with the new copy.
      apply: files => { buildEngine(config.blocklists, 1, { sourceFiles: files, guard: loadRuleGuard(config.blocklists).guard }) }
    })
    const results = await updater.updateNow({ source: values.source, force: values.force === true })
    if (mode === 'json') for (const r of results) process.stdout.write(JSON.stringify(r) + '\n')
    else if (results.length > 0) process.stdout.write(formatTable(results, [{ title: 'SOURCE', value: r => r.source }, { title: 'OUTCOME', value: r => r.outcome }, { title: 'DETAIL', value: r => resultDetail(r) }]))
    if (results.length === 0) process.stderr.write('no URL sources in the config\n')
    return results.some(r => r.outcome === 'rejected') ? 1 : 0
  } finally {
    pool.close()
  }
}

/** What a table says about one update result besides its outcome: the figures or the reason. */
function resultDetail (r: object): string {
  return Object.entries(r).filter(([k, v]) => k !== 'source' && k !== 'outcome' && v !== undefined).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')
}
