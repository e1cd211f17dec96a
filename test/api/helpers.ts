// Helpers for the management API tests: a real daemon (DNS + API on OS-chosen ports, its own data
// dir, optionally reading its config from a file so reloads work), an upstream that answers every
// A query, an HTTP client that shows status, headers and body as they are, and tokens of each role.

import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import { parseConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/types.js'
import { Daemon } from '../../src/daemon.js'
import { createLogger } from '../../src/log.js'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { tempDir } from '../helpers/tmp.js'

export const TOKENS = {
  admin: randomBytes(32).toString('base64url'),
  viewer: randomBytes(32).toString('base64url'),
  metrics: randomBytes(32).toString('base64url')
} as const
export type Role = keyof typeof TOKENS

const sha = (t: string): string => createHash('sha256').update(t).digest('hex')

export const TOKEN_CONFIG = (Object.keys(TOKENS) as Role[]).map(role => ({ name: `${role}-token`, role, sha256: sha(TOKENS[role]) }))

/** A real upstream (dnsmasq on loopback) answering every A query with 192.0.2.1. */
export async function answeringUpstream (): Promise<{ readonly url: string, close: () => Promise<void> }> {
  const dns = await startDnsmasq({ auth: false, lines: ['address=/#/192.0.2.1'] })
  return { url: dns.url, close: () => dns.stop() }
}

export interface ApiDaemon {
  readonly daemon: Daemon
  readonly base: string
  readonly dnsPort: number
  readonly dataDir: string
  readonly configFile: string
  readonly logs: () => Array<Record<string, unknown>>
  close (): Promise<void>
}

/**
 * A daemon whose config is the JSON file `configFile` (written from `config` merged over the test
 * defaults), so POST /api/v1/reload reads it again. The data dir is kept when given (restarts).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a config file's JSON, merged over the defaults as written
export async function startApiDaemon (config: Record<string, any> = {}, opts: { dataDir?: string, now?: () => number } = {}): Promise<ApiDaemon> {
  const dataDir = opts.dataDir ?? tempDir('egressd-api-')
  const configFile = join(dataDir, 'config.yaml')
  const merged = {
    dns: { listen: ['127.0.0.1:0'] },
    upstreams: ['udp://127.0.0.1:9'],
    dataDir,
    log: { level: 'info' },
    ...config,
    api: { listen: '127.0.0.1:0', tokens: TOKEN_CONFIG, ...(config.api ?? {}) }
  }
  writeFileSync(configFile, JSON.stringify(merged, null, 2))
  // Loaded as `egressd start` loads it: without blocklists.dir, the installation's lists (an absolute
  // path), so list names agree with what the CLI (egressd query) reports for the same file.
  const load = (): Config => parseConfig(readFileSync(configFile, 'utf8'), { file: configFile, resolvConf: '', bundledBlocklistsDir: resolve('blocklists') })
  const lines: string[] = []
  const sink = new Writable({ write (chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb() } })
  const cfg = load()
  const daemon = new Daemon(cfg, { log: createLogger(cfg.log.level, sink), now: opts.now, loadConfig: load })
  await daemon.start()
  const api = daemon.apiAddress!
  const udp = daemon.addresses.find(a => a.protocol === 'udp')!
  return {
    daemon,
    base: `${api.tls ? 'https' : 'http'}://127.0.0.1:${api.port}`,
    dnsPort: udp.port,
    dataDir,
    configFile,
    logs: () => lines.map(l => JSON.parse(l)),
    close: () => daemon.close()
  }
}

export interface Response {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly text: string
  /** The body parsed as JSON (undefined when it is not JSON). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any route's answer; tests assert its shape
  readonly json: any
}

export interface CallOptions {
  readonly token?: string
  /** Sent as JSON (objects) or as is (strings, with Content-Type application/json unless headers say otherwise). */
  readonly body?: unknown
  readonly headers?: Record<string, string>
  /** CA certificate to trust (HTTPS). */
  readonly ca?: Buffer
}

/** One HTTP(S) request; resolves with whatever the server answered. */
export function call (base: string, method: string, path: string, o: CallOptions = {}): Promise<Response> {
  const url = new URL(path, base)
  const body = o.body === undefined ? undefined : typeof o.body === 'string' || Buffer.isBuffer(o.body) ? o.body : JSON.stringify(o.body)
  const headers: Record<string, string> = {
    ...(o.token !== undefined && { authorization: `Bearer ${o.token}` }),
    ...(body !== undefined && { 'content-type': 'application/json' }),
    ...o.headers
  }
  const mod = url.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, ca: o.ca, timeout: 10_000 }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown
        try { json = JSON.parse(text) } catch { json = undefined }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)))
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
