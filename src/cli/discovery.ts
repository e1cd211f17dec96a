// `egressd discovery`: the banned-app discovery report (store/discovery.ts, the same as GET
// /api/v1/discovery) read directly from the block log's file (read-only), as `egressd logs search`
// does: one table line per client and category on a terminal, the report as JSON otherwise.

import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseCliArgs } from '../cli-args.js'
import { loadConfig } from '../config/load.js'
import type { Config } from '../config/types.js'
import { EgressdError, StoreError } from '../errors.js'
import { openDatabase } from '../store/db.js'
import { discoveryReport, parseDiscovery, PATTERN_RULE, type DiscoveryCategory, type DiscoveryClient, type DiscoveryReport } from '../store/discovery.js'
import { formatTable, json, outputMode } from './output.js'

export const DISCOVERY_USAGE = `  egressd discovery [--client IP|CIDR] [--category C] [--since T] [--until T] [--limit N]
                    [--json | --table] [--config FILE | --db FILE]
      Per client, the banned services it tried to reach by DNS and at the firewall (default since
      -7d): attempts, first and last seen, attempts per day, and the pattern: installed-app
      (repeated over at least 30 minutes, on 2 days or in 3 ten-minute windows), single-click
      (everything within 10 minutes, at most 20 events) or unclear. Read from the database file.`

export interface DiscoveryCommandOptions {
  bundledBlocklistsDir?: string
  loadConfig?: (file: string | undefined) => Config
  /** stdout is a terminal: a table by default. */
  isTTY?: boolean
}

const usage = (message: string): never => { throw new EgressdError('EGRESSD_ERR_USAGE', `${message}\nusage:\n${DISCOVERY_USAGE}`) }

export function discoveryCommand (argv: string[], out: (text: string) => void, now: () => number = Date.now, opts: DiscoveryCommandOptions = {}): number {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      db: { type: 'string' },
      client: { type: 'string' },
      category: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      table: { type: 'boolean' }
    },
    allowPositionals: true,
    strict: true
  })
  if (positionals.length > 0) usage(`discovery takes no ${JSON.stringify(positionals[0])}`)
  if (values.db !== undefined && values.config !== undefined) usage('give --db FILE or --config FILE, not both')
  const mode = outputMode(values, opts.isTTY === true)
  const req = parseDiscovery({ since: values.since, until: values.until, client: values.client, category: values.category, limit: values.limit }, now())
  const load = opts.loadConfig ?? ((file: string | undefined) => loadConfig({ file, bundledBlocklistsDir: opts.bundledBlocklistsDir }))
  const path = values.db ?? load(values.config).store.path
  if (!existsSync(path)) {
    const from = values.db !== undefined ? '--db' : 'store.path of the config (default <dataDir>/egressd.sqlite)'
    throw new StoreError('EGRESSD_ERR_STORE', `no block log at ${resolve(path)} (${from}; working directory ${process.cwd()}): give --db FILE or --config FILE`)
  }
  const db = openDatabase(path, { readonly: true })
  try {
    const report = discoveryReport(db, req)
    out(mode === 'json' ? json(report) : table(report))
    return 0
  } finally {
    db.close()
  }
}

/** 'MM-DD dns/firewall' for the last 7 days with attempts. */
function days (c: DiscoveryCategory): string {
  const shown = c.perDay.slice(-7).map(d => `${d.day.slice(5)} ${d.dns}/${d.firewall}`).join(' ')
  return c.perDay.length > 7 ? `... ${shown}` : shown
}

function table (r: DiscoveryReport): string {
  const rows = r.clients.flatMap(client => client.categories.map(c => ({ client, c })))
  const t = formatTable<{ client: DiscoveryClient, c: DiscoveryCategory }>(rows, [
    { title: 'CLIENT', value: x => x.client.client },
    { title: 'GROUP', value: x => x.client.group },
    { title: 'CATEGORY', value: x => x.c.category },
    { title: 'PATTERN', value: x => x.c.pattern },
    { title: 'DNS', value: x => x.c.dnsAttempts },
    { title: 'FIREWALL', value: x => x.c.firewallAttempts },
    { title: 'FIRST SEEN', value: x => x.c.firstSeen },
    { title: 'LAST SEEN', value: x => x.c.lastSeen },
    { title: 'PER DAY (dns/firewall)', value: x => days(x.c) }
  ], '(no client tried a blocked service in this range)')
  return `${r.clients.length} client(s) from ${r.from} to ${r.to}\n${t}pattern: ${PATTERN_RULE}\n`
}
