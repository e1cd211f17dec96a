// `egressd logs search|stats`: the block-log API's queries run directly on the database file
// (read-only), for an admin on the box when the API is down. Same filters, same rows, same CSV.

import { parseCliArgs } from './cli-args.js'
import { loadConfig } from './config/load.js'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { EgressdError, StoreError } from './errors.js'
import { CSV_HEADER, csvLine } from './store/csv.js'
import { openDatabase } from './store/db.js'
import { parseFilter, parseTime } from './store/block-filter.js'
import { blockStats, searchBlocks, type Bucket } from './store/block-search.js'

export const LOGS_USAGE = `  egressd logs search [--from T] [--to T] [--client IP|CIDR] [--group G] [--domain NAME [--suffix]]
                      [--category C] [--action A] [--qtype T] [--limit N] [--format json|ndjson|csv]
                      [--config FILE | --db FILE]
      Prints block-log events (newest first; default limit: all) read directly from the database.
      T is ISO 8601 or relative (-24h, -7d).
  egressd logs stats [--from T] [--to T] [--category C] [--top N] [--bucket 1m|1h|1d] [--config FILE | --db FILE]
      Prints counts per category, top domains and clients, and a time series as JSON.`

export interface LogsCommandOptions {
  /** Passed to loadConfig: the installation's lists (see LoadConfigOptions). */
  bundledBlocklistsDir?: string
}

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
      limit: { type: 'string' },
      format: { type: 'string' },
      top: { type: 'string' },
      bucket: { type: 'string' }
    },
    strict: true
  })
  if (sub !== 'search' && sub !== 'stats') throw new EgressdError('EGRESSD_ERR_USAGE', `logs needs search or stats\n${LOGS_USAGE}`)
  const path = values.db ?? loadConfig({ file: values.config, bundledBlocklistsDir: opts.bundledBlocklistsDir }).store.path
  // Read-only: a missing file is not created. Say which file was looked for, and from where, since
  // the default (<dataDir>/egressd.sqlite, dataDir ./var) is relative to the working directory.
  if (!existsSync(path)) {
    const from = values.db !== undefined ? '--db' : values.config !== undefined ? `store.path of ${values.config}` : 'the default <dataDir>/egressd.sqlite, no --config'
    throw new StoreError('EGRESSD_ERR_STORE', `no block log at ${resolve(path)} (${from}; working directory ${process.cwd()}): give --db FILE or --config FILE`)
  }
  const db = openDatabase(path, { readonly: true })
  try {
    if (sub === 'stats') {
      const t = now()
      const from = parseTime(values.from ?? '-24h', t, 'from')
      const to = parseTime(values.to ?? 'now', t, 'to')
      const bucket = values.bucket as Bucket | undefined
      if (bucket !== undefined && !['1m', '1h', '1d'].includes(bucket)) throw new EgressdError('EGRESSD_ERR_USAGE', '--bucket must be 1m, 1h or 1d')
      out(JSON.stringify(blockStats(db, { from, to, category: values.category, top: values.top === undefined ? undefined : Number(values.top), bucket }), null, 2) + '\n')
      return 0
    }
    const format = values.format ?? 'json'
    if (!['json', 'ndjson', 'csv'].includes(format)) throw new EgressdError('EGRESSD_ERR_USAGE', '--format must be json, ndjson or csv')
    const limit = values.limit === undefined ? Infinity : Number(values.limit)
    if (!(limit > 0)) throw new EgressdError('EGRESSD_ERR_USAGE', '--limit must be a positive number')
    const filter = parseFilter({
      from: values.from, to: values.to, client: values.client, group: values.group, domain: values.domain,
      suffix: values.suffix, category: values.category, action: values.action, qtype: values.qtype
    }, now())
    let cursor: string | undefined
    let sent = 0
    if (format === 'csv') out(CSV_HEADER)
    if (format === 'json') out('[')
    for (;;) {
      const page = searchBlocks(db, filter, { limit: Math.min(2000, limit - sent), cursor })
      for (const r of page.rows) {
        if (format === 'csv') out(csvLine(r))
        else if (format === 'ndjson') out(JSON.stringify(r) + '\n')
        else out((sent > 0 ? ',\n' : '\n') + JSON.stringify(r))
        sent++
      }
      if (page.next === undefined || sent >= limit) break
      cursor = page.next
    }
    if (format === 'json') out(sent > 0 ? '\n]\n' : ']\n')
    return 0
  } finally {
    db.close()
  }
}
