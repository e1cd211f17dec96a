// Turns a YAML config file into the one frozen, typed `Config` (types.ts), or a ConfigError that
// names every bad field at once. Owns YAML parsing, schema validation and its messages, defaults,
// normalization (socket addresses, upstream URLs), the resolv.conf fallback, env overrides and the
// deep-freeze. The only code in egressd that reads config files or process.env for settings.
//
// Order: YAML -> drop null-valued keys -> defaults -> command-line overrides -> schema ->
// cross-field checks and parsing -> env overrides -> one ConfigError with every issue, or
// assemble + deep-freeze.
//
// Rules an admin can rely on:
// - A key with no value (`dns:` and nothing under it: YAML null) means the same as leaving it out,
//   so commenting out every line of a section keeps that section's defaults.
// - Environment overrides, applied over the file (an empty value counts as unset; no other
//   variable is read):
//     EGRESSD_LOG_LEVEL  overrides log.level (fatal, error, warn, info, debug, trace, silent)
//     EGRESSD_DATA_DIR   overrides dataDir
// - No upstreams (key absent or an empty list): every `nameserver` line of resolv.conf, in order,
//   becomes udp://IP:53 (duplicates and non-IP entries skipped). IPv6 zone ids (fe80::1%eth0) are
//   kept as written: a link-local address is unreachable without one. None found is an error.
// - An upstream that is egressd's own DNS listener (the same address and port, or a loopback or
//   local address under a wildcard listen on its port) is an error: every query would loop. From
//   resolv.conf such a nameserver is left out, and an error only when no other one is left.
// - Upstream URLs: udp://IP[:53], tcp://IP[:53], tls://HOST[:853], https://HOST[:443][/path]
//   (path default /dns-query). udp/tcp need an IP literal (resolving a name would need DNS);
//   IPv6 goes in brackets. No user info, query or fragment. A zone id is written raw ([fe80::1%eth0]).
// - Command-line overrides (`overrides: { listen, upstreams, blocklists }`, from `egressd start
//   --listen/--upstream/--blocklist`); --blocklist adds plain list files as extra sources.
//   replace dns.listen / upstreams wholesale, are validated like the file's, and their issues are
//   reported under `overrides.listen.N` / `overrides.upstreams.N`.
// - api.tokens[].sha256 comes out lower-cased; duplicate token names or hashes, source names,
//   listen addresses and upstreams are errors.
// - api.listen off loopback (anything but 127.0.0.0/8 and ::1) needs api.tls or api.allowPlaintext: true.
// - Relative paths written in a config file resolve against the file's directory, not the working
//   directory: dataDir, store.path, blocklists.dir, blocklists.sources[].path and .caFile,
//   blocklists.update.publicKeys[].file, upstreams[].caFile, api.tls.cert and .key. Paths that do not
//   come from the file stay as given: the defaults (dataDir ./var, relative to the working
//   directory), EGRESSD_DATA_DIR and command-line overrides (--blocklist FILE). Without
//   blocklists.dir in the file, the caller's bundledBlocklistsDir (the installation's lists).
// - Nothing here touches the files a config names (caFile, blocklist paths): their owners do
//   (except blocklists.update.publicKeys[].file, read here).

import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { dirname, isAbsolute, join as joinPath, resolve as resolvePath } from 'node:path'
import { parseDocument } from 'yaml'
import { Kind, type Static, type TArray, type TObject, type TRecord, type TSchema, type TUnion } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { ConfigError, type ConfigIssue } from '../errors.js'
import {
  ApiSchema, BlocklistsSchema, CacheSchema, ClientGroupSchema, ConfigFileSchema, DnsSchema, ListSourceSchema, LogLevelSchema,
  PublicKeySchema, type UpstreamObjectSchema, UpstreamSchema, type ConfigFile, type UpstreamEntry
} from './schema.js'
import type { BlockAction, CategoryOverride, Config, ListenAddress, ListPublicKey, ListSource, LogLevel, UpstreamConfig, UpstreamProtocol } from './types.js'
import { ed25519PublicKeyPem } from './public-key.js'

/** Values given on the command line; each replaces the file's list when present. */
export interface ConfigOverrides {
  /** Replaces dns.listen: `127.0.0.1:5353`, `[::1]:5353`. */
  listen?: readonly string[]
  /** Replaces upstreams: URLs as in the file. */
  upstreams?: readonly string[]
  /** Adds plain-format list files to blocklists.sources (named `cli-1`, `cli-2`, ...). */
  blocklists?: readonly string[]
}

export interface ParseConfigOptions {
  /** Only for messages and `source`; nothing is read. */
  file?: string
  overrides?: ConfigOverrides
  /** Default {}: parseConfig never looks at process.env by itself. */
  env?: NodeJS.ProcessEnv
  /** Contents of resolv.conf, consulted only when the file configures no upstreams. */
  resolvConf?: string
  /**
   * This host's own addresses, for telling whether an upstream is egressd itself under a wildcard
   * listen address (0.0.0.0, [::]). Default none: loopback addresses are still recognized.
   */
  localAddresses?: readonly string[]
  /** blocklists.dir when the text does not set it (see LoadConfigOptions.bundledBlocklistsDir). */
  bundledBlocklistsDir?: string
  /**
   * The directory that relative paths in the text resolve against (the file's directory: loadConfig
   * passes it). Default none: relative paths stay as written.
   */
  baseDir?: string
}

export interface LoadConfigOptions {
  /** YAML file to read; without it, every key has its default and `source` is 'defaults'. */
  file?: string
  overrides?: ConfigOverrides
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv
  /** Read only when no upstreams are configured. Default /etc/resolv.conf. */
  resolvConfPath?: string
  /**
   * blocklists.dir when the file does not set it (or there is no file): the CLI passes the absolute
   * path of the lists in its installation, so they are found from any working directory. Without
   * it the schema default `./blocklists` (relative to the working directory) stays.
   */
  bundledBlocklistsDir?: string
}

/** Validates and normalizes YAML text. Pure: reads no file and no environment of its own. */
export function parseConfig (text: string, opts: ParseConfigOptions = {}): Config {
  const { resolvConf } = opts
  return build(text, {
    file: opts.file,
    overrides: opts.overrides ?? {},
    env: opts.env ?? {},
    resolvConf: () => resolvConf === undefined
      ? { error: 'no resolv.conf was given' }
      : { text: resolvConf, name: 'resolv.conf' },
    localAddresses: opts.localAddresses ?? [],
    bundledBlocklistsDir: opts.bundledBlocklistsDir,
    baseDir: opts.baseDir
  })
}

/** Reads and validates a config file (synchronously: it runs at start and on SIGHUP). */
export function loadConfig (opts: LoadConfigOptions = {}): Config {
  const { file } = opts
  let text = ''
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new ConfigError([{ path: '', message: `cannot read ${file}: ${errorText(err)}` }], file, { cause: err })
    }
  }
  const resolvConfPath = opts.resolvConfPath ?? '/etc/resolv.conf'
  return build(text, {
    file,
    overrides: opts.overrides ?? {},
    env: opts.env ?? process.env,
    resolvConf: () => readResolvConf(resolvConfPath),
    localAddresses: Object.values(networkInterfaces()).flatMap(list => (list ?? []).map(i => i.address)),
    bundledBlocklistsDir: opts.bundledBlocklistsDir,
    baseDir: file === undefined ? undefined : dirname(resolvePath(file))
  })
}

// ---------------------------------------------------------------------------------------------
// Pipeline

type ResolvConf = { text: string, name: string } | { error: string }

interface BuildInput {
  file: string | undefined
  overrides: ConfigOverrides
  env: NodeJS.ProcessEnv
  resolvConf: () => ResolvConf
  localAddresses: readonly string[]
  bundledBlocklistsDir?: string
  baseDir?: string
}

function build (text: string, input: BuildInput): Config {
  const issues: ConfigIssue[] = []
  const fail = () => new ConfigError(bySection(dedupe(renameOverridden(issues, input.overrides))), input.file)

  const raw = parseYaml(text, issues)
  if (issues.length > 0) throw fail()
  if (raw !== null && raw !== undefined && !isMapping(raw)) {
    issues.push({ path: '', message: `expected a mapping of keys (dns, upstreams, ...) at the top level, got ${describe(raw)}` })
    throw fail()
  }

  const file = withOverrides(applyDefaults(ConfigFileSchema, withBundledLists(withPathsFrom(dropNulls(raw ?? {}, '', issues), input.baseDir), input.bundledBlocklistsDir)), input.overrides)
  issues.push(...schemaIssues(ConfigFileSchema, file))
  const parts = checkParts(file, input, issues)
  const env = readEnv(input.env, issues)
  if (issues.length > 0 || !Value.Check(ConfigFileSchema, file)) throw fail()
  return deepFreeze(assemble(file, parts, env, input.file ?? 'defaults'))
}

function parseYaml (text: string, issues: ConfigIssue[]): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  for (const e of doc.errors) issues.push({ path: '', message: `YAML syntax error: ${firstLine(e.message)}` })
  if (doc.errors.length > 0) return undefined
  try {
    return doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    issues.push({ path: '', message: `YAML: ${errorText(err)}` })
    return undefined
  }
}

/** Copies the parsed YAML without null-valued keys (= absent); `__proto__` is reported, never copied. */
function dropNulls (value: unknown, path: string, issues: ConfigIssue[]): unknown {
  if (Array.isArray(value)) return value.map((item, i) => dropNulls(item, join(path, i), issues))
  // YAML's !!set, !!omap, !!binary and !!timestamp give a Set, Map, Buffer or Date: objects without
  // own keys (or with index keys), which would pass for a mapping and be silently emptied.
  if (value instanceof Set || value instanceof Map || value instanceof Date || ArrayBuffer.isView(value)) {
    const tag = value instanceof Set ? '!!set' : value instanceof Map ? '!!omap' : value instanceof Date ? '!!timestamp' : '!!binary'
    issues.push({ path, message: `YAML ${tag} is not supported here: write a plain mapping (key: value), a list or a single value` })
    return undefined
  }
  if (!isMapping(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    if (key === '__proto__') issues.push({ path: join(path, key), message: `unknown key "${key}"` })
    else if (item !== null) out[key] = dropNulls(item, join(path, key), issues)
  }
  return out
}

/**
 * Fills in schema defaults without mutating its input. Unlike Value.Default it never turns a list
 * into a mapping (`dns: []` stays a list, and the schema reports it).
 */
function applyDefaults (schema: TSchema, value: unknown): unknown {
  const v: unknown = value === undefined && 'default' in schema ? structuredClone<unknown>(schema.default) : value
  switch (schema[Kind]) {
    case 'Object': {
      if (!isMapping(v)) return v
      const out: Record<string, unknown> = { ...v }
      for (const [key, sub] of Object.entries((schema as TObject).properties)) {
        const filled = applyDefaults(sub, out[key])
        if (filled !== undefined) out[key] = filled
      }
      return out
    }
    case 'Array':
      return Array.isArray(v) ? v.map((item: unknown) => applyDefaults((schema as TArray).items, item)) : v
    case 'Record': {
      if (!isMapping(v)) return v
      const [sub] = Object.values((schema as TRecord).patternProperties)
      return Object.fromEntries(Object.entries(v).map(([key, item]) => [key, applyDefaults(sub, item)]))
    }
    case 'Union': {
      const objectVariant = (schema as TUnion).anyOf.find(s => s[Kind] === 'Object')
      return objectVariant !== undefined && isMapping(v) ? applyDefaults(objectVariant, v) : v
    }
    default:
      return v
  }
}

/**
 * The file's relative paths (the keys listed in the header) resolved against `base`, the file's
 * directory. Runs before defaults, so only what the file wrote is touched; a value of the wrong type
 * is left for the schema to report.
 */
function withPathsFrom (file: unknown, base: string | undefined): unknown {
  if (base === undefined || !isMapping(file)) return file
  const abs = (v: unknown): unknown => typeof v === 'string' && v !== '' && !isAbsolute(v) ? resolvePath(base, v) : v
  /** A copy of `obj` with `keys` resolved, when it is a mapping; anything else as it is. */
  const paths = (obj: unknown, ...keys: string[]): unknown => {
    if (!isMapping(obj)) return obj
    const out: Record<string, unknown> = { ...obj }
    for (const k of keys) if (Object.hasOwn(out, k)) out[k] = abs(out[k])
    return out
  }
  const each = (list: unknown, ...keys: string[]): unknown => Array.isArray(list) ? list.map(item => paths(item, ...keys)) : list
  const out: Record<string, unknown> = { ...paths(file, 'dataDir') as Record<string, unknown> }
  if (Object.hasOwn(out, 'store')) out.store = paths(out.store, 'path')
  if (Object.hasOwn(out, 'upstreams')) out.upstreams = each(out.upstreams, 'caFile')
  if (isMapping(out.api) && Object.hasOwn(out.api, 'tls')) out.api = { ...out.api, tls: paths(out.api.tls, 'cert', 'key') }
  if (isMapping(out.blocklists)) {
    const b: Record<string, unknown> = { ...paths(out.blocklists, 'dir') as Record<string, unknown> }
    if (Object.hasOwn(b, 'sources')) b.sources = each(b.sources, 'path', 'caFile')
    if (isMapping(b.update) && Object.hasOwn(b.update, 'publicKeys')) b.update = { ...b.update, publicKeys: each(b.update.publicKeys, 'file') }
    out.blocklists = b
  }
  return out
}

/** blocklists.dir defaults to the installation's lists when the caller knows where they are. */
function withBundledLists (file: unknown, dir: string | undefined): unknown {
  if (dir === undefined || !isMapping(file)) return file
  const lists = file.blocklists ?? {}
  if (!isMapping(lists) || lists.dir !== undefined) return file
  return { ...file, blocklists: { ...lists, dir } }
}

/** Puts command-line lists in place of the file's, so they go through the same checks. */
function withOverrides (file: unknown, overrides: ConfigOverrides): unknown {
  if (!isMapping(file)) return file
  const out: Record<string, unknown> = { ...file }
  if (overrides.listen !== undefined && isMapping(out.dns)) out.dns = { ...out.dns, listen: [...overrides.listen] }
  if (overrides.upstreams !== undefined) out.upstreams = [...overrides.upstreams]
  if (overrides.blocklists !== undefined && overrides.blocklists.length > 0 && isMapping(out.blocklists) && Array.isArray(out.blocklists.sources)) {
    const extra = overrides.blocklists.map((path, i) => ({ name: `cli-${i + 1}`, path, format: 'plain' }))
    const sources: unknown[] = out.blocklists.sources
    out.blocklists = { ...out.blocklists, sources: [...sources, ...extra] }
  }
  return out
}

/** Issues about overridden lists point at the override, not at the file. */
function renameOverridden (issues: ConfigIssue[], overrides: ConfigOverrides): ConfigIssue[] {
  const renames: Array<[from: string, to: string]> = []
  if (overrides.listen !== undefined) renames.push(['dns.listen', 'overrides.listen'])
  if (overrides.upstreams !== undefined) renames.push(['upstreams', 'overrides.upstreams'])
  return issues.map(issue => {
    for (const [from, to] of renames) {
      if (issue.path === from || issue.path.startsWith(`${from}.`)) return { ...issue, path: to + issue.path.slice(from.length) }
    }
    return issue
  })
}

// ---------------------------------------------------------------------------------------------
// Schema errors -> issues with dotted paths and plain messages

function schemaIssues (schema: TSchema, value: unknown): ConfigIssue[] {
  return [...Value.Errors(schema, value)].flatMap(describeError)
}

function describeError (e: ValueError): ConfigIssue[] {
  const path = dotted(e.path)
  switch (e.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const properties: unknown = e.schema.properties
      const known = isMapping(properties) ? Object.keys(properties) : []
      const hint = known.length > 0 ? ` (known keys: ${known.join(', ')})` : ''
      return [{ path, message: `unknown key "${lastKey(e.path)}"${hint}` }]
    }
    case ValueErrorType.ObjectRequiredProperty:
      return [{ path, message: `required key "${lastKey(e.path)}" is missing` }]
    case ValueErrorType.Union:
      return describeUnionError(e, path)
    default:
      // A missing required key also fails its own type check; ObjectRequiredProperty says it better.
      return e.value === undefined ? [] : [{ path, message: describeMismatch(e) }]
  }
}

/** Reports the errors of the variant whose kind fits the value (string vs mapping), else one line. */
function describeUnionError (e: ValueError, path: string): ConfigIssue[] {
  const variants = e.schema.anyOf as TSchema[]
  if (variants.every(s => s[Kind] === 'Literal')) {
    const allowed = variants.map(s => String(s.const)).join(', ')
    return [{ path, message: `must be one of ${allowed}; got ${describe(e.value)}` }]
  }
  const fitting = variants.findIndex(s => kindFits(s, e.value))
  if (fitting >= 0) return [...e.errors[fitting]].flatMap(describeError)
  return [{ path, message: `${e.schema.errorMessage ?? 'unexpected value'}, got ${describe(e.value)}` }]
}

function kindFits (schema: TSchema, value: unknown): boolean {
  switch (schema[Kind]) {
    case 'String': return typeof value === 'string'
    case 'Object': case 'Record': return isMapping(value)
    case 'Array': return Array.isArray(value)
    case 'Integer': case 'Number': return typeof value === 'number'
    case 'Boolean': return typeof value === 'boolean'
    default: return false
  }
}

function describeMismatch (e: ValueError): string {
  const { schema, value } = e
  const got = describe(value)
  switch (e.type) {
    case ValueErrorType.Object: return `expected a mapping (key: value), got ${got}`
    case ValueErrorType.Array: return `expected a list, got ${got}`
    case ValueErrorType.ArrayMinItems: return schema.minItems === 1 ? 'must not be empty' : `must list at least ${schema.minItems as number} items`
    case ValueErrorType.String: return `expected a string, got ${got}`
    case ValueErrorType.StringMinLength: return 'must not be empty'
    case ValueErrorType.StringPattern: return typeof schema.errorMessage === 'string' ? schema.errorMessage : `must match /${schema.pattern as string}/`
    case ValueErrorType.Integer: return `expected a whole number, got ${got}`
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.NumberMaximum: return `must be between ${schema.minimum as number} and ${schema.maximum as number}, got ${got}`
    case ValueErrorType.Number: return `expected a number, got ${got}`
    case ValueErrorType.Boolean: return `expected true or false, got ${got}`
    case ValueErrorType.Literal: return `must be ${describe(schema.const)}, got ${got}`
    default: return e.message
  }
}

// ---------------------------------------------------------------------------------------------
// Checks the schema cannot express; each runs only on a part whose shape the schema accepts,
// so every issue appears once, under one path.

interface Parts {
  listen: ListenAddress[]
  apiListen: ListenAddress | undefined
  upstreams: UpstreamConfig[]
  publicKeys: ListPublicKey[]
}

function checkParts (file: unknown, input: BuildInput, issues: ConfigIssue[]): Parts {
  const listenRaw = at(file, 'dns', 'listen')
  const listen = fits(DnsSchema.properties.listen, listenRaw) ? checkListenList(listenRaw, 'dns.listen', issues) : []
  const apiListenRaw = at(file, 'api', 'listen')
  const apiListen = fits(ApiSchema.properties.listen, apiListenRaw) ? checkApiListen(apiListenRaw, listen, issues) : undefined
  // Bearer tokens must not cross a network in clear: off loopback, TLS or an explicit opt-out.
  if (apiListen !== undefined && !isLoopback(apiListen.host) && at(file, 'api', 'tls') === undefined && at(file, 'api', 'allowPlaintext') !== true) {
    issues.push({ path: 'api.tls', message: `required when api.listen is not a loopback address (${describe(apiListenRaw)}): give { cert, key } PEM files, or set api.allowPlaintext: true to serve plain HTTP` })
  }
  const timeout = at(file, 'dns', 'upstreamTimeoutMs')
  const upstreams = checkUpstreams(at(file, 'upstreams'), typeof timeout === 'number' ? timeout : 2000, listen, input, issues)
  const cache = at(file, 'cache')
  if (fits(CacheSchema, cache) && cache.minTtl > cache.maxTtl) {
    issues.push({ path: 'cache.minTtl', message: `must not be greater than cache.maxTtl (${cache.minTtl} > ${cache.maxTtl})` })
  }
  const server = at(file, 'api', 'server')
  if (fits(ApiSchema.properties.server, server) && server.headersTimeoutMs > server.requestTimeoutMs) {
    issues.push({ path: 'api.server.headersTimeoutMs', message: `must not be greater than api.server.requestTimeoutMs (${server.headersTimeoutMs} > ${server.requestTimeoutMs})` })
  }
  const tokens = at(file, 'api', 'tokens')
  if (fits(ApiSchema.properties.tokens, tokens)) {
    checkUnique(tokens.map(t => t.name), i => `api.tokens.${i}.name`, 'token name', issues)
    checkUnique(tokens.map(t => t.sha256.toLowerCase()), i => `api.tokens.${i}.sha256`, 'token hash', issues)
  }
  const publicKeys = checkBlocklists(at(file, 'blocklists'), issues)
  checkFirewall(at(file, 'firewall'), issues)
  checkLearning(at(file, 'learning'), issues)
  const allowClients = at(file, 'dns', 'allowClients')
  if (fits(DnsSchema.properties.allowClients, allowClients)) {
    allowClients.forEach((c, i) => {
      if (normalizeCidr(c) === undefined) issues.push({ path: `dns.allowClients.${i}`, message: `expected an IP address or CIDR (192.168.0.0/16, fd00::/8; 0.0.0.0/0 and ::/0 answer everyone), got ${describe(c)}` })
    })
  }
  return { listen, apiListen, upstreams, publicKeys }
}

function checkListenList (list: string[], where: string, issues: ConfigIssue[]): ListenAddress[] {
  const out: ListenAddress[] = []
  const seen = new Set<string>()
  for (const [i, text] of list.entries()) {
    const parsed = parseSocketAddress(text)
    if ('error' in parsed) {
      issues.push({ path: join(where, i), message: parsed.error })
      continue
    }
    const key = `${parsed.value.host}|${parsed.value.port}`
    if (seen.has(key) && parsed.value.port !== 0) issues.push({ path: join(where, i), message: `duplicate address ${describe(text)}` })
    seen.add(key)
    out.push(parsed.value)
  }
  return out
}

function checkApiListen (text: string, dnsListen: ListenAddress[], issues: ConfigIssue[]): ListenAddress | undefined {
  const parsed = parseSocketAddress(text)
  if ('error' in parsed) {
    issues.push({ path: 'api.listen', message: parsed.error })
    return undefined
  }
  const { host, port } = parsed.value
  if (port !== 0 && dnsListen.some(a => a.host === host && a.port === port)) {
    issues.push({ path: 'api.listen', message: `${JSON.stringify(text)} is also in dns.listen (DNS takes TCP there too)` })
  }
  return parsed.value
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped form. */
function isLoopback (host: string): boolean {
  const v4 = host.toLowerCase().replace(/^::ffff:/, '')
  return (isIP(v4) === 4 && v4.startsWith('127.')) || (isIP(host) === 6 && canonicalIpv6(host) === '::1')
}

function checkUpstreams (raw: unknown, defaultTimeoutMs: number, listen: ListenAddress[], input: BuildInput, issues: ConfigIssue[]): UpstreamConfig[] {
  if (!Array.isArray(raw)) return []
  if (raw.length === 0) return upstreamsFromResolvConf(input.resolvConf(), defaultTimeoutMs, listen, input.localAddresses, issues)
  const out: UpstreamConfig[] = []
  const seen = new Set<string>()
  for (const [i, entry] of (raw as unknown[]).entries()) {
    if (!fits(UpstreamSchema, entry)) continue // the schema has reported it
    const upstream = checkUpstream(entry, `upstreams.${i}`, defaultTimeoutMs, issues)
    if (upstream === undefined) continue
    const key = `${upstream.protocol}|${upstream.host}|${upstream.port}|${upstream.path}`
    if (seen.has(key)) issues.push({ path: `upstreams.${i}`, message: `duplicate upstream ${describe(upstream.url)}` })
    seen.add(key)
    const own = ownListener(upstream, listen, input.localAddresses)
    if (own !== undefined) {
      issues.push({ path: `upstreams.${i}`, message: `${describe(upstream.url)} is egressd's own DNS listener (dns.listen ${formatAddress(own)}): every query would come back to egressd; name the resolver egressd forwards to` })
    }
    out.push(upstream)
  }
  return out
}

/**
 * The listen address under which a udp:// or tcp:// upstream is egressd itself, if any: the same
 * address and port, or, under a wildcard (0.0.0.0, [::]), a loopback or local address of that
 * family on its port. Forwarding there loops: a gateway whose resolv.conf names itself is the
 * common case.
 */
function ownListener (u: Pick<UpstreamConfig, 'protocol' | 'host' | 'port'>, listen: readonly ListenAddress[], localAddresses: readonly string[]): ListenAddress | undefined {
  if (u.protocol !== 'udp' && u.protocol !== 'tcp') return undefined
  const host = sameForm(u.host)
  const family = isIP(host)
  return listen.find(a => {
    if (a.port !== u.port || a.port === 0 || a.family !== family) return false
    if (sameForm(a.host) === host) return true
    const wildcard = a.family === 4 ? a.host === '0.0.0.0' : sameForm(a.host) === '::'
    return wildcard && (isLoopback(host) || localAddresses.some(l => sameForm(l) === host))
  })
}

/** An address in one form for comparison: IPv6 canonical, without a zone id. */
function sameForm (host: string): string {
  const bare = host.replace(/%.*$/, '')
  return isIP(bare) === 6 ? canonicalIpv6(bare) : bare
}

/** A listen address as written in the config: `127.0.0.1:53`, `[::1]:53`. */
export function formatAddress (a: ListenAddress): string {
  return a.family === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

function checkUpstream (entry: UpstreamEntry, where: string, defaultTimeoutMs: number, issues: ConfigIssue[]): UpstreamConfig | undefined {
  const spec: Static<typeof UpstreamObjectSchema> = typeof entry === 'string' ? { url: entry } : entry
  const parsed = parseUpstreamUrl(spec.url)
  if ('error' in parsed) {
    issues.push({ path: typeof entry === 'string' ? where : `${where}.url`, message: parsed.error })
    return undefined
  }
  const { protocol, host } = parsed.value
  const encrypted = protocol === 'tls' || protocol === 'https'
  const before = issues.length
  if (!encrypted) {
    for (const key of ['servername', 'caFile'] as const) {
      if (spec[key] !== undefined) issues.push({ path: `${where}.${key}`, message: 'only applies to tls:// and https:// upstreams' })
    }
  }
  if (spec.servername !== undefined && !isHostName(spec.servername)) {
    issues.push({ path: `${where}.servername`, message: `must be a host name (TLS SNI cannot carry an IP address), got ${describe(spec.servername)}` })
  }
  if (issues.length > before) return undefined
  return {
    url: spec.url,
    ...parsed.value,
    timeoutMs: spec.timeoutMs ?? defaultTimeoutMs,
    servername: spec.servername ?? (encrypted && isIP(host) === 0 ? host : undefined),
    caFile: spec.caFile
  }
}

function upstreamsFromResolvConf (source: ResolvConf, timeoutMs: number, listen: readonly ListenAddress[], localAddresses: readonly string[], issues: ConfigIssue[]): UpstreamConfig[] {
  const why = 'error' in source ? source.error : `${source.name} has no usable nameserver line`
  const addresses = 'error' in source ? [] : nameservers(source.text)
  const upstreams = addresses.map((ip): UpstreamConfig => {
    const url = `udp://${ip.includes(':') ? `[${ip}]` : ip}:53`
    return { url, protocol: 'udp', host: ip, port: 53, path: '', timeoutMs, servername: undefined, caFile: undefined }
  })
  // A nameserver that is egressd itself (this host names itself in resolv.conf) is left out, as
  // dnsmasq does; the upstreams in use are in the start-up log.
  const usable = upstreams.filter(u => ownListener(u, listen, localAddresses) === undefined)
  if (addresses.length === 0) {
    issues.push({ path: 'upstreams', message: `no upstreams configured and ${why}; list at least one (e.g. udp://192.0.2.53)` })
  } else if (usable.length === 0) {
    const own = formatAddress(ownListener(upstreams[0], listen, localAddresses) as ListenAddress)
    issues.push({ path: 'upstreams', message: `no upstreams configured, and every nameserver in ${'error' in source ? 'resolv.conf' : source.name} (${addresses.join(', ')}) is egressd's own DNS listener (dns.listen ${own}); list at least one upstream (e.g. udp://192.0.2.53)` })
  }
  return usable
}

/** IP addresses of `nameserver` lines, in order, without duplicates; anything else is ignored. */
export function nameservers (resolvConf: string): string[] {
  const found: string[] = []
  for (const line of resolvConf.split(/\r?\n/)) {
    const m = /^\s*nameserver\s+([^\s#;]+)/.exec(line)
    if (m !== null && isIP(m[1]) !== 0 && !found.includes(m[1])) found.push(m[1])
  }
  return found
}

function checkCategoryNames (categories: unknown, where: string, issues: ConfigIssue[]): void {
  if (!fits(BlocklistsSchema.properties.categories, categories)) return
  for (const name of Object.keys(categories)) {
    if (!isCategoryName(name)) issues.push({ path: `${where}.${name}`, message: categoryNameRule(name) })
  }
}

function checkLearning (raw: unknown, issues: ConfigIssue[]): void {
  const cidrs = at(raw, 'neverBlock')
  if (Array.isArray(cidrs)) {
    cidrs.forEach((c, i) => {
      if (typeof c === 'string' && normalizeCidr(c) === undefined) issues.push({ path: `learning.neverBlock.${i}`, message: `expected an IP address or CIDR (10.0.0.0/8, 2001:db8::/32), got ${describe(c)}` })
    })
  }
  const min = at(raw, 'minExpirySeconds')
  const max = at(raw, 'maxExpirySeconds')
  if (typeof min === 'number' && typeof max === 'number' && min > max) issues.push({ path: 'learning.minExpirySeconds', message: `must not exceed learning.maxExpirySeconds (${max}), got ${min}` })
}

function checkFirewall (raw: unknown, issues: ConfigIssue[]): void {
  const shared = at(raw, 'sharedRanges')
  if (Array.isArray(shared)) {
    shared.forEach((c, i) => {
      if (typeof c === 'string' && !isCategoryName(c)) issues.push({ path: `firewall.sharedRanges.${i}`, message: categoryNameRule(c) })
    })
  }
  const cidrs = at(raw, 'lanCidrs')
  if (!Array.isArray(cidrs)) return
  cidrs.forEach((c, i) => {
    if (typeof c === 'string' && normalizeCidr(c) === undefined) issues.push({ path: `firewall.lanCidrs.${i}`, message: `expected an IP address or CIDR (10.0.0.0/8, fd00::/8), got ${describe(c)}` })
  })
}

function checkBlocklists (raw: unknown, issues: ConfigIssue[]): ListPublicKey[] {
  checkCategoryNames(at(raw, 'categories'), 'blocklists.categories', issues)
  for (const family of ['ipv4', 'ipv6'] as const) {
    const v = at(raw, 'sinkhole', family)
    if (typeof v === 'string' && isIP(v) !== (family === 'ipv4' ? 4 : 6)) {
      issues.push({ path: `blocklists.sinkhole.${family}`, message: `expected an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} address, got ${describe(v)}` })
    }
  }
  const groups = at(raw, 'groups')
  if (Array.isArray(groups)) {
    const seen = new Map<string, number>()
    for (const [i, g] of (groups as unknown[]).entries()) {
      if (!fits(ClientGroupSchema, g)) continue
      const where = `blocklists.groups.${i}`
      const first = seen.get(g.name)
      if (first !== undefined) issues.push({ path: `${where}.name`, message: `duplicate group name "${g.name}" (also blocklists.groups.${first})` })
      else seen.set(g.name, i)
      if (g.name === 'default') issues.push({ path: `${where}.name`, message: '"default" is the name of the group of every other client; choose another' })
      g.clients.forEach((c, j) => {
        if (normalizeCidr(c) === undefined) issues.push({ path: `${where}.clients.${j}`, message: `expected an IP address or CIDR (10.20.0.0/24, fd00::/64), got ${describe(c)}` })
      })
      checkCategoryNames(g.categories, `${where}.categories`, issues)
    }
  }
  const publicKeys = checkPublicKeys(at(raw, 'update'), issues)
  const sources = at(raw, 'sources')
  if (!Array.isArray(sources)) return publicKeys
  const names = new Map<string, number>()
  for (const [i, source] of (sources as unknown[]).entries()) {
    if (!fits(ListSourceSchema, source)) continue
    const where = `blocklists.sources.${i}`
    if ((source.path === undefined) === (source.url === undefined)) {
      issues.push({ path: where, message: 'give exactly one of "path" or "url"' })
    }
    if (source.url !== undefined && !isHttpUrl(source.url)) {
      issues.push({ path: `${where}.url`, message: `expected an http:// or https:// URL, got ${describe(source.url)}` })
    }
    if (source.category !== undefined && !isCategoryName(source.category)) {
      issues.push({ path: `${where}.category`, message: categoryNameRule(source.category) })
    }
    const first = names.get(source.name)
    if (first !== undefined) issues.push({ path: `${where}.name`, message: `duplicate source name "${source.name}" (also blocklists.sources.${first})` })
    else names.set(source.name, i)
    checkUrlSource(source, where, at(raw, 'update', 'requireSignature') === true, publicKeys, issues)
    checkMs365Source(source, where, issues)
  }
  return publicKeys
}

/** format ms365 needs a selection (taking all of Microsoft 365 by accident would block Exchange and SharePoint); the key only goes with that format. */
function checkMs365Source (source: Static<typeof ListSourceSchema>, where: string, issues: ConfigIssue[]): void {
  const m = source.ms365
  if (source.format !== 'ms365') {
    if (m !== undefined) issues.push({ path: `${where}.ms365`, message: 'only applies to sources with format: ms365' })
    return
  }
  if (m === undefined || (m.serviceAreas === undefined && m.ids === undefined)) {
    issues.push({ path: `${where}.ms365`, message: 'format ms365 needs ms365.serviceAreas and/or ms365.ids: the Microsoft 365 endpoint sets to take (e.g. serviceAreas: [Skype])' })
  }
  if (m?.versionUrl !== undefined) {
    if (source.url === undefined) issues.push({ path: `${where}.ms365.versionUrl`, message: 'only applies to sources with a "url"' })
    else if (!/^https:\/\//i.test(m.versionUrl) || !isHttpUrl(m.versionUrl)) issues.push({ path: `${where}.ms365.versionUrl`, message: `expected an https:// URL (the answer is not signed), got ${describe(m.versionUrl)}` })
  }
}

const URL_SOURCE_KEYS = ['interval', 'timeoutMs', 'maxBytes', 'caFile', 'signed', 'signatureUrl', 'keys', 'minEntries', 'maxBadLineShare', 'maxShrink'] as const

/** Keys of URL sources: only on URL sources; http:// must be signed; signatures need keys. */
function checkUrlSource (source: Static<typeof ListSourceSchema>, where: string, requireSignature: boolean, keys: ListPublicKey[], issues: ConfigIssue[]): void {
  if (source.url === undefined) {
    for (const key of URL_SOURCE_KEYS) {
      if (source[key] !== undefined) issues.push({ path: `${where}.${key}`, message: 'only applies to sources with a "url"' })
    }
    return
  }
  if (source.name.includes('/') || source.name.startsWith('.')) {
    issues.push({ path: `${where}.name`, message: `a URL source's name names its stored copy, so it cannot contain "/" or start with "."; got ${describe(source.name)}` })
  }
  const signed = source.signed === true || source.signatureUrl !== undefined
  if (source.signed === false && source.signatureUrl !== undefined) issues.push({ path: `${where}.signed`, message: 'is false but signatureUrl is given' })
  const http = /^http:/i.test(source.url)
  if (http && !signed) issues.push({ path: `${where}.url`, message: 'plain http:// is refused unless the list is signed (set signed: true, or use https://)' })
  else if (requireSignature && !signed) issues.push({ path: `${where}.signed`, message: 'blocklists.update.requireSignature is on: set signed: true' })
  if (signed && keys.length === 0) issues.push({ path: `${where}.signed`, message: 'a signed list needs at least one key in blocklists.update.publicKeys' })
  if (source.signatureUrl !== undefined && !isHttpUrl(source.signatureUrl)) {
    issues.push({ path: `${where}.signatureUrl`, message: `expected an http:// or https:// URL, got ${describe(source.signatureUrl)}` })
  }
  if (source.caFile !== undefined && http) issues.push({ path: `${where}.caFile`, message: 'only applies to https:// URLs' })
  source.keys?.forEach((k, j) => {
    if (!keys.some(pk => pk.name === k)) issues.push({ path: `${where}.keys.${j}`, message: `no key named ${describe(k)} in blocklists.update.publicKeys` })
  })
  if (source.keys !== undefined && !signed) issues.push({ path: `${where}.keys`, message: 'only applies to signed lists' })
  if (source.interval !== undefined && parseDuration(source.interval) < 10_000) issues.push({ path: `${where}.interval`, message: `must be at least 10s, got ${describe(source.interval)}` })
}

/** `90s`, `30m`, `6h`, `1d` -> milliseconds (the schema has checked the pattern). */
function parseDuration (text: string): number {
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[text.slice(-1) as 's' | 'm' | 'h' | 'd']
  return Number(text.slice(0, -1)) * unit
}

/** blocklists.update.publicKeys: each given as exactly one of key (PEM or base64) or file (PEM), each an Ed25519 public key. */
function checkPublicKeys (raw: unknown, issues: ConfigIssue[]): ListPublicKey[] {
  const list = at(raw, 'publicKeys')
  if (!Array.isArray(list)) return []
  const out: ListPublicKey[] = []
  const seen = new Map<string, number>()
  for (const [i, entry] of (list as unknown[]).entries()) {
    if (!fits(PublicKeySchema, entry)) continue
    const where = `blocklists.update.publicKeys.${i}`
    const first = seen.get(entry.name)
    if (first !== undefined) issues.push({ path: `${where}.name`, message: `duplicate key name "${entry.name}" (also blocklists.update.publicKeys.${first})` })
    else seen.set(entry.name, i)
    if ((entry.key === undefined) === (entry.file === undefined)) {
      issues.push({ path: where, message: 'give exactly one of "key" (PEM or base64) or "file" (a PEM file)' })
      continue
    }
    let text = entry.key
    if (entry.file !== undefined) {
      try {
        text = readFileSync(entry.file, 'utf8')
      } catch (err) {
        issues.push({ path: `${where}.file`, message: `cannot read ${entry.file}: ${errorText(err)}` })
        continue
      }
    }
    const parsed = ed25519PublicKeyPem(text ?? '')
    if ('error' in parsed) issues.push({ path: `${where}.${entry.file !== undefined ? 'file' : 'key'}`, message: parsed.error })
    else out.push({ name: entry.name, pem: parsed.pem })
  }
  return out
}

function checkUnique (values: string[], pathOf: (i: number) => string, what: string, issues: ConfigIssue[]): void {
  values.forEach((value, i) => {
    const first = values.indexOf(value)
    if (first !== i) issues.push({ path: pathOf(i), message: `duplicate ${what} (same as ${pathOf(first)})` })
  })
}

// ---------------------------------------------------------------------------------------------
// Environment overrides (see the header for the list)

interface EnvOverrides { logLevel?: LogLevel, dataDir?: string }

function readEnv (env: NodeJS.ProcessEnv, issues: ConfigIssue[]): EnvOverrides {
  const out: EnvOverrides = {}
  const level = env.EGRESSD_LOG_LEVEL
  if (level !== undefined && level !== '') {
    if (fits(LogLevelSchema, level)) out.logLevel = level
    else issues.push({ path: 'env.EGRESSD_LOG_LEVEL', message: `must be one of ${LogLevelSchema.anyOf.map(s => s.const).join(', ')}; got ${describe(level)}` })
  }
  const dataDir = env.EGRESSD_DATA_DIR
  if (dataDir !== undefined && dataDir !== '') {
    if (dataDir.trim() === '') issues.push({ path: 'env.EGRESSD_DATA_DIR', message: 'must not be blank' })
    else out.dataDir = dataDir
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Assembly: only reached when the file fits the schema and every check passed.

function assemble (file: ConfigFile, parts: Parts, env: EnvOverrides, source: string): Config {
  const { dns, cache, api, blocklists } = file
  if (parts.apiListen === undefined) throw new Error('internal: api.listen was not parsed')
  return {
    dns: {
      listen: parts.listen,
      allowClients: dns.allowClients.map(c => normalizeCidr(c) as string),
      ednsUdpSize: dns.ednsUdpSize,
      upstreamTimeoutMs: dns.upstreamTimeoutMs,
      udpSockets: dns.udpSockets,
      maxInflight: dns.maxInflight,
      shutdownGraceMs: dns.shutdownGraceMs,
      tcp: {
        idleTimeoutMs: dns.tcp.idleTimeoutMs,
        maxConnections: dns.tcp.maxConnections,
        maxInflightPerConnection: dns.tcp.maxInflightPerConnection,
        maxConnectionsPerClient: dns.tcp.maxConnectionsPerClient,
        maxQueuedBytesPerConnection: dns.tcp.maxQueuedBytesPerConnection,
        stuckTimeoutMs: dns.tcp.stuckTimeoutMs
      },
      udp: { receiveBufferBytes: dns.udp.receiveBufferBytes, answerTimeSample: dns.udp.answerTimeSample },
      chaos: { answer: dns.chaos.answer }
    },
    upstreams: parts.upstreams,
    cache: {
      enabled: cache.enabled,
      maxEntries: cache.maxEntries,
      minTtl: cache.minTtl,
      maxTtl: cache.maxTtl,
      negativeMaxTtl: cache.negativeMaxTtl
    },
    api: {
      listen: parts.apiListen,
      tokens: api.tokens.map(t => ({ name: t.name, role: t.role, sha256: t.sha256.toLowerCase() })),
      tls: api.tls === undefined ? undefined : { cert: api.tls.cert, key: api.tls.key },
      allowPlaintext: api.allowPlaintext,
      bodyLimit: api.bodyLimit,
      rateLimit: { perSecond: api.rateLimit.perSecond, burst: api.rateLimit.burst },
      server: { ...api.server },
      liveTail: { ...api.liveTail }
    },
    dataDir: env.dataDir ?? file.dataDir,
    blocklists: {
      dir: blocklists.dir,
      action: blocklists.action,
      blockTtl: blocklists.blockTtl,
      sinkhole: { ipv4: blocklists.sinkhole.ipv4, ipv6: blocklists.sinkhole.ipv6 },
      categories: categoryOverrides(blocklists.categories),
      sources: blocklists.sources.map(listSource),
      update: {
        publicKeys: parts.publicKeys,
        allowHosts: blocklists.update.allowHosts.map(h => h.toLowerCase().replace(/^\[(.*)\]$/, '$1')),
        requireSignature: blocklists.update.requireSignature
      },
      rules: { block: blocklists.rules.block, allow: blocklists.rules.allow },
      groups: blocklists.groups.map(g => ({
        name: g.name,
        clients: g.clients.map(c => normalizeCidr(c) as string),
        categories: categoryOverrides(g.categories),
        exempt: g.exempt,
        rules: { block: g.rules.block, allow: g.rules.allow }
      })),
      guard: { maxPrefix: { v4: blocklists.guard.maxPrefix.v4, v6: blocklists.guard.maxPrefix.v6 }, force: blocklists.guard.force }
    },
    firewall: { ...file.firewall, lanCidrs: file.firewall.lanCidrs.map(c => normalizeCidr(c) as string), evidence: { ...file.firewall.evidence } },
    learning: { ...file.learning, neverBlock: file.learning.neverBlock.map(c => normalizeCidr(c) as string) },
    store: {
      path: file.store.path ?? joinPath(env.dataDir ?? file.dataDir, 'egressd.sqlite'),
      logQueries: file.store.logQueries,
      queueMax: file.store.queueMax,
      batchMs: file.store.batchMs,
      retention: { ...file.store.retention },
      synchronous: file.store.synchronous,
      busyTimeoutMs: file.store.busyTimeoutMs,
      threadNice: file.store.threadNice
    },
    log: { level: env.logLevel ?? file.log.level },
    source
  }
}

function categoryOverrides (c: Record<string, { enabled?: boolean, action?: BlockAction }>): Record<string, CategoryOverride> {
  return Object.fromEntries(Object.entries(c).map(([name, o]) => [name, {
    ...(o.enabled !== undefined && { enabled: o.enabled }),
    ...(o.action !== undefined && { action: o.action })
  }]))
}

/** 'a.b.c.d', 'a.b.c.d/n', v6 likewise -> normalized 'addr/len'; undefined if not an address or CIDR. */
function normalizeCidr (text: string): string | undefined {
  const slash = text.indexOf('/')
  const addr = slash < 0 ? text : text.slice(0, slash)
  const family = isIP(addr)
  if (family === 0) return undefined
  const max = family === 4 ? 32 : 128
  const len = slash < 0 ? max : Number(text.slice(slash + 1))
  if (!Number.isInteger(len) || len < 0 || len > max || (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))) return undefined
  return `${addr.toLowerCase()}/${len}`
}

function listSource (s: Static<typeof ListSourceSchema>): ListSource {
  return {
    name: s.name,
    ...(s.path !== undefined && { path: s.path }),
    ...(s.url !== undefined && { url: s.url }),
    format: s.format,
    ...(s.category !== undefined && { category: s.category }),
    ...(s.ms365 !== undefined && { ms365: { ...s.ms365 } }),
    ...(s.url !== undefined && {
      update: {
        intervalMs: s.interval === undefined ? 6 * 3_600_000 : parseDuration(s.interval),
        timeoutMs: s.timeoutMs ?? 30_000,
        maxBytes: s.maxBytes ?? 50 * 1024 * 1024,
        ...(s.caFile !== undefined && { caFile: s.caFile }),
        ...((s.signed === true || s.signatureUrl !== undefined) && { signatureUrl: s.signatureUrl ?? `${s.url}.sig` }),
        keys: s.keys ?? [],
        minEntries: s.minEntries ?? 1,
        maxBadLineShare: s.maxBadLineShare ?? 0.01,
        maxShrink: s.maxShrink ?? 0.5
      }
    })
  }
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const item of Object.values(value)) deepFreeze(item)
  }
  return value
}

// ---------------------------------------------------------------------------------------------
// Addresses and URLs

type Parsed<T> = { value: T } | { error: string }

/** `127.0.0.1:5353` or `[::1]:5353`; the host must be an IP literal, port 0 lets the OS pick. */
function parseSocketAddress (text: string): Parsed<ListenAddress> {
  const usage = `expected IPv4:port or [IPv6]:port (e.g. 127.0.0.1:5353, [::1]:5353), got ${describe(text)}`
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text)
  if (m === null) return { error: usage }
  const [, host, portText] = m
  const family = isIP(host)
  if (family === 0) return { error: `${describe(host)} is not an IP address; listen on an IP literal such as 0.0.0.0, 127.0.0.1, [::] or [::1]` }
  if ((family === 6) !== text.startsWith('[')) return { error: usage }
  const port = Number(portText)
  if (port > 65535) return { error: `port ${port} is out of range (0-65535)` }
  return { value: { host, port, family: family === 6 ? 6 : 4 } }
}

const SCHEMES: Record<string, { protocol: UpstreamProtocol, port: number }> = {
  'udp:': { protocol: 'udp', port: 53 },
  'tcp:': { protocol: 'tcp', port: 53 },
  'tls:': { protocol: 'tls', port: 853 },
  'https:': { protocol: 'https', port: 443 }
}

type UpstreamAddress = Pick<UpstreamConfig, 'protocol' | 'host' | 'port' | 'path'>

function parseUpstreamUrl (url: string): Parsed<UpstreamAddress> {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:)(\/\/)?(.*)$/s.exec(url)
  if (m === null) {
    const hint = isIP(url) !== 0 ? ` (write udp://${url.includes(':') ? `[${url}]` : url})` : ''
    return { error: `${describe(url)} is not an upstream URL${hint}; use udp://, tcp://, tls:// or https://` }
  }
  const scheme = m[1].toLowerCase()
  const known = SCHEMES[scheme]
  if (known === undefined) return { error: `unsupported scheme "${scheme}" (use udp://, tcp://, tls:// or https://)` }
  if (m[2] === undefined) return { error: `expected "${scheme}//" followed by a host in ${describe(url)}` }
  const rest = m[3]
  if (/[?#]/.test(rest)) return { error: `query strings and fragments are not supported in ${describe(url)}` }
  const slash = rest.indexOf('/')
  const authority = slash < 0 ? rest : rest.slice(0, slash)
  const pathPart = slash < 0 ? '' : rest.slice(slash)
  if (authority.includes('@')) return { error: `user info is not supported in ${describe(url)}` }

  const hostPort = splitHostPort(authority)
  if ('error' in hostPort) return { error: `${hostPort.error} in ${describe(url)}` }
  const { host, portText } = hostPort.value
  const port = portText === undefined ? known.port : Number(portText)
  if (portText !== undefined && !(/^\d{1,5}$/.test(portText) && port >= 1 && port <= 65535)) {
    return { error: `invalid port ${describe(portText)} in ${describe(url)} (1-65535)` }
  }

  const { protocol } = known
  if (protocol === 'udp' || protocol === 'tcp') {
    if (isIP(host) === 0) {
      return { error: `${scheme}// upstreams need an IP address, not ${describe(host)} (resolving a name would need DNS; use tls:// or https:// for names)` }
    }
  } else if (isIP(host) === 0 && !isHostName(host)) {
    return { error: `${describe(host)} is neither an IP address nor a host name in ${describe(url)}` }
  }

  if (protocol !== 'https' && pathPart !== '' && pathPart !== '/') {
    return { error: `a path is only allowed for https:// upstreams, got ${describe(url)}` }
  }
  const path = protocol === 'https' ? (pathPart === '' ? '/dns-query' : pathPart) : ''
  return { value: { protocol, host, port, path } }
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`; the host comes back without brackets. */
function splitHostPort (authority: string): Parsed<{ host: string, portText: string | undefined }> {
  if (authority === '') return { error: 'missing host' }
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']')
    if (close < 0) return { error: 'missing "]"' }
    const host = authority.slice(1, close)
    const after = authority.slice(close + 1)
    if (isIP(host) !== 6) return { error: `${describe(host)} is not an IPv6 address` }
    if (after !== '' && !after.startsWith(':')) return { error: `unexpected ${describe(after)} after "]"` }
    return { value: { host: canonicalIpv6(host), portText: after === '' ? undefined : after.slice(1) } }
  }
  const colons = authority.split(':').length - 1
  if (colons > 1) return { error: 'IPv6 addresses must be in brackets, e.g. [2001:db8::53]' }
  const [host, portText] = authority.split(':')
  if (host === '') return { error: 'missing host' }
  return { value: { host, portText } }
}

/**
 * RFC 5952 form (lower-case, zeros compressed), as the kernel reports answer sources: UDP answers
 * are matched against the upstream address as a string. Zone ids (fe80::1%eth0) stay as written.
 */
function canonicalIpv6 (host: string): string {
  if (host.includes('%')) return host
  return new URL(`http://[${host}]/`).hostname.slice(1, -1)
}

function isHostName (name: string): boolean {
  const label = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
  if (name.length > 253 || /^[\d.]+$/.test(name)) return false
  return new RegExp(`^${label}(?:\\.${label})*\\.?$`).test(name)
}

function isHttpUrl (text: string): boolean {
  try {
    const u = new URL(text)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== ''
  } catch {
    return false
  }
}

const isCategoryName = (name: string) => /^[a-z0-9][a-z0-9_-]*$/.test(name)
const categoryNameRule = (name: string) =>
  `category names use lowercase letters, digits, "-" and "_" (like the folders in blocklists/), got ${describe(name)}`

// ---------------------------------------------------------------------------------------------
// Small helpers

function readResolvConf (path: string): ResolvConf {
  try {
    return { text: readFileSync(path, 'utf8'), name: path }
  } catch (err) {
    return { error: `cannot read ${path}: ${errorText(err)}` }
  }
}

function fits<T extends TSchema> (schema: T, value: unknown): value is Static<T> {
  return Value.Check(schema, value)
}

function isMapping (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Walks plain mappings; anything else on the way gives undefined. */
function at (value: unknown, ...keys: string[]): unknown {
  let current = value
  for (const key of keys) current = isMapping(current) && Object.hasOwn(current, key) ? current[key] : undefined
  return current
}

const join = (path: string, key: string | number) => path === '' ? String(key) : `${path}.${key}`

/** `/dns/listen/0` (RFC 6901) -> `dns.listen.0` */
function dotted (pointer: string): string {
  return pointer.split('/').slice(1).map(s => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.')
}

function lastKey (pointer: string): string {
  return dotted(pointer.slice(pointer.lastIndexOf('/')))
}

function describe (value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  return typeof value // a symbol or a function: never from YAML
}

function firstLine (message: string): string {
  return message.split('\n')[0].replace(/:$/, '')
}

function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Stable sort into file order of sections (unknown top-level keys first, env last), so one section's issues stay together. */
function bySection (issues: ConfigIssue[]): ConfigIssue[] {
  const order = ['', ...Object.keys(ConfigFileSchema.properties), 'overrides', 'env']
  const rank = (i: ConfigIssue) => Math.max(0, order.indexOf(i.path.split('.')[0]))
  return issues.map((issue, n) => ({ issue, n }))
    .sort((a, b) => rank(a.issue) - rank(b.issue) || a.n - b.n)
    .map(x => x.issue)
}

function dedupe (issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>()
  return issues.filter(i => {
    const key = `${i.path}\n${i.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
