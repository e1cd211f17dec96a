// `egressd check-config`, `egressd query` and `egressd export nftables`: the policy as the daemon on
// the same config and data dir compiles it (its lists, the downloaded copies of URL sources, the
// custom rules and category overrides stored through the API), computed here without a daemon.

import { isIP } from 'node:net'
import { pino } from 'pino'
import type { Config } from '../config/types.js'
import { ConfigError, EgressdError, PolicyError } from '../errors.js'
import { firewallScript } from '../firewall/sync.js'
import type { CoverageSources } from '../firewall/coverage.js'
import { parseAddress } from '../learn/address.js'
import { CollateralGuard, type Hold } from '../learn/guard.js'
import { readLearned, readLearnedElements } from '../learn/store.js'
import { policyPath } from '../store/policy-db.js'
import { createLogger } from '../log.js'
import { loadRuleGuard } from '../packs/collateral.js'
import { buildEngine, hasGuardedRules, type EngineBuild } from '../policy/build.js'
import { checkAddress, checkName, type AddressCheck, type NameCheck } from '../policy/check.js'
import { normalizeName } from '../policy/names.js'
import { qtypeNumber } from '../qtypes.js'
import { readStoredPolicy } from '../stored-policy.js'
import { parseCliArgs } from '../cli-args.js'
import { loadCliConfig } from './config.js'
import { holdText } from './learned.js'
import type { CliIo } from './io.js'
import { formatPairs, json, OUTPUT_OPTIONS, outputMode } from './output.js'

export const POLICY_USAGE = `  egressd check-config [FILE | --config FILE]
      Validates the config (FILE, else the one found as for every command) and compiles its lists
      as the daemon on its data dir would. Prints every problem once: path.to.field: message, or
      FILE:LINE: message for list lines. Exit 0 if all is clean, 3 if valid but list lines were
      skipped (or other list warnings), 1 if invalid.
  egressd query NAME|ADDRESS [--client IP] [--type A] [--config FILE] [--json | --table]
      Prints the policy Verdict for NAME as the running daemon would decide it (no DNS traffic),
      stored custom rules and category overrides included, and for a blocked name the addresses it
      left in the learned sets. For an IP ADDRESS: how the firewall's table treats traffic to it
      (published ranges, opt-in shared ranges, learned sets from the policy file, what the guard
      holds back). Exit 0 if allowed, 3 if blocked.
  egressd export nftables [--table NAME] [--config FILE]
      Prints the nft script (sets of the enabled categories' address ranges, LAN rules, DNS
      redirect, DoT/DoQ reject); apply it with: egressd export nftables | nft -f -`

function usage (message: string): never {
  throw new EgressdError('EGRESSD_ERR_USAGE', `${message}\nusage:\n${POLICY_USAGE}`)
}

/** check-config's exit when the config is valid but the lists had warnings (skipped lines). */
export const EXIT_WARNINGS = 3

/**
 * The lists as the daemon on this config's data dir compiles them: with the downloaded copies of URL
 * sources and the store's custom rules and category overrides. What cannot be read is said on stderr.
 */
export function buildAsDaemon (config: Config, io: CliIo): { build: EngineBuild, missingCopies: number } {
  const stored = readStoredPolicy(config, createLogger('warn', pino.destination({ dest: 2, sync: true })))
  for (const n of stored.notes) io.err(`note: ${n}\n`)
  const missingCopies = config.blocklists.sources.filter(s => s.url !== undefined && stored.inputs.sourceFiles?.has(s.name) !== true).length
  return { build: buildEngine(config.blocklists, 1, { ...stored.inputs, sharedRanges: config.firewall.sharedRanges, guard: hasGuardedRules(config.blocklists) ? loadRuleGuard(config.blocklists).guard : undefined }), missingCopies }
}

export function checkConfig (argv: string[], io: CliIo): number {
  const { values, positionals } = parseCliArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, allowPositionals: true, strict: true })
  if (positionals.length > 1 || (positionals.length === 1 && values.config !== undefined)) usage('check-config takes one FILE (or --config FILE)')
  let config: Config
  try {
    config = loadCliConfig(io, positionals[0] ?? values.config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const i of err.issues) io.out(`${i.path === '' ? '(file)' : i.path}: ${i.message}\n`)
    io.err(`${err.file ?? 'the built-in defaults'}: ${err.issues.length} error(s)\n`)
    return 1
  }
  const name = config.source
  let result: { build: EngineBuild, missingCopies: number }
  try {
    result = buildAsDaemon(config, io)
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err
    // Every file's warnings, then the problems that stop the lists from loading.
    const warnings = err.warnings
    for (const w of warnings) io.out(`warning: ${w}\n`)
    for (const p of err.problems) io.out(`${p}\n`)
    const hint = folderHint(config, err.problems, io.bundledBlocklistsDir)
    if (hint !== undefined) io.out(hint)
    io.err(`${name}: ${err.problems.length} error(s) in the blocklists${warnings.length > 0 ? `, ${warnings.length} warning(s)` : ''}\n`)
    return 1
  }
  const { build: b, missingCopies } = result
  for (const w of b.warnings) io.out(`warning: ${w}\n`)
  for (const c of b.engine.categories) {
    if (c.enabled) for (const a of c.alsoAffects) io.out(`note: ${c.name} is on: it also affects ${a}\n`)
  }
  // Opt-in shared ranges (firewall only): say what else they cut off.
  for (const s of b.extras.shared.values()) {
    io.out(`note: firewall.sharedRanges: ${s.category}'s shared ranges are on (${s.v4.length + s.v6.length} ranges, ${s.file}): they also cut off ${s.cutsOff.join(', ')}\n`)
  }
  const skipped = b.lists.reduce((n, l) => n + l.skipped, 0)
  // URL sources without a downloaded copy yet are normal before the daemon's first download.
  const others = b.warnings.length - skipped - missingCopies
  const s = b.engine.stats()
  const summary = `${config.dns.listen.length} listen address(es), ${config.upstreams.length} upstream(s), ` +
    `${b.engine.categories.filter(x => x.enabled).length} categories enabled, ${s.names} name rules, ${s.addresses} address rules`
  if (skipped === 0 && others <= 0) {
    io.out(`${name}: ok (${summary})\n`)
    return 0
  }
  const what = [skipped > 0 ? `${skipped} list line(s) skipped` : '', others > 0 ? `${others} other warning(s)` : ''].filter(Boolean).join(', ')
  io.out(`${name}: valid, but ${what} (${summary})\n`)
  return EXIT_WARNINGS
}

/** A relative blocklists.dir now resolves against the config file's directory: say so when that folder is missing. */
function folderHint (config: Config, problems: readonly string[], bundled: string): string | undefined {
  if (config.blocklists.dir === bundled || !problems.some(p => p.startsWith(`${config.blocklists.dir}: cannot read the blocklists folder`))) return undefined
  return `hint: blocklists.dir is resolved against the config file's directory; remove it from the config to use the lists bundled with egressd (${bundled})\n`
}

export function exportRules (argv: string[], io: CliIo): number {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { table: { type: 'string' }, config: { type: 'string', short: 'c' } },
    allowPositionals: true,
    strict: true
  })
  if (positionals.length !== 1 || positionals[0] !== 'nftables') usage('export needs the word nftables')
  const loaded = loadCliConfig(io, values.config)
  const table = values.table ?? loaded.firewall.table
  if (!/^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(table)) usage(`--table must be letters, digits and _, starting with a letter; got "${table}"`)
  const config = { ...loaded, firewall: { ...loaded.firewall, table } }
  const { build } = buildAsDaemon(config, io)
  // The learned sets' current elements, from the policy file (as a running daemon writes them).
  const learned = config.learning.enabled ? readLearnedElements(policyPath(config.dataDir), io.now()) : new Map()
  io.out(firewallScript(config, build, `egressd export nftables (${config.source})`, undefined, learned))
  return 0
}

export function query (argv: string[], io: CliIo): number {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { client: { type: 'string' }, type: { type: 'string' }, config: { type: 'string', short: 'c' }, ...OUTPUT_OPTIONS },
    allowPositionals: true,
    strict: true
  })
  if (positionals.length !== 1) usage('query needs exactly one NAME or ADDRESS')
  const isAddress = isIP(positionals[0]) !== 0
  const name = isAddress ? undefined : normalizeName(positionals[0])
  if (name !== undefined && 'error' in name) usage(`not a name: ${name.error}`)
  const client = values.client ?? '127.0.0.1'
  if (isIP(client) === 0) usage(`--client must be an IP address, got "${client}"`)
  const qtype = qtypeNumber(values.type ?? 'A')
  if (qtype === undefined) usage(`--type must be a DNS record type (A, AAAA, MX, ... or a number), got "${values.type ?? ''}"`)
  if (isAddress && values.type !== undefined) usage('--type is for names; an ADDRESS is checked against the firewall\'s sets')
  const mode = outputMode(values, io.isTTY)
  const config = loadCliConfig(io, values.config)
  const build = buildAsDaemon(config, io).build
  // The learned sets as the daemon keeps them in its policy file (read-only); the guard's
  // never-block ranges (its memory of allowed answers is the daemon's: held rows carry it).
  const policyFile = policyPath(config.dataDir)
  const sources: CoverageSources = {
    config,
    build,
    learned: config.learning.enabled ? () => readLearned(policyFile, io.now()) : undefined,
    guard: config.learning.enabled ? neverBlockGuard(config, io) : undefined
  }
  const out = isAddress ? checkAddress(sources, positionals[0], client) : checkName(build.engine, (name as { name: string }).name, qtype, client, sources)
  if (out === undefined) usage(`not an IP address: ${positionals[0]}`)
  io.out(mode === 'json' ? json(out) : formatCheck(out))
  return out.verdict === 'block' ? 3 : 0
}

/** The collateral guard's never-block ranges for this config (no memory of allowed answers). */
function neverBlockGuard (config: Config, io: CliIo): (address: string) => Hold | undefined {
  const guard = new CollateralGuard({
    learning: config.learning,
    lanCidrs: config.firewall.lanCidrs,
    upstreamHosts: config.upstreams.map(u => u.host),
    log: createLogger('warn', pino.destination({ dest: 2, sync: true })),
    now: io.now
  })
  return a => {
    const p = parseAddress(a)
    if (p === undefined) return undefined
    const range = guard.neverBlock(p)
    return range === undefined ? undefined : { reason: 'never-block', range }
  }
}

/** `key  value` lines; the firewall part as one line per set or learned row. */
function formatCheck (out: NameCheck | AddressCheck): string {
  const { firewall, ...rest } = out
  const pairs: Record<string, unknown> = { ...rest }
  if (firewall !== undefined) {
    pairs.firewall = `${firewall.sync ? 'sync on' : 'sync off'} (table inet ${firewall.table}${firewall.learning ? '' : ', learning off'})` +
      (firewall.covered === undefined ? '' : firewall.covered ? ': in a rejected set' : ': in no set')
    const lines = (key: string, items: readonly string[]): void => { items.forEach((v, i) => { pairs[i === 0 ? key : `${key} ${i + 1}`] = v }) }
    lines('note', firewall.notes)
    lines('ranges', (firewall.ranges ?? []).map(r => `${r.set} ${r.range} (${r.category}${r.list !== undefined ? `, ${r.list}:${r.line ?? '?'}` : ''})`))
    lines('shared', (firewall.shared ?? []).map(r => `${r.set} ${r.range} (${r.category}; also cuts off ${r.cutsOff.join(', ')})`))
    lines('learned', firewall.learned.map(r => `${r.set} ${r.address} from ${r.name} (via ${r.via}, expires ${r.expiresAt})`))
    lines('held', firewall.held.map(r => `${r.address} (${r.category}, from ${r.name}): ${holdText(r)}`))
    if (firewall.guard !== undefined) pairs.guard = holdText(firewall.guard)
    if (firewall.allowRule !== undefined) pairs.allowRule = firewall.allowRule
  }
  return formatPairs(pairs)
}
