// Fuzzing the config loader (src/config/load.ts parseConfig): random YAML/JSON trees built from the
// schema's own keys and troublesome values, a valid full config with one field changed, and YAML
// text from YAML's own syntax (anchors, aliases, tags, merge keys, flow and block collections) give
// either a deep-frozen Config or a ConfigError (EGRESSD_ERR_CONFIG_INVALID) whose issues each name
// a field, never another error (TypeError, RangeError), never a message with "[object Object]".

import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { stringify } from 'yaml'
import type { TSchema } from '@sinclair/typebox'
import { ConfigError } from '../../src/errors.js'
import { parseConfig } from '../../src/config/load.js'
import { ConfigFileSchema } from '../../src/config/schema.js'
import { fc, fuzz } from './harness.js'

const TARGET = 'config-load'

/** Every key name in the schema, at any depth. */
function schemaKeys (s: TSchema, out: Set<string>): Set<string> {
  if (s.properties !== undefined) for (const [k, sub] of Object.entries<TSchema>(s.properties)) { out.add(k); schemaKeys(sub, out) }
  if (s.items !== undefined && !Array.isArray(s.items)) schemaKeys(s.items as TSchema, out)
  if (s.anyOf !== undefined) for (const sub of s.anyOf as TSchema[]) schemaKeys(sub, out)
  if (s.patternProperties !== undefined) for (const sub of Object.values<TSchema>(s.patternProperties)) schemaKeys(sub, out)
  return out
}
const KEYS = [...schemaKeys(ConfigFileSchema, new Set())]
const TOP = Object.keys(ConfigFileSchema.properties)

const pem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString()

const STRINGS = [
  '', ' ', '127.0.0.1:5353', '[::1]:5353', '0.0.0.0:53', '[::]:0', '127.0.0.1:0', '127.0.0.1:65536', '1.2.3.4', '::1', 'fe80::1%eth0', '[fe80::1%eth0]:53',
  'udp://127.0.0.1', 'udp://127.0.0.1:5353', 'tcp://[::1]:53', 'tls://dns.example:853', 'https://dns.example/dns-query', 'https://[::1]/q', 'https://a@b/', 'udp://x',
  'https://[::1', 'http://list.example/x.txt', 'https://list.example/x.txt', 'ftp://x', 'udp:127.0.0.1', '//', 'udp://127.0.0.1:0', 'udp://127.0.0.1?x',
  '10.0.0.0/8', 'fd00::/8', '0.0.0.0/0', '::/0', '1.2.3.4/33', '1.2.3.4/', '/8', '10.0.0.0/08', 'x/8',
  '90s', '30m', '6h', '1d', '0s', '9999999d', '5s', 'nxdomain', 'refused', 'nodata', 'null', 'sinkhole', 'monitor', 'allow',
  'plain', 'hosts', 'adblock', 'dnsmasq', 'cidr', 'admin', 'viewer', 'metrics', 'info', 'debug', 'silent', 'NORMAL', 'FULL', 'OFF', 'blocked', 'all',
  'a'.repeat(64), 'A'.repeat(64), 'telegram', 'doh-bypass', 'Bad Name', '.hidden', 'a/b', '__proto__', 'constructor', 'toString', 'hasOwnProperty',
  pem, pem.replace(/\n/g, ''), 'MCowBQYDK2VwAyEA' + 'A'.repeat(43) + '=', '-----BEGIN PUBLIC KEY-----', './blocklists', '/nonexistent/egressd/key.pem',
  'telegram.org', '*.example', '/re/', '@@x', 'x'.repeat(300), '\u0000', '\ud800', 'эгресс', 'nft_egressd', 'eth0', 'lan0@x'
]

const NUMBERS = [0, 1, -1, 53, 512, 1232, 4096, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1e308, -1e308, 0.5, -0, 1e-9, 86400, 100_000_000, 0.01]

const scalarArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 3, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 2, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }
)

const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...KEYS) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', '<<', '', ' ', '0', 'a.b', '~/', 'valueOf', 'prototype') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }
)

const treeArb: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>(tie => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalarArb,
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(keyArb, tie('node'), { maxKeys: 5 })
  )
})).node

/** A top level keyed by the config's sections, so trees reach into every section. */
const configTreeArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(fc.constantFrom(...TOP), treeArb, { maxKeys: 6 }) },
  { weight: 1, arbitrary: treeArb }
)

/** A config with every section filled in, valid as it is. */
function fullConfig (): Record<string, unknown> {
  return {
    dns: { listen: ['127.0.0.1:5353', '[::1]:5353'], allowClients: ['127.0.0.0/8', '10.0.0.0/8'], ednsUdpSize: 1232, upstreamTimeoutMs: 2000, tcp: { idleTimeoutMs: 10000, maxConnections: 1024, maxInflightPerConnection: 64 } },
    upstreams: ['udp://127.0.0.1:53', { url: 'tls://dns.example', timeoutMs: 3000, servername: 'dns.example' }, 'https://dns.example/dns-query'],
    cache: { enabled: true, maxEntries: 1000, minTtl: 0, maxTtl: 86400, negativeMaxTtl: 3600 },
    api: { listen: '127.0.0.1:8053', tokens: [{ name: 'a', role: 'admin', sha256: 'a'.repeat(64) }], allowPlaintext: false, bodyLimit: 1048576, rateLimit: { perSecond: 20, burst: 100 } },
    dataDir: './var',
    blocklists: {
      dir: './blocklists',
      action: 'nxdomain',
      blockTtl: 60,
      sinkhole: { ipv4: '0.0.0.0', ipv6: '::' },
      categories: { telegram: { enabled: true, action: 'refused' } },
      sources: [
        { name: 'local', path: './x.txt', format: 'hosts', category: 'telegram' },
        { name: 'remote', url: 'https://list.example/x.txt', interval: '6h', timeoutMs: 30000, maxBytes: 1000000, signed: true, keys: ['k1'], minEntries: 1, maxBadLineShare: 0.1, maxShrink: 0.5 }
      ],
      update: { publicKeys: [{ name: 'k1', key: pem }], allowHosts: ['list.example'], requireSignature: false },
      rules: { block: ['bad.example'], allow: ['good.example'] },
      groups: [{ name: 'lab', clients: ['10.1.0.0/16'], categories: { telegram: { enabled: false } }, exempt: false, rules: { block: [], allow: [] } }]
    },
    firewall: { table: 'egressd', lanInterfaces: ['eth0'], lanCidrs: ['10.0.0.0/8'], sync: false },
    store: { logQueries: 'blocked' },
    log: { level: 'info' }
  }
}

/** Every path (keys and indexes) into a JSON tree. */
function paths (v: unknown, at: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(at)
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out))
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out)
  return out
}
const FULL_PATHS = paths(fullConfig()).filter(p => p.length > 0)

type Edit = { path: number, op: 'set' | 'delete' | 'wrap' | 'add', value: unknown, key: string }
const editArb: fc.Arbitrary<Edit> = fc.record({
  path: fc.nat(FULL_PATHS.length - 1),
  op: fc.constantFrom('set', 'set', 'set', 'delete', 'wrap', 'add'),
  value: fc.oneof(scalarArb, treeArb),
  key: keyArb
})

/** An object or an array in a config tree, indexed by key or position. */
type Branch = Record<string | number, unknown>

function applyEdit (root: Branch, e: Edit): void {
  const path = FULL_PATHS[e.path]
  let parent = root
  // An earlier edit may have replaced something on the way: then this edit does nothing.
  for (const k of path.slice(0, -1)) {
    const next = parent[k]
    if (next === null || typeof next !== 'object') return
    parent = next as Branch
  }
  const last = path[path.length - 1]
  if (!Object.hasOwn(parent, last)) return
  if (e.op === 'set') parent[last] = e.value
  else if (e.op === 'delete') { if (Array.isArray(parent)) parent.splice(last as number, 1); else delete parent[last] }
  else if (e.op === 'wrap') parent[last] = [parent[last]]
  else if (parent[last] !== null && typeof parent[last] === 'object' && !Array.isArray(parent[last])) Object.defineProperty(parent[last], e.key, { value: e.value, enumerable: true, writable: true, configurable: true })
  else parent[last] = e.value
}

const optionsArb = fc.record({
  resolvConf: fc.option(fc.constantFrom('', 'nameserver 192.0.2.53\n', 'nameserver 127.0.0.1\nnameserver ::1', 'nameserver fe80::1%eth0', 'nameserver x', '# nothing'), { nil: undefined }),
  env: fc.record({
    EGRESSD_LOG_LEVEL: fc.option(fc.constantFrom('', 'debug', 'loud', ' '), { nil: undefined }),
    EGRESSD_DATA_DIR: fc.option(fc.constantFrom('', ' ', '/var/lib/egressd'), { nil: undefined })
  }, { requiredKeys: [] }),
  overrides: fc.option(fc.record({
    listen: fc.array(fc.constantFrom(...STRINGS.slice(0, 10), ''), { maxLength: 3 }),
    upstreams: fc.array(fc.constantFrom(...STRINGS.slice(10, 22)), { maxLength: 3 }),
    blocklists: fc.array(fc.constantFrom('./a.txt', '', 'x'), { maxLength: 2 })
  }, { requiredKeys: [] }), { nil: undefined })
})

function isDeepFrozen (v: unknown, depth = 0): boolean {
  if (v === null || typeof v !== 'object' || depth > 20) return true
  return Object.isFrozen(v) && Object.values(v).every(x => isDeepFrozen(x, depth + 1))
}

/** Config or ConfigError with a field named by each issue; anything else fails. */
function checkParse (text: string, opts: Parameters<typeof parseConfig>[1], tree: boolean): void {
  let config
  try {
    config = parseConfig(text, opts)
  } catch (err) {
    if (!(err instanceof ConfigError) || err.code !== 'EGRESSD_ERR_CONFIG_INVALID') throw new Error(`threw ${(err as Error)?.name}: ${(err as Error)?.stack ?? String(err)}`)
    if (err.issues.length === 0) throw new Error('ConfigError without issues')
    for (const i of err.issues) {
      if (typeof i.path !== 'string' || typeof i.message !== 'string' || i.message === '') throw new Error(`bad issue ${JSON.stringify(i)}`)
      if (/\[object |\bundefined\b|TypeError/.test(i.message)) throw new Error(`issue message ${JSON.stringify(i)}`)
      // Path '' is the root, or a key that is itself '' (then the message names it).
      if (tree && i.path === '' && !/^(YAML|expected a mapping of keys|unknown key "")/.test(i.message)) throw new Error(`issue names no field: ${JSON.stringify(i)}`)
    }
    return
  }
  if (!isDeepFrozen(config)) throw new Error('config is not deep-frozen')
  if (config.upstreams.length === 0 || config.dns.listen.length === 0) throw new Error('config without upstreams or listen addresses')
}

fuzz(t, {
  target: TARGET,
  name: 'random-tree',
  runs: 250,
  scale: 0.2,
  arb: fc.tuple(configTreeArb, fc.boolean(), optionsArb),
  check: ([tree, asYaml, opts]) => {
    checkParse(asYaml ? stringify(tree) : JSON.stringify(tree) ?? '', opts, true)
  }
})

fuzz(t, {
  target: TARGET,
  name: 'full-config-one-edit',
  runs: 200,
  scale: 0.2,
  arb: fc.tuple(fc.array(editArb, { minLength: 1, maxLength: 3 }), fc.boolean(), optionsArb),
  check: ([edits, asYaml, opts]) => {
    const c = fullConfig()
    for (const e of edits) applyEdit(c, e)
    checkParse(asYaml ? stringify(c) : JSON.stringify(c), opts, true)
  }
})

const YAML_TOKENS = [
  'dns:', 'upstreams:', 'cache:', 'api:', 'blocklists:', 'listen:', 'sources:', 'groups:', 'name:', 'url:', 'tokens:', 'categories:', 'log:', 'level:',
  ' ', '  ', '\n', '\n  ', '\n    ', '- ', ': ', '[', ']', '{', '}', ',', '"', "'", '|', '>', '#', '&a ', '*a', '&b ', '*b', '!!set ', '!!omap ',
  '!!binary ', '!!map ', '!!seq ', '!!str ', '!!int ', '!!float ', '!!bool ', '!!null ', '!!timestamp ', '!foo ', '<<: ', '? ', '---\n', '...\n',
  '%YAML 1.1\n', '%TAG ! tag:x,2000:\n', 'null', '~', 'true', 'yes', 'on', '0x1F', '0o17', '.inf', '-.inf', '.nan', '1e3', '2020-01-01', '127.0.0.1:53',
  'udp://127.0.0.1', '"\\u0000"', '\t', '\r\n', '\ufeff', 'a', '0', '__proto__: ', 'constructor: '
]

fuzz(t, {
  target: TARGET,
  name: 'yaml-text',
  runs: 500,
  scale: 0.2,
  arb: fc.tuple(fc.array(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...YAML_TOKENS) }, { weight: 1, arbitrary: fc.string({ maxLength: 3 }) }), { maxLength: 40 }), optionsArb),
  check: ([tokens, opts]) => { checkParse(tokens.join(''), opts, false) }
})

fuzz(t, {
  target: TARGET,
  name: 'yaml-collection-tags',
  runs: 100,
  scale: 0.2,
  arb: fc.tuple(fc.constantFrom(...TOP, 'dns.tcp', 'blocklists.update', 'api.rateLimit'), fc.constantFrom('!!set', '!!omap', '!!binary', '!!pairs'), fc.constantFrom(...KEYS)),
  check: ([where, tag, key]) => {
    const body = tag === '!!binary' ? 'aGVsbG8=' : tag === '!!set' ? `{${key}}` : `[${key}: 1]`
    const [a, b] = where.split('.')
    const text = b === undefined ? `${a}: ${tag} ${body}\n` : `${a}:\n  ${b}: ${tag} ${body}\n`
    let config
    try {
      config = parseConfig(text, { resolvConf: 'nameserver 192.0.2.53' })
    } catch (err) {
      checkParse(text, { resolvConf: 'nameserver 192.0.2.53' }, true)
      if (!(err as ConfigError).issues.some(i => i.path === where || i.path.startsWith(where + '.'))) throw new Error(`no issue names ${where}: ${(err as Error).message}`)
      return
    }
    throw new Error(`${JSON.stringify(text)}: a YAML ${tag} was taken as ${JSON.stringify(where.split('.').reduce<unknown>((o, k) => (o as Branch | undefined)?.[k], config))}`)
  }
})
