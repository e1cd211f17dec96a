// `egressd rules`, `egressd categories`, `egressd reload`, `egressd audit`: the management API of the
// running daemon, from the command line (api-client.ts finds the URL, the token and the CA).
// Tables on a terminal, the API's JSON otherwise (or with --json).

import { parseCliArgs } from '../cli-args.js'
import { EgressdError } from '../errors.js'
import { API_OPTIONS, apiCall, apiTarget } from './api-client.js'
import type { CliIo } from './io.js'
import { formatPairs, formatTable, json, OUTPUT_OPTIONS, outputMode, type OutputMode } from './output.js'

export const ADMIN_USAGE = `  Admin commands call the running daemon's API. API options, for each of them:
      --api URL          the API (default: api.listen of the config, https when api.tls is set)
      --config FILE      the config whose api.listen to use (found as for every command)
      --token-file FILE  the token (default: $EGRESSD_TOKEN, else /etc/egressd/cli.token); a token
                         is never given on the command line
      --ca FILE          the CA to trust for https (default: the system's, and api.tls.cert)
      --json | --table   the API's JSON, or a table (default: a table on a terminal, else JSON)
  egressd rules [list] [API options]
      Custom rules (role viewer).
  egressd rules add RULE [--allow] [--comment TEXT] [--ttl 2h | --expires ISO-TIME] [--force] [API options]
      Adds a block rule (an allow rule with --allow): example.org, =example.org, *.example.org,
      /regex/ or a CIDR, optionally with ' $dnstype=AAAA' (quote it). Applied at once, stored,
      audited (admin). A rule the rule guard finds too broad is refused with what it would block;
      --force adds it anyway (audited as forced).
  egressd rules remove ID [API options]
      Removes a custom rule (admin).
  egressd categories [list] [API options]
      Categories and their state per client group (viewer).
  egressd categories enable|disable NAME [--group G] [API options]
  egressd categories action NAME nxdomain|refused|nodata|null|sinkhole|monitor [--group G] [API options]
      Changes a category for every group (default) or one (admin).
  egressd reload [API options]
      Reloads the config file and lists, as SIGHUP does; prints what took effect (admin).
      Exit 1 if the daemon rejected the new config (every problem is printed).
  egressd audit [--limit N] [--before ID] [--action A] [API options]
      The audit log of admin changes, newest first (admin).
  Exit codes of the admin commands: 0 done, 1 the API refused or could not be reached (the message
  says why), 2 usage (also: no token found).`

const usage = (message: string): never => { throw new EgressdError('EGRESSD_ERR_USAGE', `${message}\nusage:\n${ADMIN_USAGE}`) }

const COMMON = { ...API_OPTIONS, ...OUTPUT_OPTIONS } as const

/** A duration for --ttl: seconds, or a number with s, m, h or d. */
export function ttlSeconds (text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim())
  const n = m === null ? NaN : Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd']
  if (!(n >= 1)) usage(`--ttl must be a duration such as 90s, 30m, 2h or 7d, got "${text}"`)
  return n
}

interface RuleView { id: number, kind: string, rule: string, type: string, comment: string, createdAt: string, createdBy: string, expiresAt: string | null }

const ruleLine = (r: RuleView): string =>
  `${r.kind} ${r.rule} (rule ${r.id}${r.expiresAt === null ? '' : `, expires ${r.expiresAt}`}${r.comment === '' ? '' : `: ${r.comment}`})`

function printRules (rules: RuleView[], io: CliIo, mode: OutputMode, body: unknown): void {
  if (mode === 'json') { io.out(json(body)); return }
  io.out(formatTable(rules, [
    { title: 'ID', value: r => r.id },
    { title: 'KIND', value: r => r.kind },
    { title: 'RULE', value: r => r.rule },
    { title: 'TYPE', value: r => r.type },
    { title: 'EXPIRES', value: r => r.expiresAt },
    { title: 'CREATED', value: r => r.createdAt },
    { title: 'BY', value: r => r.createdBy },
    { title: 'COMMENT', value: r => r.comment }
  ], '(no custom rules)'))
}

export async function rulesCommand (argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv[0] === undefined || argv[0].startsWith('-') ? ['list', ...argv] : argv
  const { values, positionals } = parseCliArgs({
    args: rest,
    options: { ...COMMON, allow: { type: 'boolean' }, comment: { type: 'string' }, ttl: { type: 'string' }, expires: { type: 'string' }, force: { type: 'boolean' } },
    allowPositionals: true,
    strict: true
  })
  const mode = outputMode(values, io.isTTY)
  const only = (what: string, ...allowed: string[]): void => {
    for (const k of ['allow', 'comment', 'ttl', 'expires', 'force'] as const) {
      if (values[k] !== undefined && !allowed.includes(k)) usage(`rules ${what} takes no --${k}`)
    }
  }
  switch (sub) {
    case 'list': {
      only('list')
      if (positionals.length > 0) usage('rules list takes no arguments')
      const r = await apiCall<{ rules: RuleView[] }>(apiTarget(values, io), 'GET', '/api/v1/rules', 'viewer')
      printRules(r.body.rules, io, mode, r.body)
      return 0
    }
    case 'add': {
      only('add', 'allow', 'comment', 'ttl', 'expires', 'force')
      if (positionals.length !== 1) usage('rules add needs exactly one RULE (quote it if it holds spaces or shell characters)')
      if (values.ttl !== undefined && values.expires !== undefined) usage('give --ttl or --expires, not both')
      const body = {
        rule: positionals[0],
        kind: values.allow === true ? 'allow' : 'block',
        ...(values.comment !== undefined && { comment: values.comment }),
        ...(values.ttl !== undefined && { ttlSeconds: ttlSeconds(values.ttl) }),
        ...(values.expires !== undefined && { expiresAt: values.expires }),
        ...(values.force === true && { force: true })
      }
      const r = await apiCall<{ rule: RuleView }>(apiTarget(values, io), 'POST', '/api/v1/rules', 'admin', body)
      io.out(mode === 'json' ? json(r.body) : `added ${ruleLine(r.body.rule)}\n`)
      return 0
    }
    case 'remove': case 'rm': case 'delete': {
      only('remove')
      if (positionals.length !== 1 || !/^[1-9][0-9]{0,15}$/.test(positionals[0])) usage('rules remove needs one rule ID (a number; see egressd rules list)')
      const r = await apiCall<{ deleted: RuleView }>(apiTarget(values, io), 'DELETE', `/api/v1/rules/${positionals[0]}`, 'admin')
      io.out(mode === 'json' ? json(r.body) : `removed ${ruleLine(r.body.deleted)}\n`)
      return 0
    }
    default:
      return usage(`unknown rules subcommand "${sub}" (list, add, remove)`)
  }
}

interface CategoryView {
  name: string, title: string, enabled: boolean, action: string, entries: number
  groups: Array<{ group: string, enabled: boolean, action: string }>
  overrides: Record<string, { enabled?: boolean, action?: string }>
}

/** Groups whose state differs from the category's own, as `group: off` / `group: on, refused`. */
const groupDifferences = (c: CategoryView): string => c.groups
  .filter(g => g.enabled !== c.enabled || (g.enabled && g.action !== c.action))
  .map(g => `${g.group}: ${g.enabled ? `on${g.action !== c.action ? `, ${g.action}` : ''}` : 'off'}`).join('; ')

export async function categoriesCommand (argv: string[], io: CliIo): Promise<number> {
  const known = ['list', 'enable', 'disable', 'action']
  const [sub, ...rest] = argv[0] === undefined || argv[0].startsWith('-') ? ['list', ...argv] : argv
  if (!known.includes(sub)) usage(`unknown categories subcommand "${sub}" (${known.join(', ')})`)
  const { values, positionals } = parseCliArgs({ args: rest, options: { ...COMMON, group: { type: 'string' } }, allowPositionals: true, strict: true })
  const mode = outputMode(values, io.isTTY)
  if (sub === 'list') {
    if (positionals.length > 0 || values.group !== undefined) usage('categories list takes no arguments')
    const r = await apiCall<{ categories: CategoryView[] }>(apiTarget(values, io), 'GET', '/api/v1/categories', 'viewer')
    if (mode === 'json') { io.out(json(r.body)); return 0 }
    io.out(formatTable(r.body.categories, [
      { title: 'CATEGORY', value: c => c.name },
      { title: 'ENABLED', value: c => c.enabled ? 'yes' : 'no' },
      { title: 'ACTION', value: c => c.action },
      { title: 'ENTRIES', value: c => c.entries },
      { title: 'GROUPS DIFFERING', value: c => groupDifferences(c) },
      { title: 'TITLE', value: c => c.title }
    ], '(no categories)'))
    return 0
  }
  const want = sub === 'action' ? 2 : 1
  if (positionals.length !== want) usage(sub === 'action' ? 'categories action needs NAME and ACTION' : `categories ${sub} needs one category NAME`)
  const [name, action] = positionals
  const body = {
    ...(values.group !== undefined && { group: values.group }),
    ...(sub === 'action' ? { action } : { enabled: sub === 'enable' })
  }
  const r = await apiCall<{ category: CategoryView, before: unknown, after: unknown }>(apiTarget(values, io), 'PATCH', `/api/v1/categories/${encodeURIComponent(name)}`, 'admin', body)
  if (mode === 'json') { io.out(json(r.body)); return 0 }
  const c = r.body.category
  const scope = values.group === undefined || values.group === '*' ? 'every group' : `group ${values.group}`
  io.out(`${c.name}: ${sub === 'action' ? `action ${action}` : sub === 'enable' ? 'enabled' : 'disabled'} for ${scope}\n` +
    formatPairs({ before: r.body.before, after: r.body.after }))
  return 0
}

export async function reloadCommand (argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCliArgs({ args: argv, options: COMMON, allowPositionals: true, strict: true })
  if (positionals.length > 0) usage('reload takes no arguments')
  const mode = outputMode(values, io.isTTY)
  const r = await apiCall<Record<string, unknown>>(apiTarget(values, io), 'POST', '/api/v1/reload', 'admin', undefined, [422])
  const b = r.body
  if (r.status === 422) {
    if (mode === 'json') io.out(json(b))
    else for (const i of Array.isArray(b.issues) ? b.issues : []) io.out(`${String(i)}\n`)
    io.err(`egressd: ${typeof b.message === 'string' ? b.message : 'reload rejected'}\n`)
    return 1
  }
  if (mode === 'json') { io.out(json(b)); return 0 }
  const list = (v: unknown): string => Array.isArray(v) && v.length > 0 ? v.join(', ') : 'nothing'
  io.out(formatPairs({ status: b.status, config: b.config, applied: list(b.applied), 'needs restart': list(b.needsRestart), generation: b.generation }))
  return 0
}

interface AuditEntry { id: number, time: string, actor: string, client: string, action: string, target: string, before: unknown, after: unknown }

const compact = (v: unknown): string => v === null || v === undefined ? '-' : JSON.stringify(v)

export async function auditCommand (argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { ...COMMON, limit: { type: 'string' }, before: { type: 'string' }, action: { type: 'string' } },
    allowPositionals: true,
    strict: true
  })
  if (positionals.length > 0) usage('audit takes no arguments')
  const mode = outputMode(values, io.isTTY)
  const q = new URLSearchParams()
  if (values.limit !== undefined) q.set('limit', values.limit)
  if (values.before !== undefined) q.set('before', values.before)
  if (values.action !== undefined) q.set('action', values.action)
  const r = await apiCall<{ entries: AuditEntry[] }>(apiTarget(values, io), 'GET', `/api/v1/audit${q.size > 0 ? `?${q.toString()}` : ''}`, 'admin')
  if (mode === 'json') { io.out(json(r.body)); return 0 }
  io.out(formatTable(r.body.entries, [
    { title: 'ID', value: e => e.id },
    { title: 'TIME', value: e => e.time },
    { title: 'ACTOR', value: e => e.actor },
    { title: 'CLIENT', value: e => e.client },
    { title: 'ACTION', value: e => e.action },
    { title: 'TARGET', value: e => e.target },
    { title: 'CHANGE', value: e => `${compact(e.before)} -> ${compact(e.after)}` }
  ], '(no audit entries)'))
  return 0
}
