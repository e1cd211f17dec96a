// The validated, normalized, deep-frozen configuration every component receives a slice of.
// Produced only by config/load.ts; nothing outside config/ reads files or process.env for settings.

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** A socket address: `127.0.0.1:5353` or `[::1]:5353` in the file. */
export interface ListenAddress {
  readonly host: string          // without brackets: '127.0.0.1', '::1'
  readonly port: number          // 0 = let the OS pick (tests)
  readonly family: 4 | 6
}

export type UpstreamProtocol = 'udp' | 'tcp' | 'tls' | 'https'

export interface UpstreamConfig {
  readonly url: string           // as written, for logs and status ('udp://127.0.0.2:5300')
  readonly protocol: UpstreamProtocol
  readonly host: string          // IP literal or host name (tls/https only may use names)
  readonly port: number          // default 53 (udp/tcp), 853 (tls), 443 (https)
  readonly path: string          // https only: '/dns-query' by default; '' otherwise
  readonly timeoutMs: number     // per attempt; default dns.upstreamTimeoutMs
  readonly servername: string | undefined   // tls/https: SNI + certificate name; default host when it is a name
  readonly caFile: string | undefined       // tls/https: extra CA bundle (PEM) to trust
}

export interface DnsConfig {
  readonly listen: readonly ListenAddress[]
  readonly allowClients: readonly string[]  // normalized 'addr/len'; other clients get REFUSED
  readonly ednsUdpSize: number              // what we advertise to clients and upstreams (default 1232)
  readonly upstreamTimeoutMs: number        // default 2000
  readonly udpSockets: number               // sockets per UDP upstream, each on a random port (default 4)
  readonly maxInflight: number              // cap on distinct upstream queries outstanding (default 4096)
  readonly shutdownGraceMs: number          // SIGTERM: wait at most this long for in-flight queries (default 5000)
  readonly tcp: {
    readonly idleTimeoutMs: number          // default 10000 (RFC 7766 recommends seconds, not minutes)
    readonly maxConnections: number         // default 1024
    readonly maxInflightPerConnection: number  // default 64
    readonly maxConnectionsPerClient: number   // default 64: connections one client address may hold
    readonly maxQueuedBytesPerConnection: number  // default 128 KiB of unsent answers, then reading pauses
    readonly stuckTimeoutMs: number         // default 10000: close a connection whose answers do not drain
  }
  readonly udp: {
    readonly receiveBufferBytes: number     // default 4 MiB (SO_RCVBUF; 0 = system default)
    readonly answerTimeSample: number       // default 8: UDP answer times of one event-loop turn in 8
  }
  readonly chaos: {
    readonly answer: string | undefined     // CH TXT text for version.bind & co.; default none: REFUSED
  }
}

export interface CacheConfig {
  readonly enabled: boolean                 // default true
  readonly maxEntries: number               // default 100000
  readonly minTtl: number                   // seconds, default 0
  readonly maxTtl: number                   // seconds, default 86400
  readonly negativeMaxTtl: number           // seconds, cap for RFC 2308 negative TTL, default 3600
}

export interface ApiToken { readonly name: string, readonly role: 'admin' | 'viewer' | 'metrics', readonly sha256: string }

export interface ApiConfig {
  readonly listen: ListenAddress            // default 127.0.0.1:8053
  readonly tokens: readonly ApiToken[]
  /** PEM file paths; required off loopback unless allowPlaintext. */
  readonly tls: { readonly cert: string, readonly key: string } | undefined
  readonly allowPlaintext: boolean          // default false
  readonly bodyLimit: number                // bytes, default 1 MiB
  readonly rateLimit: { readonly perSecond: number, readonly burst: number }   // per client address, default 20/s, burst 100
  readonly server: ApiServerConfig
  readonly liveTail: LiveTailConfig
}

/** The API's HTTP listener: bounds on how long a client may take and how many connections it holds. */
export interface ApiServerConfig {
  readonly headersTimeoutMs: number         // default 10000 (408 and close; at most requestTimeoutMs)
  readonly requestTimeoutMs: number         // default 30000, headers and body
  readonly idleTimeoutMs: number            // default 30000, no traffic either way
  readonly keepAliveTimeoutMs: number       // default 5000
  readonly maxRequestsPerSocket: number     // default 1000 (0 = no limit)
  readonly maxConnections: number           // default 1024, all clients
  readonly maxConnectionsPerClient: number  // default 64, one client address
}

/** The block log's live tail (SSE): how many streams, and how far one may fall behind. */
export interface LiveTailConfig {
  readonly maxStreams: number               // default 64, all clients (503 beyond)
  readonly maxStreamsPerClient: number      // default 4, one client address (429 beyond)
  readonly maxQueuedBytesPerStream: number  // default 256 KiB of unsent output, then the stream is closed
  readonly stuckTimeoutMs: number           // default 30000: a stream whose output does not drain is closed
}

export type BlockAction = 'nxdomain' | 'refused' | 'nodata' | 'null' | 'sinkhole' | 'monitor'

export interface CategoryOverride { readonly enabled?: boolean, readonly action?: BlockAction }

/** Rules in the syntax of a `plain` list line (`name`, `=name`, `*.name`, `/regex/`, CIDR). */
export interface InlineRules { readonly block: readonly string[], readonly allow: readonly string[] }

export interface ClientGroup {
  readonly name: string
  /** Normalized CIDRs ('10.20.0.0/24', 'fd00::/64'); a bare address is /32 or /128. */
  readonly clients: readonly string[]
  readonly categories: Readonly<Record<string, CategoryOverride>>
  readonly exempt: boolean
  readonly rules: InlineRules
}

export interface ListSource {
  readonly name: string
  readonly path?: string
  readonly url?: string
  readonly format: 'plain' | 'hosts' | 'adblock' | 'dnsmasq' | 'cidr' | 'ms365'
  readonly category?: string
  /** URL sources only: how they are fetched and checked (defaults filled in). */
  readonly update?: UrlSourceSettings
  /** format ms365 only: which endpoint sets to take, and where the published version is. */
  readonly ms365?: Ms365SourceSettings
}

/** A Microsoft 365 endpoints source (format ms365; src/lists/source-format.ts). */
export interface Ms365SourceSettings {
  /** Endpoint sets of these service areas (Exchange, SharePoint, Skype, Common; any case)... */
  readonly serviceAreas?: readonly string[]
  /** ...and these endpoint set ids. */
  readonly ids?: readonly number[]
  /** false: host names only, no address ranges (default true). */
  readonly ips?: boolean
  /** URL sources: Microsoft's version service; the endpoints are downloaded only when its `latest` changed. */
  readonly versionUrl?: string
}

export interface UrlSourceSettings {
  readonly intervalMs: number               // default 6 h; each wait is jittered by ±10%
  readonly timeoutMs: number                // whole download (list and signature), default 30000
  readonly maxBytes: number                 // default 50 MiB
  readonly caFile?: string                  // extra CA bundle (PEM) for https
  /** Detached Ed25519 signature URL; undefined = the list is not signed. */
  readonly signatureUrl?: string
  /** Names of the public keys accepted (every configured key when none were named). */
  readonly keys: readonly string[]
  readonly minEntries: number               // default 1
  readonly maxBadLineShare: number          // default 0.01
  readonly maxShrink: number                // default 0.5 (against the last accepted version)
}

export interface ListPublicKey {
  readonly name: string
  /** SPKI PEM of the Ed25519 key. */
  readonly pem: string
}

export interface ListUpdateConfig {
  readonly publicKeys: readonly ListPublicKey[]
  /** Lower-cased host names / IP literals allowed to be (or resolve to) non-public addresses. */
  readonly allowHosts: readonly string[]
  readonly requireSignature: boolean        // default false (http:// sources must always be signed)
}

export interface BlocklistsConfig {
  readonly dir: string                      // default: the installation's lists (egressd's CLI), else ./blocklists; written relative in a file: against the file's directory
  readonly action: BlockAction              // default nxdomain
  readonly blockTtl: number                 // default 60
  readonly sinkhole: { readonly ipv4: string, readonly ipv6: string }   // default 0.0.0.0 and ::
  readonly categories: Readonly<Record<string, CategoryOverride>>
  readonly sources: readonly ListSource[]
  readonly update: ListUpdateConfig         // downloading URL sources
  readonly rules: InlineRules               // config-wide custom rules
  readonly groups: readonly ClientGroup[]   // first group whose clients contain the address wins
  /** The rule guard (policy/guard.ts); absent in hand-built configs: the defaults. */
  readonly guard?: RuleGuardConfig
}

export interface RuleGuardConfig {
  readonly maxPrefix: { readonly v4: number, readonly v6: number }   // default 16 and 32
  readonly force: readonly string[]         // block rules kept although too broad, as written
}

export interface FirewallConfig {
  readonly table: string                    // default egressd
  readonly lanInterfaces: readonly string[]
  readonly lanCidrs: readonly string[]      // normalized 'addr/len'
  readonly rejectAddresses: boolean         // default true
  readonly redirectDns: boolean             // default true
  readonly rejectDot: boolean               // default true
  readonly rejectDoq: boolean               // default true
  readonly sync: boolean                    // default false
  readonly sharedRanges: readonly string[]  // categories whose shared-ranges.txt is on (default none)
  readonly evidence: { readonly enabled: boolean, readonly intervalMs: number, readonly perPairSeconds: number }
}

export interface LearningConfig {
  readonly enabled: boolean                 // default true
  readonly resolvesPerSecond: number        // default 20
  readonly queueMax: number                 // default 1000 names
  readonly ttlMultiple: number              // default 4
  readonly minExpirySeconds: number         // default 6 h
  readonly maxExpirySeconds: number         // default 7 days
  readonly probeIntervalSeconds: number     // default 1 h
  readonly guardWindowSeconds: number       // default 7 days
  readonly neverBlock: readonly string[]    // normalized 'addr/len'
  readonly maxAllowedAddresses: number      // default 200000
  readonly maxLearned: number               // default 50000
}

export interface StoreConfig {
  readonly path: string                     // default <dataDir>/egressd.sqlite
  readonly logQueries: 'blocked' | 'all' | 'none' // default blocked
  readonly queueMax: number                 // default 100000 events
  readonly batchMs: number                  // default 1000
  readonly retention: {
    readonly days: number                   // default 90
    readonly maxRows: number                // 0 = no limit (default)
    readonly maxBytes: number               // 0 = no limit (default)
  }
  readonly synchronous: 'NORMAL' | 'FULL'   // default NORMAL
  readonly busyTimeoutMs: number            // default 1000
  readonly threadNice: number               // nice of the writer and search threads, default 19
}

export interface Config {
  readonly dns: DnsConfig
  readonly upstreams: readonly UpstreamConfig[]   // never empty after load
  readonly cache: CacheConfig
  readonly api: ApiConfig
  readonly dataDir: string                  // default ./var (working directory); written relative in a file: against the file's directory
  readonly blocklists: BlocklistsConfig
  readonly firewall: FirewallConfig
  readonly learning: LearningConfig
  readonly store: StoreConfig
  readonly log: { readonly level: LogLevel }
  /** Where this config came from: a file path, or 'defaults'. */
  readonly source: string
}
