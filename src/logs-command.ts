// `egressd logs search|stats`: the block-log API's queries run directly on the database file
// (read-only), for an admin on the box when the API is down. Same filters, same rows, same CSV.
// Tables on a terminal, JSON otherwise (cli/output.ts); stats list only the non-empty buckets of
// the time series unless --all.

import { parseCliArgs } from './cli-args.js'
import { loadConfig } from './config/load.js'
import type { Config } from './config/types.js'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { EgressdError, StoreError } from './errors.js'
import { CSV_HEADER, csvLine } from './store/csv.js'
import { openDatabase } from './store/db.js'
import { parseFilter } from './store/block-filter.js'
import { blockStats, searchBlocks, type Bucket, type Stats } from './store/block-search.js'
import type { BlockRow } from './store/block-event.js'
import { formatTable, json, outputMode } from './cli/output.js'

export const LOGS_USAGE = `  egressd logs search [--from T] [--to T] [--client IP|CIDR] [--group G] [--domain NAME [--suffix]]
                      [--category C] [--action A] [--qtype T] [--matched M] [--limit N]
                      [--format table|json|ndjson|csv | --json | --table] [--config FILE | --db FILE]
      Prints block-log events (newest first) read directly from the database: a table on a
      terminal (first 100 unless --limit), else JSON (all unless --limit).
      T is ISO 8601, epoch ms, now, or relative (-30m, -24h, -7d). M is qname, cname, address,
      none (allowed queries) or firewall (connections the firewall rejected).
  egressd logs stats [--from T] [--to T] [--client IP|CIDR] [--group G] [--category C] [--top N]
                     [--bucket 1m|1h|1d] [--all] [--json | --table] [--config FILE | --db FILE]
      Prints counts per category, top domains and clients, and the time series (default from -24h):
      only the buckets with events, every bucket with --all.`

export interface LogsCommandOptions {
  /** Passed to loadConfig: the installation's lists (see LoadConfigOptions). */
  bundledBlocklistsDir?: string
  /** How the CLI finds and loads the config (cli/config.ts: discovery, named on stderr); default loadConfig of --config. */
  loadConfig?: (file: string | undefined) => Config
  /** stdout is a terminal: tables by default. Default false (JSON). */
  isTTY?: boolean
}

/** Rows a table shows when no --limit is given (a terminal is not the place for a million). */
const TABLE_LIMIT = 100

const usage = (message: string): never => { throw new EgressdError('EGRESSD_ERR_USAGE', `${message}\nusage:\n${LOGS_USAGE}`) }

export function logsCommand (argv: string[], out: (text: string) => void, now: () => number = Date.now, opts: LogsCommandOptions = {}): number {
  const [sub, ...rest] = argv
  const { values } = parseCliArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      db: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      client: { type: 'string' },
      group: { type: 'string' },
      domain: { type: 'string' },
      suffix: { type: 'boolean' },
      category: { type: 'string' },
      action: { type: 'string' },
      qtype: { type: 'string' },
      matched: { type: 'string' },
      limit: { type: 'string' },
      format: { type: 'string' },
      json: { type: 'boolean' },
      table: { type: 'boolean' },
      top: { type: 'string' },
      bucket: { type: 'string' },
      all: { type: 'boolean' }
    },
    strict: true
  })
  if (sub !== 'search' && sub !== 'stats') usage('logs needs search or stats')
  if (values.db !== undefined && values.config !== undefined) usage('give --db FILE or --config FILE, not both')
  const load = opts.loadConfig ?? ((file: string | undefined) => loadConfig({ file, bundledBlocklistsDir: opts.bundledBlocklistsDir }))
  const path = values.db ?? load(values.config).store.path
  // Read-only: a missing file is not created. Say which file was looked for.
  if (!existsSync(path)) {
    const from = values.db !== undefined ? '--db' : 'store.path of the config (default <dataDir>/egressd.sqlite)'
    throw new StoreError('EGRESSD_ERR_STORE', `no block log at ${resolve(path)} (${from}; working directory ${process.cwd()}): give --db FILE or --config FILE`)
  }
  const isTTY = opts.isTTY === true
  const db = openDatabase(path, { readonly: true })
  try {
    if (sub === 'stats') {
      for (const k of ['format', 'limit', 'domain', 'suffix', 'action', 'qtype', 'matched'] as const) if (values[k] !== undefined) usage(`logs stats takes no --${k}`)
      const t = now()
      const filter = parseFilter({ from: values.from ?? '-24h', to: values.to ?? 'now', client: values.client, group: values.group, category: values.category }, t)
      const bucket = values.bucket as Bucket | undefined
      if (bucket !== undefined && !['1m', '1h', '1d'].includes(bucket)) usage('--bucket must be 1m, 1h or 1d')
      const top = values.top === undefined ? undefined : Number(values.top)
      if (top !== undefined && !(Number.isInteger(top) && top > 0)) usage('--top must be a positive whole number')
      const stats = blockStats(db, { from: filter.from ?? 0, to: filter.to ?? t, category: filter.category, client: filter.client, group: filter.group, top, bucket })
      const shown = values.all === true ? stats : { ...stats, series: { ...stats.series, points: stats.series.points.filter(p => p.count > 0) } }
      out(outputMode(values, isTTY) === 'json' ? json(shown) : statsTable(shown, values.all === true))
      return 0
    }
    if (values.all !== undefined || values.top !== undefined || values.bucket !== undefined) usage('logs search takes no --all, --top or --bucket')
    if (values.format !== undefined && (values.json === true || values.table === true)) usage('give --format, --json or --table, not more than one')
    const format = values.format ?? outputMode(values, isTTY)
    if (!['table', 'json', 'ndjson', 'csv'].includes(format)) usage('--format must be table, json, ndjson or csv')
    const limit = values.limit === undefined ? (format === 'table' ? TABLE_LIMIT : Infinity) : Number(values.limit)
    if (!(limit > 0)) usage('--limit must be a positive number')
    const filter = parseFilter({
      from: values.from, to: values.to, client: values.client, group: values.group, domain: values.domain,
      suffix: values.suffix, category: values.category, action: values.action, qtype: values.qtype, matched: values.matched
    }, now())
    let cursor: string | undefined
    let sent = 0
    let more = false
    const rows: BlockRow[] = []
    if (format === 'csv') out(CSV_HEADER)
    if (format === 'json') out('[')
    for (;;) {
      const page = searchBlocks(db, filter, { limit: Math.min(2000, limit - sent), cursor })
      for (const r of page.rows) {
        if (format === 'csv') out(csvLine(r))
        else if (format === 'ndjson') out(JSON.stringify(r) + '\n')
        else if (format === 'json') out((sent > 0 ? ',\n' : '\n') + JSON.stringify(r))
        else rows.push(r)
        sent++
      }
      if (page.next === undefined) break
      if (sent >= limit) { more = true; break }
      cursor = page.next
    }
    if (format === 'json') out(sent > 0 ? '\n]\n' : ']\n')
    if (format === 'table') {
      out(formatTable(rows, SEARCH_COLUMNS, '(no events)'))
      if (more) out(`(the newest ${sent}; more with --limit N, all with --format ndjson or csv)\n`)
    }
    return 0
  } finally {
    db.close()
  }
}

const SEARCH_COLUMNS = [
  { title: 'TIME', value: (r: BlockRow) => r.time },
  { title: 'CLIENT', value: (r: BlockRow) => r.client },
  { title: 'GROUP', value: (r: BlockRow) => r.group },
  { title: 'QNAME', value: (r: BlockRow) => r.qname },
  { title: 'QTYPE', value: (r: BlockRow) => r.qtype },
  { title: 'CATEGORY', value: (r: BlockRow) => r.category },
  { title: 'ACTION', value: (r: BlockRow) => r.action },
  { title: 'RULE', value: (r: BlockRow) => r.rule ?? r.value }
]

function statsTable (s: Stats, all: boolean): string {
  const parts = [
    `${s.total} event(s) from ${s.from} to ${s.to}\n`,
    formatTable(s.categories, [{ title: 'CATEGORY', value: c => c.category }, { title: 'ACTION', value: c => c.action }, { title: 'EVENTS', value: c => c.count }], '(no events)'),
    formatTable(s.topDomains, [{ title: 'TOP DOMAINS', value: d => d.qname }, { title: 'EVENTS', value: d => d.count }], '(no domains)'),
    formatTable(s.topClients, [{ title: 'TOP CLIENTS', value: c => c.client }, { title: 'EVENTS', value: c => c.count }], '(no clients)'),
    formatTable(s.series.points, [{ title: `PER ${s.series.bucket}${all ? '' : ' (buckets with events; --all for every one)'}`, value: p => p.time }, { title: 'EVENTS', value: p => p.count }], '(no events in any bucket)')
  ]
  return parts.join('\n')
}
