// The config file's shape as a TypeBox schema: what an admin writes in YAML, before normalization.
// Owns key names, types, ranges and defaults; load.ts owns everything that needs real parsing or
// more than one field (addresses, upstream URLs, minTtl <= maxTtl, duplicates, exactly-one-of).
//
// - Every object has `additionalProperties: false`, so an unknown key is an error.
// - Every key may be left out of the file: a key not wrapped in Type.Optional carries a `default`,
//   which load.ts fills in before validating. So `ConfigFile` (Static of this schema) is the shape
//   *after* defaults. (A JSON Schema for editors would drop defaulted keys from `required`.)
// - `errorMessage` is our own annotation: the message load.ts shows when a pattern or union fails.

import { Type, type Static, type TProperties, type ObjectOptions } from '@sinclair/typebox'

/** RFC 2181 §8: a TTL is at most 2^31 - 1 seconds. */
const TTL_MAX = 2147483647

const strictObject = <T extends TProperties>(properties: T, options: ObjectOptions = {}) =>
  Type.Object(properties, { additionalProperties: false, ...options })

const integer = (minimum: number, maximum: number, defaultValue?: number) =>
  Type.Integer(defaultValue === undefined ? { minimum, maximum } : { minimum, maximum, default: defaultValue })

const nonEmpty = (defaultValue?: string) =>
  Type.String(defaultValue === undefined ? { minLength: 1 } : { minLength: 1, default: defaultValue })

export const LogLevelSchema = Type.Union([
  Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
  Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
])

/** dns.allowClients by default: loopback, RFC 1918, RFC 6598 (CGNAT), link-local, unique local (fc00::/7). */
export const DEFAULT_ALLOW_CLIENTS = [
  '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16',
  '::1/128', 'fc00::/7', 'fe80::/10'
] as const

export const DnsSchema = strictObject({
  listen: Type.Array(nonEmpty(), { minItems: 1, default: ['127.0.0.1:5353', '[::1]:5353'] }),
  /**
   * Client addresses or CIDRs that get answers; others get REFUSED. Default: loopback and the
   * private, shared (CGNAT) and link-local ranges, so a listener that the internet can reach is
   * not an open resolver. ["0.0.0.0/0", "::/0"] answers everyone.
   */
  allowClients: Type.Array(nonEmpty(), { minItems: 1, default: [...DEFAULT_ALLOW_CLIENTS] }),
  ednsUdpSize: integer(512, 4096, 1232),
  upstreamTimeoutMs: integer(50, 60000, 2000),
  udpSockets: integer(1, 1024, 4),
  maxInflight: integer(1, 1_000_000, 4096),
  shutdownGraceMs: integer(0, 600_000, 5000),
  tcp: strictObject({
    idleTimeoutMs: integer(10, 3_600_000, 10000),
    maxConnections: integer(1, 1_000_000, 1024),
    maxInflightPerConnection: integer(1, 65535, 64),
    /** Most TCP connections one client address may hold open at once (of maxConnections). */
    maxConnectionsPerClient: integer(1, 1_000_000, 64),
    /**
     * Answers one connection may have waiting to be written before reading from it pauses (a
     * client that does not read its answers). At least 16 KiB, Node's own write buffer mark.
     */
    maxQueuedBytesPerConnection: integer(16384, 64 * 1024 * 1024, 128 * 1024),
    /** A connection whose answers have not drained for this long is closed. */
    stuckTimeoutMs: integer(100, 3_600_000, 10000)
  }, { default: {} }),
  udp: strictObject({
    /** SO_RCVBUF asked for on each UDP listener socket (0 = the system default); net.core.rmem_max caps it. */
    receiveBufferBytes: integer(0, 1024 * 1024 * 1024, 4 * 1024 * 1024),
    /**
     * Answer times (egressd_dns_answer_seconds) of UDP answers are a sample: those of one
     * event-loop turn in this many (1: every turn). Each timed turn costs two clock reads.
     */
    answerTimeSample: integer(1, 1024, 8)
  }, { default: {} }),
  /**
   * CHAOS-class queries (version.bind, hostname.bind, id.server, ...) are answered by egressd,
   * never forwarded: REFUSED, or with `answer` as a CH TXT record for the well-known names.
   */
  chaos: strictObject({
    answer: Type.Optional(Type.String({ pattern: '^[\\x20-\\x7e]{1,255}$', errorMessage: 'expected 1 to 255 printable ASCII characters' }))
  }, { default: {} })
}, { default: {} })

export const UpstreamObjectSchema = strictObject({
  url: nonEmpty(),
  timeoutMs: Type.Optional(integer(50, 60000)),
  servername: Type.Optional(nonEmpty()),
  caFile: Type.Optional(nonEmpty())
})

/** `udp://192.0.2.53` or `{ url, timeoutMs?, servername?, caFile? }`. */
export const UpstreamSchema = Type.Union([nonEmpty(), UpstreamObjectSchema], {
  errorMessage: 'expected an upstream URL or a mapping with "url"'
})

export const CacheSchema = strictObject({
  enabled: Type.Boolean({ default: true }),
  maxEntries: integer(0, 100_000_000, 100000),
  minTtl: integer(0, TTL_MAX, 0),
  maxTtl: integer(0, TTL_MAX, 86400),
  negativeMaxTtl: integer(0, TTL_MAX, 3600)
}, { default: {} })

export const ApiTokenSchema = strictObject({
  name: nonEmpty(),
  role: Type.Union([Type.Literal('admin'), Type.Literal('viewer'), Type.Literal('metrics')]),
  sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$', errorMessage: 'must be the SHA-256 of the token: 64 hex characters' })
})

export const ApiSchema = strictObject({
  listen: nonEmpty('127.0.0.1:8053'),
  tokens: Type.Array(ApiTokenSchema, { default: [] }),
  /** PEM files; required when `listen` is not a loopback address, unless `allowPlaintext`. */
  tls: Type.Optional(strictObject({ cert: nonEmpty(), key: nonEmpty() })),
  /** Serve plain HTTP on a non-loopback address (tokens then cross the network in clear). */
  allowPlaintext: Type.Boolean({ default: false }),
  /** Largest request body accepted, bytes (413 beyond). */
  bodyLimit: integer(1024, 64 * 1024 * 1024, 1048576),
  /** Requests per client address: a token bucket refilled at perSecond, holding at most burst (429 beyond). */
  rateLimit: strictObject({
    perSecond: integer(1, 1_000_000, 20),
    burst: integer(1, 10_000_000, 100)
  }, { default: {} }),
  /** The HTTP listener: how long a client may take, and how many connections it may hold. */
  server: strictObject({
    /** Time to send the request headers (408 and close beyond; slowloris); at most requestTimeoutMs. */
    headersTimeoutMs: integer(100, 600_000, 10000),
    /** Time to send the whole request, headers and body. */
    requestTimeoutMs: integer(100, 3_600_000, 30000),
    /** A connection with no traffic either way for this long is closed. */
    idleTimeoutMs: integer(100, 3_600_000, 30000),
    /** An idle keep-alive connection is closed after this long. */
    keepAliveTimeoutMs: integer(100, 600_000, 5000),
    /** Requests on one connection before it is closed (0 = no limit). */
    maxRequestsPerSocket: integer(0, 1_000_000, 1000),
    /** Connections open at once, all clients together (closed at once beyond). */
    maxConnections: integer(1, 1_000_000, 1024),
    /** Connections one client address may hold open at once. */
    maxConnectionsPerClient: integer(1, 1_000_000, 64)
  }, { default: {} }),
  /** The block log's live tail (GET /api/v1/blocks/stream, Server-Sent Events). */
  liveTail: strictObject({
    /** Streams open at once, all clients together (503 beyond; 0 = no live tail). */
    maxStreams: integer(0, 100_000, 64),
    /** Streams one client address may hold open at once (429 beyond). */
    maxStreamsPerClient: integer(1, 100_000, 4),
    /** Unsent output one stream may hold; a client that reads slower is disconnected. */
    maxQueuedBytesPerStream: integer(16384, 64 * 1024 * 1024, 262144),
    /** A stream whose output has not drained for this long is disconnected. */
    stuckTimeoutMs: integer(100, 3_600_000, 30000)
  }, { default: {} })
}, { default: {} })

const blockActionMessage = 'must be one of nxdomain, refused, nodata, null, sinkhole, monitor'
export const BlockActionSchema = Type.Union([
  Type.Literal('nxdomain'), Type.Literal('refused'), Type.Literal('nodata'), Type.Literal('null'),
  Type.Literal('sinkhole'), Type.Literal('monitor')
], { errorMessage: blockActionMessage })

export const CategoryOverrideSchema = strictObject({
  enabled: Type.Optional(Type.Boolean()),
  action: Type.Optional(BlockActionSchema)
})

/** Rules written in the config, one per string, in the syntax of a `plain` list line. */
export const InlineRulesSchema = strictObject({
  block: Type.Array(nonEmpty(), { default: [] }),
  allow: Type.Array(nonEmpty(), { default: [] })
}, { default: {} })

export const ClientGroupSchema = strictObject({
  name: nonEmpty(),
  /** Client addresses or CIDRs (v4 or v6) that belong to this group. */
  clients: Type.Array(nonEmpty(), { minItems: 1 }),
  /** Per-category overrides for this group, over the global ones. */
  categories: Type.Record(Type.String(), CategoryOverrideSchema, { default: {} }),
  /** true: nothing is blocked for this group (e.g. the security team's analysis subnet). */
  exempt: Type.Boolean({ default: false }),
  rules: InlineRulesSchema
})

export const ListSourceSchema = strictObject({
  name: nonEmpty(),
  path: Type.Optional(nonEmpty()),
  url: Type.Optional(nonEmpty()),
  format: Type.Union([
    Type.Literal('plain'), Type.Literal('hosts'), Type.Literal('adblock'), Type.Literal('dnsmasq'), Type.Literal('cidr'), Type.Literal('ms365')
  ], { default: 'plain' }),
  category: Type.Optional(nonEmpty()),
  /** format ms365: the endpoint sets to take (service areas and/or ids) and the version service URL. */
  ms365: Type.Optional(strictObject({
    serviceAreas: Type.Optional(Type.Array(nonEmpty(), { minItems: 1 })),
    ids: Type.Optional(Type.Array(integer(0, 1_000_000), { minItems: 1 })),
    /** false: host names only, no address ranges. */
    ips: Type.Optional(Type.Boolean()),
    /** Microsoft's version service (URL sources): the endpoints are downloaded only when `latest` changed. */
    versionUrl: Type.Optional(nonEmpty())
  })),
  // URL sources only (load.ts fills in the defaults for them and refuses these keys on path sources).
  /** How often to fetch: `90s`, `30m`, `6h`, `1d` (default 6h, jittered by ±10%). */
  interval: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,6}(s|m|h|d)$', errorMessage: 'a duration such as 90s, 30m, 6h or 1d' })),
  timeoutMs: Type.Optional(integer(100, 600_000)),
  maxBytes: Type.Optional(integer(1, 2 ** 31 - 1)),
  /** Extra CA certificates (PEM) to trust for this https:// URL, besides the system ones. */
  caFile: Type.Optional(nonEmpty()),
  /** Fetch a detached Ed25519 signature and verify it (needed for http:// URLs). */
  signed: Type.Optional(Type.Boolean()),
  /** Where the signature is (default: the list URL + `.sig`); implies signed. */
  signatureUrl: Type.Optional(nonEmpty()),
  /** Names of blocklists.update.publicKeys accepted for this list (default: any of them). */
  keys: Type.Optional(Type.Array(nonEmpty(), { minItems: 1 })),
  minEntries: Type.Optional(integer(0, 100_000_000)),
  maxBadLineShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  maxShrink: Type.Optional(Type.Number({ minimum: 0, maximum: 1 }))
})

/** A public key that list signatures are verified with: `key` (PEM or base64) or `file` (PEM). */
export const PublicKeySchema = strictObject({
  name: nonEmpty(),
  key: Type.Optional(nonEmpty()),
  file: Type.Optional(nonEmpty())
})

/** Settings for downloading URL sources (see README "List updates"). */
export const ListUpdateSchema = strictObject({
  publicKeys: Type.Array(PublicKeySchema, { default: [] }),
  /** Host names or IP literals of list URLs that may be (or resolve to) private or loopback addresses. */
  allowHosts: Type.Array(nonEmpty(), { default: [] }),
  /** Every URL source must be signed (http:// ones always must). */
  requireSignature: Type.Boolean({ default: false })
}, { default: {} })

/**
 * The rule guard (policy/guard.ts): block rules written in this config or added through the API that
 * would block a public suffix, nearly every name, names that must keep working, or an address range
 * wider than maxPrefix are refused; the config's are errors unless listed under `force`.
 */
export const RuleGuardSchema = strictObject({
  /** The widest address range a block rule may name, as a prefix length: /16 for IPv4, /32 for IPv6. */
  maxPrefix: strictObject({
    v4: integer(0, 32, 16),
    v6: integer(0, 128, 32)
  }, { default: {} }),
  /** Block rules kept although the guard refuses them, written as in the rules (`10.0.0.0/8`, `*.corp`). */
  force: Type.Array(nonEmpty(), { default: [] })
}, { default: {} })

export const BlocklistsSchema = strictObject({
  dir: nonEmpty('./blocklists'),
  /** What a block answer is, unless a category says otherwise. */
  action: Type.Union(BlockActionSchema.anyOf, { default: 'nxdomain', errorMessage: blockActionMessage }),
  /** TTL of block answers (and of the SOA that comes with NXDOMAIN/NODATA), seconds. */
  blockTtl: integer(0, 86400, 60),
  /** Addresses answered by the `sinkhole` action. */
  sinkhole: strictObject({
    ipv4: nonEmpty('0.0.0.0'),
    ipv6: nonEmpty('::')
  }, { default: {} }),
  categories: Type.Record(Type.String(), CategoryOverrideSchema, { default: {} }),
  sources: Type.Array(ListSourceSchema, { default: [] }),
  update: ListUpdateSchema,
  rules: InlineRulesSchema,
  groups: Type.Array(ClientGroupSchema, { default: [] }),
  guard: RuleGuardSchema
}, { default: {} })

/** nftables rules emitted by `egressd export nftables` (and applied by egressd when `sync` is on). */
export const FirewallSchema = strictObject({
  /** Name of the `inet` table egressd owns (replaced whole on every apply). */
  table: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,31}$', default: 'egressd', errorMessage: 'letters, digits and _, starting with a letter (at most 32)' }),
  /** Where the LAN is: input interfaces and/or source CIDRs. With neither, address rules apply to all forwarded traffic and DNS is not redirected. */
  lanInterfaces: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.:@-]{1,15}$', errorMessage: 'an interface name (at most 15 characters)' }), { default: [] }),
  lanCidrs: Type.Array(nonEmpty(), { default: [] }),
  /** Reject LAN traffic to the address ranges of the enabled categories. */
  rejectAddresses: Type.Boolean({ default: true }),
  /** Redirect LAN DNS (udp/tcp 53) to egressd's port. */
  redirectDns: Type.Boolean({ default: true }),
  /** Reject DNS over TLS (tcp/853) and DNS over QUIC (udp/853) leaving the LAN. */
  rejectDot: Type.Boolean({ default: true }),
  rejectDoq: Type.Boolean({ default: true }),
  /** Apply the rules with `nft -f` at start and after every reload (needs CAP_NET_ADMIN). */
  sync: Type.Boolean({ default: false }),
  /**
   * Categories whose pack ships ranges it shares with allowed services (`shared-ranges.txt`, e.g.
   * Meta's ranges for WhatsApp), turned on: they go into the firewall too, and cut off what the
   * pack names (start-up log, status and `check` say what). Off for every category by default.
   */
  sharedRanges: Type.Array(nonEmpty(), { default: [] }),
  /**
   * Evidence from the firewall (firewall/evidence.ts): rejected LAN connections to a blocked
   * category's addresses become block-log events (`matched: firewall`), read back from nft's
   * dynamic sets every `intervalMs`, at most one event per client and destination per `perPairSeconds`.
   */
  evidence: strictObject({
    enabled: Type.Boolean({ default: true }),
    intervalMs: integer(1000, 600_000, 5000),
    perPairSeconds: integer(1, 86400, 300)
  }, { default: {} })
}, { default: {} })

/**
 * Learned address sets (learn/): the addresses blocked names resolve to, learned in the background
 * and from each pack's probe names, put into the firewall's per-category learned sets unless the
 * collateral guard holds them back.
 */
export const LearningSchema = strictObject({
  enabled: Type.Boolean({ default: true }),
  /** Background resolutions (one name, A + AAAA + HTTPS) started per second, at most. */
  resolvesPerSecond: integer(1, 1000, 20),
  /** Distinct names waiting for a background resolution; beyond this they are dropped and counted. */
  queueMax: integer(1, 100_000, 1000),
  /** A learned address expires `ttlMultiple` answer TTLs after it was last seen, no sooner than minExpirySeconds, no later than maxExpirySeconds. */
  ttlMultiple: integer(1, 10_000, 4),
  minExpirySeconds: integer(10, 31_536_000, 21_600),
  maxExpirySeconds: integer(10, 31_536_000, 604_800),
  /** How often each enabled pack's probe names are resolved (and the guard's everyday names). */
  probeIntervalSeconds: integer(60, 604_800, 3600),
  /** The guard: an address an allowed name resolved to within this window is held back. */
  guardWindowSeconds: integer(60, 31_536_000, 604_800),
  /** Addresses or CIDRs never put into a learned set (the LAN, the upstreams, the gateway's own and special-purpose ranges always are not). */
  neverBlock: Type.Array(nonEmpty(), { default: [] }),
  /** Addresses of allowed answers the guard remembers, at most (the oldest go first). */
  maxAllowedAddresses: integer(1000, 10_000_000, 200_000),
  /** Learned addresses kept, at most (beyond it the oldest-seen go first). */
  maxLearned: integer(100, 1_000_000, 50_000)
}, { default: {} })

export const LogSchema = strictObject({
  level: Type.Union(LogLevelSchema.anyOf, { default: 'info' })
}, { default: {} })

/** The SQLite store: block log (and, from the management API, rules and audit). */
export const StoreSchema = strictObject({
  /** The database file; default `<dataDir>/egressd.sqlite`. */
  path: Type.Optional(nonEmpty()),
  /**
   * blocked: block and monitor matches only; all: allowed queries too (with rcode and latency);
   * none: no events in SQLite (blocks still go to the pino log and the metrics).
   */
  logQueries: Type.Union([Type.Literal('blocked'), Type.Literal('all'), Type.Literal('none')], { default: 'blocked', errorMessage: 'must be blocked, all or none' }),
  /** Events waiting to be written; beyond this they are dropped and counted. */
  queueMax: integer(100, 10_000_000, 100_000),
  /** How often queued events are written (one transaction); a crash loses at most this much. */
  batchMs: integer(10, 60_000, 1000),
  retention: strictObject({
    days: integer(1, 36_500, 90),
    /** 0 = no limit. */
    maxRows: integer(0, 10_000_000_000, 0),
    /** Bytes of used pages; 0 = no limit. */
    maxBytes: integer(0, 10_000_000_000_000, 0)
  }, { default: {} }),
  /** NORMAL: a power cut may lose the last commits; FULL: fsync on every batch. */
  synchronous: Type.Union([Type.Literal('NORMAL'), Type.Literal('FULL')], { default: 'NORMAL', errorMessage: 'must be NORMAL or FULL' }),
  busyTimeoutMs: integer(0, 60_000, 1000),
  /**
   * CPU priority (nice, 0..19) of the block log's writer and search threads. 19 (default): when
   * they share a core with DNS, answering comes first and the log gets what is left (a sustained
   * overload fills the queue, and events beyond queueMax are dropped and counted). 0: the log
   * competes equally, so it keeps up and DNS answers slower.
   */
  threadNice: integer(0, 19, 19)
}, { default: {} })

export const ConfigFileSchema = strictObject({
  dns: DnsSchema,
  // Empty (the default) means: take them from resolv.conf (see load.ts).
  upstreams: Type.Array(UpstreamSchema, { default: [] }),
  cache: CacheSchema,
  api: ApiSchema,
  dataDir: nonEmpty('./var'),
  blocklists: BlocklistsSchema,
  firewall: FirewallSchema,
  learning: LearningSchema,
  store: StoreSchema,
  log: LogSchema
})

/** The file after defaults have been applied and the schema has accepted it. */
export type ConfigFile = Static<typeof ConfigFileSchema>
export type UpstreamEntry = Static<typeof UpstreamSchema>
