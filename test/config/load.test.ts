// Tests for src/config/load.ts: defaults, freezing, every kind of config error with its dotted
// path, upstream normalization, the resolv.conf fallback, env overrides and the example file.

import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative as relativeTo } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, parseConfig, type ParseConfigOptions } from '../../src/config/load.js'
import type { Config } from '../../src/config/types.js'
import { ConfigError, type ConfigIssue } from '../../src/errors.js'
import { tempDir } from '../helpers/tmp.js'

const RESOLV = 'nameserver 192.0.2.1\n'
const SHA = 'ab'.repeat(32)
const EXAMPLE = fileURLToPath(new URL('../../config/egressd.example.yaml', import.meta.url))

const parse = (text: string, opts: ParseConfigOptions = {}): Config =>
  parseConfig(text, { resolvConf: RESOLV, ...opts })

/** The issues of the ConfigError that `text` causes; [] when it loads. */
function issuesOf (text: string, opts: ParseConfigOptions = {}): ConfigIssue[] {
  try {
    parse(text, opts)
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues]
    throw err
  }
  return []
}

const DEFAULTS: Omit<Config, 'source'> = {
  dns: {
    listen: [{ host: '127.0.0.1', port: 5353, family: 4 }, { host: '::1', port: 5353, family: 6 }],
    allowClients: ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '::1/128', 'fc00::/7', 'fe80::/10'],
    ednsUdpSize: 1232,
    upstreamTimeoutMs: 2000,
    udpSockets: 4,
    maxInflight: 4096,
    shutdownGraceMs: 5000,
    tcp: { idleTimeoutMs: 10000, maxConnections: 1024, maxInflightPerConnection: 64, maxConnectionsPerClient: 64, maxQueuedBytesPerConnection: 131072, stuckTimeoutMs: 10000 },
    udp: { receiveBufferBytes: 4194304, answerTimeSample: 8 },
    chaos: { answer: undefined }
  },
  upstreams: [{
    url: 'udp://192.0.2.1:53', protocol: 'udp', host: '192.0.2.1', port: 53, path: '', timeoutMs: 2000, servername: undefined, caFile: undefined
  }],
  cache: { enabled: true, maxEntries: 100000, minTtl: 0, maxTtl: 86400, negativeMaxTtl: 3600 },
  api: { listen: { host: '127.0.0.1', port: 8053, family: 4 }, tokens: [], tls: undefined, allowPlaintext: false, bodyLimit: 1048576, rateLimit: { perSecond: 20, burst: 100 },
    server: { headersTimeoutMs: 10000, requestTimeoutMs: 30000, idleTimeoutMs: 30000, keepAliveTimeoutMs: 5000, maxRequestsPerSocket: 1000, maxConnections: 1024, maxConnectionsPerClient: 64 },
    liveTail: { maxStreams: 64, maxStreamsPerClient: 4, maxQueuedBytesPerStream: 262144, stuckTimeoutMs: 30000 } },
  dataDir: './var',
  blocklists: {
    dir: './blocklists',
    action: 'nxdomain',
    blockTtl: 60,
    sinkhole: { ipv4: '0.0.0.0', ipv6: '::' },
    categories: {},
    sources: [],
    update: { publicKeys: [], allowHosts: [], requireSignature: false },
    rules: { block: [], allow: [] },
    groups: [],
    guard: { maxPrefix: { v4: 16, v6: 32 }, force: [] }
  },
  firewall: {
    table: 'egressd',
    lanInterfaces: [],
    lanCidrs: [],
    rejectAddresses: true,
    redirectDns: true,
    rejectDot: true,
    rejectDoq: true,
    sync: false,
    sharedRanges: [],
    evidence: { enabled: true, intervalMs: 5000, perPairSeconds: 300 }
  },
  learning: {
    enabled: true,
    resolvesPerSecond: 20,
    queueMax: 1000,
    ttlMultiple: 4,
    minExpirySeconds: 21600,
    maxExpirySeconds: 604800,
    probeIntervalSeconds: 3600,
    guardWindowSeconds: 604800,
    neverBlock: [],
    maxAllowedAddresses: 200000,
    maxLearned: 50000
  },
  store: {
    path: 'var/egressd.sqlite',
    logQueries: 'blocked',
    queueMax: 100000,
    batchMs: 1000,
    retention: { days: 90, maxRows: 0, maxBytes: 0 },
    synchronous: 'NORMAL',
    busyTimeoutMs: 1000,
    threadNice: 19
  },
  log: { level: 'info' }
}

t.test('empty or comment-only text gives every default', async t => {
  for (const text of ['', '\n\n', '# nothing here\n  # still nothing\n', '---\n', 'dns:\ncache:\n']) {
    const config = parse(text)
    t.same(config, { ...DEFAULTS, source: 'defaults' }, JSON.stringify(text))
  }
  t.equal(parse('', { file: '/etc/egressd/egressd.yaml' }).source, '/etc/egressd/egressd.yaml')
})

t.test('the result is deep-frozen', async t => {
  const config = parse(`
api: { tokens: [{ name: soc, role: viewer, sha256: "${SHA}" }] }
blocklists: { categories: { signal: { enabled: true } }, sources: [{ name: x, path: /tmp/x.txt }] }
`)
  const unfrozen: string[] = []
  const walk = (value: unknown, path: string): void => {
    if (typeof value !== 'object' || value === null) return
    if (!Object.isFrozen(value)) unfrozen.push(path)
    for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`)
  }
  walk(config, 'config')
  t.same(unfrozen, [])
  // ESM is strict mode: writing to a frozen object throws.
  t.throws(() => { (config.dns as { ednsUdpSize: number }).ednsUdpSize = 4096 }, TypeError)
  t.throws(() => { (config.dns.listen as unknown[]).push({}) }, TypeError)
  t.throws(() => { (config.api.tokens[0] as { role: string }).role = 'admin' }, TypeError)
})

t.test('keys set in the file replace defaults; the rest stay', async t => {
  const config = parse(`
dns:
  listen: ["0.0.0.0:53", "[::]:53", "127.0.0.1:0"]
  ednsUdpSize: 4096
  tcp: { idleTimeoutMs: 2500 }
cache: { enabled: false, minTtl: 60, maxTtl: 60 }
api:
  listen: "[::1]:9000"
  tokens: [{ name: soc, role: viewer, sha256: "${SHA.toUpperCase()}" }]
dataDir: /var/lib/egressd
blocklists:
  dir: /usr/share/egressd/blocklists
  categories: { signal: { enabled: true }, gmail: { enabled: false }, zoom: {} }
  sources:
    - { name: local-extra, path: /etc/egressd/extra.txt }
    - { name: central, url: "https://lists.example.net/t.txt", format: hosts, category: telegram }
log: { level: debug }
`)
  t.same(config.dns.listen, [
    { host: '0.0.0.0', port: 53, family: 4 },
    { host: '::', port: 53, family: 6 },
    { host: '127.0.0.1', port: 0, family: 4 }
  ])
  t.equal(config.dns.ednsUdpSize, 4096)
  t.same(config.dns.tcp, { ...DEFAULTS.dns.tcp, idleTimeoutMs: 2500 })
  t.same(config.cache, { enabled: false, maxEntries: 100000, minTtl: 60, maxTtl: 60, negativeMaxTtl: 3600 })
  t.same(config.api, { ...DEFAULTS.api, listen: { host: '::1', port: 9000, family: 6 }, tokens: [{ name: 'soc', role: 'viewer', sha256: SHA }] })
  t.equal(config.dataDir, '/var/lib/egressd')
  t.same(config.blocklists, {
    ...DEFAULTS.blocklists,
    dir: '/usr/share/egressd/blocklists',
    categories: { signal: { enabled: true }, gmail: { enabled: false }, zoom: {} },
    sources: [
      { name: 'local-extra', path: '/etc/egressd/extra.txt', format: 'plain' },
      {
        name: 'central',
        url: 'https://lists.example.net/t.txt',
        format: 'hosts',
        category: 'telegram',
        update: { intervalMs: 6 * 3_600_000, timeoutMs: 30_000, maxBytes: 50 * 1024 * 1024, keys: [], minEntries: 1, maxBadLineShare: 0.01, maxShrink: 0.5 }
      }
    ]
  })
  t.notOk('url' in config.blocklists.sources[0], 'absent optional keys stay absent')
  t.equal(config.log.level, 'debug')
})

// Each case: one mistake, the exact dotted path it is reported under, and what the message says.
const errorCases: Array<{ name: string, yaml: string, path: string, message: RegExp }> = [
  // unknown keys, at every level
  { name: 'unknown top-level key', yaml: 'foo: 1', path: 'foo', message: /^unknown key "foo"/ },
  { name: 'unknown key in dns', yaml: 'dns: { listn: ["127.0.0.1:53"] }', path: 'dns.listn', message: /^unknown key "listn" \(known keys: listen, / },
  { name: 'unknown key in dns.tcp', yaml: 'dns: { tcp: { idle: 5 } }', path: 'dns.tcp.idle', message: /^unknown key "idle"/ },
  { name: 'unknown key in an upstream', yaml: 'upstreams: [{ url: "tls://192.0.2.1", sni: x }]', path: 'upstreams.0.sni', message: /^unknown key "sni"/ },
  { name: 'unknown key in a token', yaml: `api: { tokens: [{ name: a, role: admin, sha256: "${SHA}", token: x }] }`, path: 'api.tokens.0.token', message: /^unknown key "token"/ },
  { name: 'unknown key in a category', yaml: 'blocklists: { categories: { signal: { on: true } } }', path: 'blocklists.categories.signal.on', message: /^unknown key "on"/ },
  { name: 'unknown key in a source', yaml: 'blocklists: { sources: [{ name: a, path: /x, type: plain }] }', path: 'blocklists.sources.0.type', message: /^unknown key "type"/ },
  { name: 'unknown key in log', yaml: 'log: { format: json }', path: 'log.format', message: /^unknown key "format"/ },
  { name: '__proto__ key', yaml: '__proto__: { polluted: true }', path: '__proto__', message: /^unknown key "__proto__"/ },
  // shapes and types
  { name: 'top-level list', yaml: '- a\n- b', path: '', message: /top level, got a list/ },
  { name: 'section is a list', yaml: 'dns: []', path: 'dns', message: /^expected a mapping .*got a list/ },
  { name: 'section is a string', yaml: 'cache: off', path: 'cache', message: /^expected a mapping .*got "off"/ },
  { name: 'listen is a string', yaml: 'dns: { listen: "127.0.0.1:53" }', path: 'dns.listen', message: /^expected a list/ },
  { name: 'number as a string', yaml: 'dns: { udpSockets: "8" }', path: 'dns.udpSockets', message: /^expected a whole number, got "8"/ },
  { name: 'fraction', yaml: 'dns: { maxInflight: 1.5 }', path: 'dns.maxInflight', message: /^expected a whole number, got 1\.5/ },
  { name: 'boolean as a word', yaml: 'cache: { enabled: "yes" }', path: 'cache.enabled', message: /^expected true or false, got "yes"/ },
  { name: 'empty dataDir', yaml: 'dataDir: ""', path: 'dataDir', message: /^must not be empty/ },
  { name: 'null in a list', yaml: 'dns: { listen: [~] }', path: 'dns.listen.0', message: /^expected a string, got null/ },
  // dns
  { name: 'empty listen list', yaml: 'dns: { listen: [] }', path: 'dns.listen', message: /^must not be empty/ },
  { name: 'listen on a name', yaml: 'dns: { listen: ["localhost:53"] }', path: 'dns.listen.0', message: /^"localhost" is not an IP address/ },
  { name: 'listen without port', yaml: 'dns: { listen: ["127.0.0.1"] }', path: 'dns.listen.0', message: /^expected IPv4:port or \[IPv6\]:port/ },
  { name: 'listen IPv6 without brackets', yaml: 'dns: { listen: ["::1:53"] }', path: 'dns.listen.0', message: /^expected IPv4:port or \[IPv6\]:port/ },
  { name: 'listen IPv4 in brackets', yaml: 'dns: { listen: ["[127.0.0.1]:53"] }', path: 'dns.listen.0', message: /^expected IPv4:port or \[IPv6\]:port/ },
  { name: 'listen port too big', yaml: 'dns: { listen: ["127.0.0.1:65536"] }', path: 'dns.listen.0', message: /^port 65536 is out of range/ },
  { name: 'listen twice', yaml: 'dns: { listen: ["127.0.0.1:53", "127.0.0.1:53"] }', path: 'dns.listen.1', message: /^duplicate address/ },
  { name: 'ednsUdpSize too small', yaml: 'dns: { ednsUdpSize: 100 }', path: 'dns.ednsUdpSize', message: /^must be between 512 and 4096, got 100/ },
  { name: 'ednsUdpSize too big', yaml: 'dns: { ednsUdpSize: 65535 }', path: 'dns.ednsUdpSize', message: /^must be between 512 and 4096/ },
  { name: 'upstreamTimeoutMs too small', yaml: 'dns: { upstreamTimeoutMs: 10 }', path: 'dns.upstreamTimeoutMs', message: /^must be between 50 and 60000/ },
  { name: 'udpSockets zero', yaml: 'dns: { udpSockets: 0 }', path: 'dns.udpSockets', message: /^must be between 1 and 1024/ },
  { name: 'udpSockets too many', yaml: 'dns: { udpSockets: 2048 }', path: 'dns.udpSockets', message: /^must be between 1 and 1024/ },
  { name: 'negative grace', yaml: 'dns: { shutdownGraceMs: -1 }', path: 'dns.shutdownGraceMs', message: /^must be between 0 and/ },
  { name: 'tcp maxConnections zero', yaml: 'dns: { tcp: { maxConnections: 0 } }', path: 'dns.tcp.maxConnections', message: /^must be between 1 and/ },
  { name: 'tcp maxConnectionsPerClient zero', yaml: 'dns: { tcp: { maxConnectionsPerClient: 0 } }', path: 'dns.tcp.maxConnectionsPerClient', message: /^must be between 1 and/ },
  { name: 'tcp maxQueuedBytesPerConnection below 16 KiB', yaml: 'dns: { tcp: { maxQueuedBytesPerConnection: 1000 } }', path: 'dns.tcp.maxQueuedBytesPerConnection', message: /^must be between 16384 and/ },
  { name: 'tcp stuckTimeoutMs too small', yaml: 'dns: { tcp: { stuckTimeoutMs: 5 } }', path: 'dns.tcp.stuckTimeoutMs', message: /^must be between 100 and/ },
  { name: 'udp receiveBufferBytes negative', yaml: 'dns: { udp: { receiveBufferBytes: -1 } }', path: 'dns.udp.receiveBufferBytes', message: /^must be between 0 and/ },
  { name: 'unknown key in dns.udp', yaml: 'dns: { udp: { rcvbuf: 5 } }', path: 'dns.udp.rcvbuf', message: /^unknown key "rcvbuf"/ },
  { name: 'chaos answer empty', yaml: 'dns: { chaos: { answer: "" } }', path: 'dns.chaos.answer', message: /^expected 1 to 255 printable ASCII characters/ },
  { name: 'chaos answer too long', yaml: `dns: { chaos: { answer: "${'x'.repeat(256)}" } }`, path: 'dns.chaos.answer', message: /^expected 1 to 255 printable ASCII characters/ },
  { name: 'chaos answer not ASCII', yaml: 'dns: { chaos: { answer: "égressd" } }', path: 'dns.chaos.answer', message: /^expected 1 to 255 printable ASCII characters/ },
  { name: 'chaos answer not a string', yaml: 'dns: { chaos: { answer: 5 } }', path: 'dns.chaos.answer', message: /./ },
  // upstreams
  { name: 'unsupported scheme', yaml: 'upstreams: ["udp://192.0.2.1", "ftp://192.0.2.2"]', path: 'upstreams.1', message: /^unsupported scheme "ftp:" \(use udp:\/\/, tcp:\/\/, tls:\/\/ or https:\/\/\)$/ },
  { name: 'http is not DoH', yaml: 'upstreams: ["http://dns.example.net/dns-query"]', path: 'upstreams.0', message: /^unsupported scheme "http:"/ },
  { name: 'bare IP', yaml: 'upstreams: ["192.0.2.1"]', path: 'upstreams.0', message: /is not an upstream URL \(write udp:\/\/192\.0\.2\.1\)/ },
  { name: 'udp with a host name', yaml: 'upstreams: ["udp://dns.example.net"]', path: 'upstreams.0', message: /^udp:\/\/ upstreams need an IP address, not "dns\.example\.net"/ },
  { name: 'tcp with a host name', yaml: 'upstreams: ["tcp://dns.example.net:53"]', path: 'upstreams.0', message: /^tcp:\/\/ upstreams need an IP address/ },
  { name: 'missing host', yaml: 'upstreams: ["udp://"]', path: 'upstreams.0', message: /^missing host/ },
  { name: 'missing host before port', yaml: 'upstreams: ["tls://:853"]', path: 'upstreams.0', message: /^missing host/ },
  { name: 'missing //', yaml: 'upstreams: ["udp:192.0.2.1"]', path: 'upstreams.0', message: /^expected "udp:\/\/"/ },
  { name: 'port zero', yaml: 'upstreams: ["udp://192.0.2.1:0"]', path: 'upstreams.0', message: /^invalid port "0"/ },
  { name: 'port too big', yaml: 'upstreams: ["tcp://192.0.2.1:70000"]', path: 'upstreams.0', message: /^invalid port "70000"/ },
  { name: 'port not a number', yaml: 'upstreams: ["tls://dns.example.net:dot"]', path: 'upstreams.0', message: /^invalid port "dot"/ },
  { name: 'IPv6 without brackets', yaml: 'upstreams: ["udp://2001:db8::53"]', path: 'upstreams.0', message: /^IPv6 addresses must be in brackets/ },
  { name: 'unclosed bracket', yaml: 'upstreams: ["udp://[2001:db8::53"]', path: 'upstreams.0', message: /^missing "\]"/ },
  { name: 'IPv4 in brackets', yaml: 'upstreams: ["udp://[192.0.2.1]"]', path: 'upstreams.0', message: /is not an IPv6 address/ },
  { name: 'path on udp', yaml: 'upstreams: ["udp://192.0.2.1/dns-query"]', path: 'upstreams.0', message: /^a path is only allowed for https:\/\// },
  { name: 'query string', yaml: 'upstreams: ["https://dns.example.net/dns-query?x=1"]', path: 'upstreams.0', message: /^query strings and fragments/ },
  { name: 'user info', yaml: 'upstreams: ["https://u:p@dns.example.net"]', path: 'upstreams.0', message: /^user info/ },
  { name: 'bad host name', yaml: 'upstreams: ["tls://bad_host!"]', path: 'upstreams.0', message: /neither an IP address nor a host name/ },
  { name: 'object with a bad url', yaml: 'upstreams: [{ url: "udp://dns.example.net" }]', path: 'upstreams.0.url', message: /^udp:\/\/ upstreams need an IP address/ },
  { name: 'object without url', yaml: 'upstreams: [{ timeoutMs: 100 }]', path: 'upstreams.0.url', message: /^required key "url" is missing/ },
  { name: 'neither string nor object', yaml: 'upstreams: [53]', path: 'upstreams.0', message: /^expected an upstream URL or a mapping with "url", got 53/ },
  { name: 'empty string', yaml: 'upstreams: [""]', path: 'upstreams.0', message: /^must not be empty/ },
  { name: 'upstream timeout too small', yaml: 'upstreams: [{ url: "udp://192.0.2.1", timeoutMs: 10 }]', path: 'upstreams.0.timeoutMs', message: /^must be between 50 and 60000/ },
  { name: 'servername on udp', yaml: 'upstreams: [{ url: "udp://192.0.2.1", servername: dns.example.net }]', path: 'upstreams.0.servername', message: /^only applies to tls:\/\/ and https:\/\// },
  { name: 'caFile on tcp', yaml: 'upstreams: [{ url: "tcp://192.0.2.1", caFile: /etc/ca.pem }]', path: 'upstreams.0.caFile', message: /^only applies to tls:\/\/ and https:\/\// },
  { name: 'servername is an IP', yaml: 'upstreams: [{ url: "tls://192.0.2.1", servername: 192.0.2.1 }]', path: 'upstreams.0.servername', message: /^must be a host name/ },
  { name: 'duplicate upstream', yaml: 'upstreams: ["udp://192.0.2.1", "udp://192.0.2.1:53"]', path: 'upstreams.1', message: /^duplicate upstream/ },
  { name: 'upstreams is a string', yaml: 'upstreams: udp://192.0.2.1', path: 'upstreams', message: /^expected a list/ },
  // cache
  { name: 'minTtl above maxTtl', yaml: 'cache: { minTtl: 600, maxTtl: 60 }', path: 'cache.minTtl', message: /^must not be greater than cache\.maxTtl \(600 > 60\)/ },
  { name: 'minTtl above default maxTtl', yaml: 'cache: { minTtl: 90000 }', path: 'cache.minTtl', message: /^must not be greater than cache\.maxTtl \(90000 > 86400\)/ },
  { name: 'negative maxEntries', yaml: 'cache: { maxEntries: -1 }', path: 'cache.maxEntries', message: /^must be between 0 and/ },
  { name: 'TTL above 2^31-1', yaml: 'cache: { maxTtl: 2147483648 }', path: 'cache.maxTtl', message: /^must be between 0 and 2147483647/ },
  // api
  { name: 'api listen without port', yaml: 'api: { listen: "127.0.0.1" }', path: 'api.listen', message: /^expected IPv4:port/ },
  { name: 'api listen on a DNS address', yaml: 'api: { listen: "127.0.0.1:5353" }', path: 'api.listen', message: /is also in dns\.listen/ },
  { name: 'unknown role', yaml: `api: { tokens: [{ name: a, role: root, sha256: "${SHA}" }] }`, path: 'api.tokens.0.role', message: /^must be one of admin, viewer, metrics; got "root"/ },
  { name: 'short sha256', yaml: 'api: { tokens: [{ name: a, role: admin, sha256: abc }] }', path: 'api.tokens.0.sha256', message: /^must be the SHA-256 of the token: 64 hex characters/ },
  { name: 'non-hex sha256', yaml: `api: { tokens: [{ name: a, role: admin, sha256: "${'g'.repeat(64)}" }] }`, path: 'api.tokens.0.sha256', message: /64 hex characters/ },
  { name: 'token without name', yaml: `api: { tokens: [{ role: admin, sha256: "${SHA}" }] }`, path: 'api.tokens.0.name', message: /^required key "name" is missing/ },
  { name: 'duplicate token name', yaml: `api: { tokens: [{ name: a, role: admin, sha256: "${SHA}" }, { name: a, role: viewer, sha256: "${'c'.repeat(64)}" }] }`, path: 'api.tokens.1.name', message: /^duplicate token name \(same as api\.tokens\.0\.name\)/ },
  { name: 'duplicate token hash', yaml: `api: { tokens: [{ name: a, role: admin, sha256: "${SHA}" }, { name: b, role: viewer, sha256: "${SHA.toUpperCase()}" }] }`, path: 'api.tokens.1.sha256', message: /^duplicate token hash/ },
  // blocklists
  { name: 'source with path and url', yaml: 'blocklists: { sources: [{ name: a, path: /x, url: "https://x.example/l.txt" }] }', path: 'blocklists.sources.0', message: /^give exactly one of "path" or "url"/ },
  { name: 'source with neither path nor url', yaml: 'blocklists: { sources: [{ name: a }] }', path: 'blocklists.sources.0', message: /^give exactly one of "path" or "url"/ },
  { name: 'source with an ftp url', yaml: 'blocklists: { sources: [{ name: a, url: "ftp://x.example/l.txt" }] }', path: 'blocklists.sources.0.url', message: /^expected an http:\/\/ or https:\/\/ URL/ },
  { name: 'unknown format', yaml: 'blocklists: { sources: [{ name: a, path: /x, format: csv }] }', path: 'blocklists.sources.0.format', message: /^must be one of plain, hosts, adblock, dnsmasq, cidr, ms365; got "csv"/ },
  { name: 'source without name', yaml: 'blocklists: { sources: [{ path: /x }] }', path: 'blocklists.sources.0.name', message: /^required key "name" is missing/ },
  { name: 'duplicate source name', yaml: 'blocklists: { sources: [{ name: a, path: /x }, { name: a, path: /y }] }', path: 'blocklists.sources.1.name', message: /^duplicate source name "a" \(also blocklists\.sources\.0\)/ },
  { name: 'guard maxPrefix v4 out of range', yaml: 'blocklists: { guard: { maxPrefix: { v4: 33 } } }', path: 'blocklists.guard.maxPrefix.v4', message: /^must be between 0 and 32, got 33/ },
  { name: 'guard maxPrefix v6 not a number', yaml: 'blocklists: { guard: { maxPrefix: { v6: wide } } }', path: 'blocklists.guard.maxPrefix.v6', message: /^expected a whole number, got "wide"/ },
  { name: 'guard force not a list', yaml: 'blocklists: { guard: { force: com } }', path: 'blocklists.guard.force', message: /list|array/ },
  { name: 'bad source category', yaml: 'blocklists: { sources: [{ name: a, path: /x, category: Tele Gram }] }', path: 'blocklists.sources.0.category', message: /^category names use lowercase/ },
  { name: 'bad category name', yaml: 'blocklists: { categories: { Signal: { enabled: true } } }', path: 'blocklists.categories.Signal', message: /^category names use lowercase/ },
  { name: 'category override is a boolean', yaml: 'blocklists: { categories: { signal: true } }', path: 'blocklists.categories.signal', message: /^expected a mapping/ },
  // log
  { name: 'unknown log level', yaml: 'log: { level: verbose }', path: 'log.level', message: /^must be one of fatal, error, warn, info, debug, trace, silent; got "verbose"/ }
]

t.test('each mistake is reported once, under its dotted path', async t => {
  for (const c of errorCases) {
    const issues = issuesOf(c.yaml)
    t.same(issues.map(i => i.path), [c.path], `${c.name}: path`)
    t.match(issues[0]?.message ?? '(no error)', c.message, `${c.name}: message`)
  }
})

t.test('a config error carries its code, file and every issue in its message', async t => {
  const err = t.throws(() => parse('log: { level: loud }', { file: 'egressd.yaml' })) as ConfigError
  t.ok(err instanceof ConfigError)
  t.equal(err.code, 'EGRESSD_ERR_CONFIG_INVALID')
  t.equal(err.file, 'egressd.yaml')
  t.match(err.message, /^egressd\.yaml: 1 error\(s\)\n {2}log\.level: must be one of/)
})

t.test('all errors are reported together, in section order', async t => {
  const issues = issuesOf(`
log: { level: loud }
dns:
  listen: ["localhost:53"]
  ednsUdpSize: 9000
  bogus: 1
upstreams: ["ftp://192.0.2.1", { url: "tls://dns.example.net", timeoutMs: 1 }]
cache: { minTtl: 10, maxTtl: 5 }
nope: true
`, { env: { EGRESSD_LOG_LEVEL: 'chatty' } })
  t.same(issues.map(i => i.path), [
    'nope',
    'dns.bogus',
    'dns.ednsUdpSize',
    'dns.listen.0',
    'upstreams.1.timeoutMs',
    'upstreams.0',
    'cache.minTtl',
    'log.level',
    'env.EGRESSD_LOG_LEVEL'
  ])
})

t.test('YAML syntax errors name the line', async t => {
  const cases = [
    { yaml: 'dns:\n  listen: ["127.0.0.1:53"]\ndns:\n  ednsUdpSize: 1232\n', line: 3, message: /unique/ },
    { yaml: 'cache:\n  enabled: true\n   maxTtl: 5\n', line: 2, message: /./ },
    { yaml: 'log:\n  level: info\n\tfoo: 1\n', line: 3, message: /Tabs/ }
  ]
  for (const c of cases) {
    const issues = issuesOf(c.yaml)
    t.ok(issues.length >= 1, JSON.stringify(c.yaml))
    t.equal(issues[0]?.path, '')
    t.match(issues[0]?.message, /^YAML syntax error: /)
    t.match(issues[0]?.message, new RegExp(`at line ${c.line}, column \\d+`))
    t.match(issues[0]?.message, c.message)
  }
  t.same(issuesOf('a: &x 1\nlog: *y\n').map(i => i.path), [''], 'an unresolved alias is an error too')
})

t.test('upstream URLs are normalized', async t => {
  const cases: Array<[entry: string, expected: Partial<Config['upstreams'][number]>]> = [
    ['udp://192.0.2.1', { protocol: 'udp', host: '192.0.2.1', port: 53, path: '', servername: undefined }],
    ['udp://127.0.0.2:5300', { protocol: 'udp', host: '127.0.0.2', port: 5300, path: '' }],
    ['UDP://192.0.2.1', { protocol: 'udp', host: '192.0.2.1', port: 53 }],
    ['tcp://192.0.2.53:53', { protocol: 'tcp', host: '192.0.2.53', port: 53, path: '' }],
    ['udp://[::1]', { protocol: 'udp', host: '::1', port: 53 }],
    ['tcp://[2001:db8::53]:5353', { protocol: 'tcp', host: '2001:db8::53', port: 5353 }],
    ['udp://[fe80::1%eth0]:53', { protocol: 'udp', host: 'fe80::1%eth0', port: 53 }],
    ['tls://dns.example.net', { protocol: 'tls', host: 'dns.example.net', port: 853, path: '', servername: 'dns.example.net' }],
    ['tls://dns.example.net:8853', { protocol: 'tls', port: 8853, servername: 'dns.example.net' }],
    ['tls://192.0.2.1', { protocol: 'tls', host: '192.0.2.1', port: 853, servername: undefined }],
    ['tls://[2001:db8::1]', { protocol: 'tls', host: '2001:db8::1', port: 853, servername: undefined }],
    ['https://dns.example.net', { protocol: 'https', host: 'dns.example.net', port: 443, path: '/dns-query', servername: 'dns.example.net' }],
    ['https://dns.example.net/dns-query', { protocol: 'https', port: 443, path: '/dns-query' }],
    ['https://dns.example.net:8443/resolve/abc123', { protocol: 'https', port: 8443, path: '/resolve/abc123' }],
    ['https://[2001:db8::1]/', { protocol: 'https', host: '2001:db8::1', path: '/', servername: undefined }]
  ]
  for (const [entry, expected] of cases) {
    const [upstream] = parse(`upstreams: ["${entry}"]`).upstreams
    t.match(upstream, { url: entry, timeoutMs: 2000, caFile: undefined, ...expected }, entry)
    t.same(Object.keys(upstream).sort(), ['caFile', 'host', 'path', 'port', 'protocol', 'servername', 'timeoutMs', 'url'], `${entry}: every key present`)
  }
})

t.test('upstream mappings and per-upstream timeouts', async t => {
  const config = parse(`
dns: { upstreamTimeoutMs: 800 }
upstreams:
  - udp://192.0.2.1
  - { url: "tls://192.0.2.2", timeoutMs: 1500, servername: dns.example.net, caFile: /etc/egressd/ca.pem }
  - { url: "https://dns.example.net" }
`)
  t.same(config.upstreams.map(u => u.timeoutMs), [800, 1500, 800])
  t.match(config.upstreams[1], { url: 'tls://192.0.2.2', host: '192.0.2.2', servername: 'dns.example.net', caFile: '/etc/egressd/ca.pem' })
  t.match(config.upstreams[2], { protocol: 'https', path: '/dns-query', servername: 'dns.example.net' })
})

t.test('without upstreams, resolv.conf nameservers are used', async t => {
  const resolvConf = [
    '# generated by NetworkManager',
    'search example.net',
    'nameserver 192.0.2.1',
    '  nameserver   2001:db8::53  # trailing comment',
    'nameserver fe80::1%eth0',
    ';nameserver 192.0.2.99',
    'nameserver dns.example.net',
    'nameserver 192.0.2.1',
    'options edns0 trust-ad'
  ].join('\n')
  for (const text of ['', 'upstreams: []', 'upstreams:', 'dns: { upstreamTimeoutMs: 700 }']) {
    const config = parse(text, { resolvConf })
    t.same(config.upstreams.map(u => [u.url, u.host, u.port, u.protocol]), [
      ['udp://192.0.2.1:53', '192.0.2.1', 53, 'udp'],
      ['udp://[2001:db8::53]:53', '2001:db8::53', 53, 'udp'],
      ['udp://[fe80::1%eth0]:53', 'fe80::1%eth0', 53, 'udp']
    ], JSON.stringify(text))
    t.equal(config.upstreams[0].timeoutMs, text.includes('700') ? 700 : 2000)
  }
})

t.test('no upstreams and no usable resolv.conf is an error at "upstreams"', async t => {
  const cases: Array<[string, ParseConfigOptions, RegExp]> = [
    ['no resolv.conf given', { resolvConf: undefined }, /^no upstreams configured and no resolv\.conf was given/],
    ['no nameserver lines', { resolvConf: 'search example.net\n# nameserver 192.0.2.1\n' }, /^no upstreams configured and resolv\.conf has no usable nameserver line/],
    ['empty resolv.conf', { resolvConf: '' }, /no usable nameserver line/]
  ]
  for (const [name, opts, message] of cases) {
    const issues = issuesOf('upstreams: []', opts)
    t.same(issues.map(i => i.path), ['upstreams'], name)
    t.match(issues[0]?.message, message, name)
  }
})

t.test('env overrides', async t => {
  t.equal(parse('log: { level: warn }', { env: { EGRESSD_LOG_LEVEL: 'trace' } }).log.level, 'trace')
  t.equal(parse('', { env: { EGRESSD_LOG_LEVEL: 'silent' } }).log.level, 'silent')
  t.equal(parse('dataDir: /srv/a', { env: { EGRESSD_DATA_DIR: '/srv/b' } }).dataDir, '/srv/b')
  t.equal(parse('dataDir: /srv/a', { env: { EGRESSD_LOG_LEVEL: '', EGRESSD_DATA_DIR: '' } }).dataDir, '/srv/a', 'empty counts as unset')
  t.equal(parse('log: { level: warn }', { env: { EGRESSD_LOG_LEVEL: '' } }).log.level, 'warn', 'empty counts as unset')
  t.equal(parse('', { env: { EGRESSD_CACHE_ENABLED: 'false', LOG_LEVEL: 'debug' } }).log.level, 'info', 'no other variable is read')
  t.equal(parse('').log.level, 'info', 'parseConfig does not read process.env by itself')

  t.same(issuesOf('', { env: { EGRESSD_LOG_LEVEL: 'verbose' } }),
    [{ path: 'env.EGRESSD_LOG_LEVEL', message: 'must be one of fatal, error, warn, info, debug, trace, silent; got "verbose"' }])
  t.same(issuesOf('', { env: { EGRESSD_DATA_DIR: '   ' } }).map(i => i.path), ['env.EGRESSD_DATA_DIR'])
  t.same(issuesOf('log: { level: loud }', { env: { EGRESSD_LOG_LEVEL: 'debug' } }).map(i => i.path), ['log.level'],
    'the file is still validated when env overrides the key')
})

t.test('command-line overrides replace listen and upstreams and are checked like the file', async t => {
  const file = 'dns: { listen: ["127.0.0.1:53"] }\nupstreams: ["udp://192.0.2.1"]\n'
  const config = parse(file, { overrides: { listen: ['[::1]:5300'], upstreams: ['tls://dns.example.net'] }, resolvConf: undefined })
  t.same(config.dns.listen, [{ host: '::1', port: 5300, family: 6 }])
  t.same(config.upstreams.map(u => u.url), ['tls://dns.example.net'])
  t.same(parse(file, { overrides: { listen: ['0.0.0.0:53'] } }).upstreams.map(u => u.url), ['udp://192.0.2.1'], 'only what is given is replaced')
  t.same(parse('', { overrides: { upstreams: ['udp://192.0.2.9'] }, resolvConf: undefined }).upstreams.map(u => u.url), ['udp://192.0.2.9'],
    'resolv.conf is not needed when upstreams come from the command line')

  const issues = issuesOf('dns: { listen: [nonsense] }', { overrides: { listen: ['127.0.0.1:53', 'localhost:53'], upstreams: ['ftp://x'] } })
  t.same(issues.map(i => i.path), ['overrides.listen.1', 'overrides.upstreams.0'])
  t.same(issuesOf('', { overrides: { listen: [] } }).map(i => i.path), ['overrides.listen'])
})

t.test('keys without a value keep their defaults', async t => {
  const config = parse('dns:\n  tcp:\n  listen:\ncache:\n  maxTtl:\napi:\nlog:\n  level:\n')
  t.same(config, { ...DEFAULTS, source: 'defaults' })
})

t.test('the example file parses and documents the defaults, with the systemd data dir', async t => {
  const text = readFileSync(EXAMPLE, 'utf8')
  const config = parse(text, { file: EXAMPLE })
  t.same(config, {
    ...DEFAULTS,
    dataDir: '/var/lib/egressd',
    store: { ...DEFAULTS.store, path: '/var/lib/egressd/egressd.sqlite' },
    source: EXAMPLE
  }, 'dataDir is where the systemd unit keeps its data, so the CLI on a gateway finds it')
  // Loaded from the file, as the CLI and the daemon do: blocklists.dir is not set, so the
  // installation's lists are used (not a blocklists/ folder next to /etc/egressd/egressd.yaml).
  const resolvConfPath = join(tempDir('egressd-config-'), 'resolv.conf')
  writeFileSync(resolvConfPath, RESOLV)
  const loaded = loadConfig({ file: EXAMPLE, env: {}, resolvConfPath, bundledBlocklistsDir: '/opt/egressd/blocklists' })
  t.equal(loaded.blocklists.dir, '/opt/egressd/blocklists')
})

t.test('the shape in DESIGN.md parses', async t => {
  const config = parse(`
dns:
  listen: ["127.0.0.1:5353", "[::1]:5353"]
upstreams:
  - udp://127.0.0.2:5300
  - tcp://192.0.2.53:53
  - tls://dns.example.net:853
  - https://dns.example.net/dns-query
api:
  listen: "127.0.0.1:8053"
  tokens:
    - { name: soc, role: viewer, sha256: "${SHA}" }
dataDir: ./var
blocklists:
  dir: ./blocklists
  categories: { signal: { enabled: true } }
  sources:
    - { name: local-extra, path: /etc/egressd/extra.txt, format: plain }
    - { name: central, url: https://lists.example.net/egressd/telegram.txt, format: plain, category: telegram }
log:
  level: info
`)
  t.same(config.upstreams.map(u => `${u.protocol} ${u.host} ${u.port} ${u.path}`), [
    'udp 127.0.0.2 5300 ', 'tcp 192.0.2.53 53 ', 'tls dns.example.net 853 ', 'https dns.example.net 443 /dns-query'
  ])
  t.equal(config.blocklists.sources.length, 2)
})

t.test('loadConfig reads the file and resolv.conf only when needed', async t => {
  const dir = tempDir('egressd-config-')
  const resolvConfPath = join(dir, 'resolv.conf')
  writeFileSync(resolvConfPath, 'nameserver 192.0.2.7\n')
  const missing = join(dir, 'missing.conf')

  const defaults = loadConfig({ env: {}, resolvConfPath })
  t.equal(defaults.source, 'defaults')
  t.same(defaults.upstreams.map(u => u.url), ['udp://192.0.2.7:53'])
  t.ok(Object.isFrozen(defaults))

  const file = join(dir, 'egressd.yaml')
  writeFileSync(file, 'upstreams: ["tls://dns.example.net"]\nlog: { level: warn }\n')
  const loaded = loadConfig({ file, env: { EGRESSD_DATA_DIR: '/srv/egressd' }, resolvConfPath: missing })
  t.equal(loaded.source, file)
  t.equal(loaded.log.level, 'warn')
  t.equal(loaded.dataDir, '/srv/egressd')
  t.same(loaded.upstreams.map(u => u.url), ['tls://dns.example.net'], 'resolv.conf is not read when upstreams are set')

  const unreadable = t.throws(() => loadConfig({ file: join(dir, 'nope.yaml'), env: {} })) as ConfigError
  t.ok(unreadable instanceof ConfigError)
  t.equal(unreadable.file, join(dir, 'nope.yaml'))
  t.same(unreadable.issues.map(i => i.path), [''])
  t.match(unreadable.issues[0].message, /^cannot read .*nope\.yaml: ENOENT/)
  t.ok(unreadable.cause, 'keeps the fs error as cause')

  const noResolv = t.throws(() => loadConfig({ env: {}, resolvConfPath: missing })) as ConfigError
  t.same(noResolv.issues.map(i => i.path), ['upstreams'])
  t.match(noResolv.issues[0].message, /^no upstreams configured and cannot read .*missing\.conf: ENOENT/)

  writeFileSync(file, 'dns: { ednsUdpSize: 1 }\n')
  const invalid = t.throws(() => loadConfig({ file, env: {}, resolvConfPath })) as ConfigError
  t.equal(invalid.file, file)
  t.match(invalid.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 1 error`))
})

t.test('policy settings: actions, sinkhole, inline rules, client groups', async t => {
  const config = parse(`
blocklists:
  action: refused
  blockTtl: 300
  sinkhole: { ipv4: 192.0.2.1, ipv6: "2001:db8::1" }
  categories: { signal: { enabled: true, action: monitor } }
  rules: { block: [example.org, "*.ads.example", "/^tracker[0-9]+\\\\./"], allow: [web.example.org] }
  groups:
    - name: soc-lab
      clients: [10.20.0.0/24, "FD00::/64", 192.0.2.7]
      exempt: true
    - name: pilot
      clients: ["10.30.0.0/16"]
      categories: { gmail: { enabled: false } }
      rules: { allow: [mail.google.com] }
`)
  const b = config.blocklists
  t.equal(b.action, 'refused')
  t.equal(b.blockTtl, 300)
  t.same(b.sinkhole, { ipv4: '192.0.2.1', ipv6: '2001:db8::1' })
  t.same(b.categories, { signal: { enabled: true, action: 'monitor' } })
  t.same(b.rules.allow, ['web.example.org'])
  t.equal(b.rules.block.length, 3)
  t.same(b.groups[0], { name: 'soc-lab', clients: ['10.20.0.0/24', 'fd00::/64', '192.0.2.7/32'], categories: {}, exempt: true, rules: { block: [], allow: [] } })
  t.same(b.groups[1].categories, { gmail: { enabled: false } })
  t.same(b.groups[1].rules, { block: [], allow: ['mail.google.com'] })
})

t.test('policy settings: every bad value is named', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['blocklists: { action: drop }', 'blocklists.action', /nxdomain, refused, nodata, null, sinkhole, monitor/],
    ['blocklists: { categories: { telegram: { action: drop } } }', 'blocklists.categories.telegram.action', /nxdomain/],
    ['blocklists: { sinkhole: { ipv4: "::1" } }', 'blocklists.sinkhole.ipv4', /expected an IPv4 address/],
    ['blocklists: { groups: [{ name: a, clients: [10.0.0.0/33] }] }', 'blocklists.groups.0.clients.0', /expected an IP address or CIDR/],
    ['blocklists: { groups: [{ name: a, clients: [lan] }] }', 'blocklists.groups.0.clients.0', /expected an IP address or CIDR/],
    ['blocklists: { groups: [{ name: a, clients: [10.0.0.0/8] }, { name: a, clients: [10.0.0.1] }] }', 'blocklists.groups.1.name', /duplicate group name/],
    ['blocklists: { groups: [{ name: default, clients: [10.0.0.0/8] }] }', 'blocklists.groups.0.name', /"default" is the name/],
    ['blocklists: { groups: [{ name: a, clients: [] }] }', 'blocklists.groups.0.clients', /./],
    ['blocklists: { groups: [{ name: a, clients: [10.0.0.1], color: red }] }', 'blocklists.groups.0.color', /unknown key/],
    ['blocklists: { rules: { deny: [x] } }', 'blocklists.rules.deny', /unknown key/]
  ]
  for (const [yaml, path, message] of cases) {
    const err = t.throws(() => parse(yaml)) as unknown as ConfigError
    const issue = err.issues?.find(i => i.path === path)
    t.ok(issue, `${yaml}: an issue at ${path} (got ${JSON.stringify(err.issues)})`)
    if (issue !== undefined) t.match(issue.message, message, path)
  }
})

t.test('IPv6 upstream hosts are canonical, so UDP answers match their source address', async t => {
  const c = parse('upstreams: ["udp://[2001:DB8:0:0::53]:5300", "tcp://[fe80::1%eth0]"]')
  t.equal(c.upstreams[0].host, '2001:db8::53')
  t.equal(c.upstreams[1].host, 'fe80::1%eth0', 'zone ids stay as written')
})

t.test('an upstream that is egressd\'s own DNS listener is an error: queries would loop', async t => {
  const own = (listen: string, upstream: string, localAddresses: string[] = []): ConfigIssue[] =>
    issuesOf(`dns: { listen: ["${listen}"] }\nupstreams: ["${upstream}"]\n`, { localAddresses })
  const loops: Array<[string, string, string[]?]> = [
    ['127.0.0.1:5353', 'udp://127.0.0.1:5353'],
    ['127.0.0.1:5353', 'tcp://127.0.0.1:5353'],
    ['0.0.0.0:53', 'udp://127.0.0.1'], // the wildcard takes every local address on its port
    ['0.0.0.0:53', 'udp://127.0.0.53:53'],
    ['0.0.0.0:53', 'udp://192.168.1.1', ['192.168.1.1']],
    ['[::]:53', 'udp://[::1]'],
    ['[::]:53', 'udp://[2001:db8:0:0::1]', ['2001:db8::1']],
    ['[2001:db8::1]:53', 'udp://[2001:DB8::0:1]:53']
  ]
  for (const [listen, upstream, local] of loops) {
    const issues = own(listen, upstream, local)
    t.same(issues.map(i => i.path), ['upstreams.0'], `${listen} <- ${upstream}`)
    t.match(issues[0]?.message, /is egressd's own DNS listener \(dns\.listen .+\): every query would come back to egressd/, `${listen} <- ${upstream}`)
  }
  const fine: Array<[string, string, string[]?]> = [
    ['127.0.0.1:5353', 'udp://127.0.0.1:53'], // another port: another server
    ['127.0.0.1:53', 'udp://127.0.0.53'], // another loopback address (systemd-resolved's stub)
    ['0.0.0.0:53', 'udp://192.0.2.53', ['192.168.1.1']], // not one of this host's addresses
    ['0.0.0.0:53', 'udp://[::1]'], // 0.0.0.0 does not take IPv6
    ['[::]:53', 'udp://127.0.0.1'], // nor [::] IPv4 (ipv6Only)
    ['127.0.0.1:53', 'tls://127.0.0.1:53'], // egressd speaks no DoT on its DNS port: not a loop, only a wrong port
    ['127.0.0.1:0', 'udp://127.0.0.1:53'] // port 0 (tests): the OS picks another port
  ]
  for (const [listen, upstream, local] of fine) t.same(own(listen, upstream, local), [], `${listen} <- ${upstream}`)
  t.same(issuesOf('upstreams: ["udp://127.0.0.1:5353"]', { overrides: { listen: ['127.0.0.1:5353'] } }).map(i => i.path), ['upstreams.0'],
    'a listen address from the command line counts too')
})

t.test('resolv.conf nameservers that are egressd itself are left out; none left is an error', async t => {
  const resolvConf = 'nameserver 127.0.0.1\nnameserver 192.168.1.1\nnameserver 192.0.2.53\n'
  const config = parse('dns: { listen: ["0.0.0.0:53"] }', { resolvConf, localAddresses: ['192.168.1.1'] })
  t.same(config.upstreams.map(u => u.url), ['udp://192.0.2.53:53'])
  t.same(parse('dns: { listen: ["127.0.0.1:5353"] }', { resolvConf }).upstreams.map(u => u.url),
    ['udp://127.0.0.1:53', 'udp://192.168.1.1:53', 'udp://192.0.2.53:53'], 'another port: every nameserver is used')
  const issues = issuesOf('dns: { listen: ["0.0.0.0:53"] }', { resolvConf: 'nameserver 127.0.0.1\nnameserver 192.168.1.1\n', localAddresses: ['192.168.1.1'] })
  t.same(issues, [{
    path: 'upstreams',
    message: 'no upstreams configured, and every nameserver in resolv.conf (127.0.0.1, 192.168.1.1) is egressd\'s own DNS listener (dns.listen 0.0.0.0:53); list at least one upstream (e.g. udp://192.0.2.53)'
  }])
})

t.test('dns.allowClients: addresses and CIDRs, normalized; anything else names the entry', async t => {
  t.same(parse('dns: { allowClients: [192.0.2.7, "10.1.0.0/16", "FD00::/8", "0.0.0.0/0", "::/0"] }').dns.allowClients,
    ['192.0.2.7/32', '10.1.0.0/16', 'fd00::/8', '0.0.0.0/0', '::/0'])
  t.same(issuesOf('dns: { allowClients: ["10.0.0.0/8", lan, "10.0.0.0/33"] }'), [
    { path: 'dns.allowClients.1', message: 'expected an IP address or CIDR (192.168.0.0/16, fd00::/8; 0.0.0.0/0 and ::/0 answer everyone), got "lan"' },
    { path: 'dns.allowClients.2', message: 'expected an IP address or CIDR (192.168.0.0/16, fd00::/8; 0.0.0.0/0 and ::/0 answer everyone), got "10.0.0.0/33"' }
  ])
  t.same(issuesOf('dns: { allowClients: [] }').map(i => i.path), ['dns.allowClients'], 'an empty list would answer nobody: an error')
})

t.test('relative paths in a config file resolve against its directory, not the working directory', async t => {
  const dir = tempDir('egressd-config-rel-')
  mkdirSync(join(dir, 'keys'))
  const pub = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString()
  writeFileSync(join(dir, 'keys', 'lists.pub'), pub)
  const file = join(dir, 'egressd.yaml')
  writeFileSync(file, [
    'dataDir: data',
    'store: { path: ./db/log.sqlite }',
    'upstreams: [{ url: "tls://dns.example.net", caFile: certs/dns-ca.pem }, "udp://192.0.2.1"]',
    'api: { tls: { cert: api.pem, key: ../secret/api.key } }',
    'blocklists:',
    '  dir: lists',
    '  sources:',
    '    - { name: extra, path: extra.txt }',
    '    - { name: abs, path: /srv/lists/abs.txt }',
    '    - { name: central, url: "https://lists.example.net/l.txt", caFile: ./ca.pem, signed: true }',
    '  update: { publicKeys: [{ name: k, file: keys/lists.pub }] }'
  ].join('\n') + '\n')
  // The working directory of the test run is not `dir`: a path resolved against it would differ,
  // and the public key file (read while loading) would not be found.
  t.not(process.cwd(), dir)
  const c = loadConfig({ file, env: {}, bundledBlocklistsDir: '/opt/egressd/blocklists' })
  t.equal(c.dataDir, join(dir, 'data'))
  t.equal(c.store.path, join(dir, 'db', 'log.sqlite'))
  t.same(c.upstreams.map(u => u.caFile), [join(dir, 'certs', 'dns-ca.pem'), undefined])
  t.same(c.api.tls, { cert: join(dir, 'api.pem'), key: join(dir, '..', 'secret', 'api.key') })
  t.equal(c.blocklists.dir, join(dir, 'lists'), 'a dir the file sets wins over the bundled lists')
  t.same(c.blocklists.sources.map(s => s.path ?? s.update?.caFile), [join(dir, 'extra.txt'), '/srv/lists/abs.txt', join(dir, 'ca.pem')])
  t.same(c.blocklists.update.publicKeys.map(k => k.name), ['k'], 'the key file was read from the config\'s directory')

  // A relative file name (as `--config egressd.yaml` gives it) resolves the same way.
  const rel = loadConfig({ file: join('.', relativeTo(process.cwd(), file)), env: {}, bundledBlocklistsDir: '/opt/egressd/blocklists' })
  t.equal(rel.dataDir, join(dir, 'data'))
  t.equal(rel.source, join('.', relativeTo(process.cwd(), file)), 'source stays as given')

  // store.path by default lives in the resolved dataDir.
  writeFileSync(file, 'upstreams: ["udp://192.0.2.1"]\ndataDir: ./var\n')
  t.equal(loadConfig({ file, env: {} }).store.path, join(dir, 'var', 'egressd.sqlite'))
})

t.test('paths that do not come from the file stay as given: defaults, EGRESSD_DATA_DIR, --blocklist', async t => {
  const dir = tempDir('egressd-config-rel-')
  const file = join(dir, 'egressd.yaml')
  writeFileSync(file, 'upstreams: ["udp://192.0.2.1"]\n')
  const c = loadConfig({ file, env: {}, overrides: { blocklists: ['cli-list.txt'] }, bundledBlocklistsDir: '/opt/egressd/blocklists' })
  t.equal(c.dataDir, './var', 'the default data dir is relative to the working directory')
  t.equal(c.blocklists.dir, '/opt/egressd/blocklists', 'no blocklists.dir in the file: the installation\'s lists')
  t.equal(c.blocklists.sources[0].path, 'cli-list.txt', 'a command-line list is relative to the working directory')
  t.equal(loadConfig({ file, env: { EGRESSD_DATA_DIR: 'state' } }).dataDir, 'state')
  // parseConfig resolves only when told where the text came from.
  t.equal(parse('dataDir: data\n', { file }).dataDir, 'data')
  t.equal(parse('dataDir: data\n', { baseDir: dir }).dataDir, join(dir, 'data'))
  // A value of the wrong type is still the schema's to report, under its own path.
  t.same(issuesOf('dataDir: 5\nstore: { path: [] }\nblocklists: { sources: [{ name: x, path: 7 }] }\n', { baseDir: dir }).map(i => i.path),
    ['dataDir', 'blocklists.sources.0.path', 'store.path'])
})

t.test('learning and firewall evidence settings: bad values are named by their path', async t => {
  const ok = parse('learning: { neverBlock: [192.0.2.7, "2001:db8::/32"], minExpirySeconds: 600 }\nfirewall: { sharedRanges: [whatsapp], evidence: { intervalMs: 2000 } }\n')
  t.same(ok.learning.neverBlock, ['192.0.2.7/32', '2001:db8::/32'])
  t.equal(ok.learning.minExpirySeconds, 600)
  t.same(ok.firewall.sharedRanges, ['whatsapp'])
  t.equal(ok.firewall.evidence.intervalMs, 2000)
  t.throws(() => parse('learning: { neverBlock: [lan] }\n'), /learning\.neverBlock\.0: expected an IP address or CIDR/)
  t.throws(() => parse('learning: { minExpirySeconds: 9000, maxExpirySeconds: 600 }\n'), /learning\.minExpirySeconds: must not exceed learning\.maxExpirySeconds \(600\), got 9000/)
  t.throws(() => parse('firewall: { sharedRanges: ["What App"] }\n'), /firewall\.sharedRanges\.0: /)
  t.throws(() => parse('learning: { resolvesPerSecond: 0 }\n'), /learning\.resolvesPerSecond/)
})
