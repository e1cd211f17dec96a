// How the admin commands reach the running daemon's management API: the URL (--api URL, else
// api.listen of the config the CLI found, http or https as api.tls says), the token (never on the
// command line: --token-file FILE, else EGRESSD_TOKEN, else /etc/egressd/cli.token when it exists),
// the CA to trust for https (--ca FILE, else the system's plus api.tls.cert when it can be read), and
// one request helper whose errors say what to do: which URL refused, which role is needed, the API's
// own message for a 4xx.

import http from 'node:http'
import https from 'node:https'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { rootCertificates } from 'node:tls'
import { systemConfigDir } from '../config/discover.js'
import type { Config } from '../config/types.js'
import { EgressdError } from '../errors.js'
import { loadCliConfig } from './config.js'
import type { CliIo } from './io.js'

export type Role = 'admin' | 'viewer'

export const API_OPTIONS = {
  config: { type: 'string', short: 'c' },
  api: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' }
} as const

export interface ApiFlags {
  config?: string
  api?: string
  'token-file'?: string
  ca?: string
}

export interface ApiTarget {
  readonly base: URL
  /** Where the URL came from, for messages. */
  readonly urlFrom: string
  readonly token: string
  /** Where the token came from, for messages (never the token). */
  readonly tokenFrom: string
  readonly ca: readonly string[] | undefined
}

const fail = (message: string): never => { throw new EgressdError('EGRESSD_ERR_CLI_API', message) }
const usage = (message: string): never => { throw new EgressdError('EGRESSD_ERR_USAGE', message) }

const TOKEN = /^[A-Za-z0-9._~+/=-]{1,512}$/

/** The token in a file: the `token: X` line `egressd token create` prints, else the first line that is not a comment. */
export function tokenFromFile (text: string): string | undefined {
  const lines = text.split(/\r?\n/).map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
  const labelled = lines.map(l => /^token:\s*(\S+)$/.exec(l)?.[1]).find(t => t !== undefined)
  const token = labelled ?? lines[0]
  return token !== undefined && TOKEN.test(token) ? token : undefined
}

function readToken (file: string, io: CliIo, required: boolean): string | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
    const mode = statSync(file).mode
    if ((mode & 0o077) !== 0) io.err(`warning: the token file ${file} can be read by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 ${file}\n`)
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    return fail(`cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return tokenFromFile(text) ?? fail(`${file} holds no API token (a line "token: ..." as egressd token create prints, or the token alone)`)
}

function apiUrlFromConfig (config: Config): { base: URL, from: string } {
  const { host, port, family } = config.api.listen
  const where = `api.listen of ${config.source === 'defaults' ? 'the built-in defaults' : config.source}`
  if (port === 0) usage(`${where} has port 0 (chosen by the OS at start): give --api URL`)
  // A wildcard listen address is reached on loopback from this host.
  const reach = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  const scheme = config.api.tls === undefined ? 'http' : 'https'
  return { base: new URL(`${scheme}://${family === 6 || reach.includes(':') ? `[${reach}]` : reach}:${port}/`), from: where }
}

/** The URL, token and CA for the admin commands (see the header). */
export function apiTarget (flags: ApiFlags, io: CliIo): ApiTarget {
  let base: URL
  let urlFrom: string
  let config: Config | undefined
  if (flags.api !== undefined) {
    try {
      base = new URL(flags.api)
    } catch {
      return usage(`--api must be a URL such as http://127.0.0.1:8053, got "${flags.api}"`)
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') usage(`--api must be an http:// or https:// URL, got "${flags.api}"`)
    urlFrom = '--api'
  } else {
    config = loadCliConfig(io, flags.config)
    ;({ base, from: urlFrom } = apiUrlFromConfig(config))
  }

  let token: string | undefined
  let tokenFrom: string
  if (flags['token-file'] !== undefined) {
    tokenFrom = flags['token-file']
    token = readToken(tokenFrom, io, true)
  } else if (io.env.EGRESSD_TOKEN !== undefined && io.env.EGRESSD_TOKEN !== '') {
    tokenFrom = 'EGRESSD_TOKEN'
    token = io.env.EGRESSD_TOKEN.trim()
    if (!TOKEN.test(token)) fail('EGRESSD_TOKEN does not look like an API token (letters, digits and ._~+/=-, at most 512)')
  } else {
    tokenFrom = join(systemConfigDir(io.env), 'cli.token')
    token = readToken(tokenFrom, io, false)
    if (token === undefined) {
      usage(`no API token: set EGRESSD_TOKEN, or give --token-file FILE (the default ${tokenFrom} does not exist). ` +
        'Make one with: egressd token create --role admin')
    }
  }

  let ca: string[] | undefined
  if (flags.ca !== undefined) {
    try {
      ca = [readFileSync(flags.ca, 'utf8')]
    } catch (err) {
      return fail(`cannot read the CA file ${flags.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  } else if (base.protocol === 'https:' && config?.api.tls !== undefined) {
    // A self-signed api.tls.cert is its own trust anchor; the system's CAs stay trusted too.
    try {
      ca = [...rootCertificates, readFileSync(config.api.tls.cert, 'utf8')]
    } catch {
      ca = undefined
    }
  }
  return { base, urlFrom, token: token as string, tokenFrom, ca }
}

export interface ApiAnswer<T> {
  readonly status: number
  /** The JSON body as the route's schema describes it (undefined when the body is not JSON). */
  readonly body: T
}

/** What an error answer may hold (api/errors.ts: error, message, statusCode; a rejected reload adds issues). */
interface ErrorAnswer { error?: unknown, message?: unknown, issues?: unknown }

/**
 * One request. Resolves with 2xx answers (and with the statuses in `accept`); everything else is an
 * EgressdError whose message says what to do.
 */
export async function apiCall<T> (t: ApiTarget, method: string, path: string, needs: Role, body?: unknown, accept: readonly number[] = []): Promise<ApiAnswer<T>> {
  const url = new URL(path, t.base)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const mod = url.protocol === 'https:' ? https : http
  const answer = await new Promise<{ status: number, text: string }>((resolve, reject) => {
    const req = mod.request(url, {
      method,
      timeout: 15_000,
      ...(t.ca !== undefined && { ca: [...t.ca] }),
      headers: {
        authorization: `Bearer ${t.token}`,
        accept: 'application/json',
        ...(payload !== undefined && { 'content-type': 'application/json' })
      }
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 15 s'), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
    req.end(payload)
  }).catch((err: NodeJS.ErrnoException) => fail(networkMessage(err, t)))
  let parsed: unknown
  try { parsed = JSON.parse(answer.text) } catch { parsed = undefined }
  if ((answer.status >= 200 && answer.status < 300) || accept.includes(answer.status)) return { status: answer.status, body: parsed as T }
  const e: ErrorAnswer = typeof parsed === 'object' && parsed !== null ? parsed : {}
  const said = typeof e.message === 'string' ? e.message : answer.text.slice(0, 500)
  if (answer.status === 401) {
    fail(`the API at ${t.base.origin} refused the token from ${t.tokenFrom} (401): it matches no api.tokens entry of the running daemon. ` +
      `This needs a token of role ${needs} (egressd token create --role ${needs}, its line under api.tokens, then a reload)`)
  }
  if (answer.status === 403) fail(`the token from ${t.tokenFrom} may not do this (403): it needs role ${needs}; ${said}`)
  const issues = Array.isArray(e.issues) ? e.issues.map(i => `\n  ${String(i)}`).join('') : ''
  const error = typeof e.error === 'string' ? e.error : http.STATUS_CODES[answer.status] ?? ''
  return fail(`${method} ${url.pathname}: ${answer.status} ${error}: ${said}${issues}`)
}

function networkMessage (err: NodeJS.ErrnoException, t: ApiTarget): string {
  const at = `the egressd API at ${t.base.origin} (${t.urlFrom})`
  switch (err.code) {
    case 'ECONNREFUSED': return `cannot reach ${at}: connection refused. Is the daemon running? (systemctl status egressd; or give --api URL)`
    case 'ETIMEDOUT': return `no answer from ${at} within 15 s`
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `cannot reach ${at}: ${err.code}`
    case 'DEPTH_ZERO_SELF_SIGNED_CERT': case 'SELF_SIGNED_CERT_IN_CHAIN': case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `${at}: its TLS certificate is not trusted (${err.code}): give --ca FILE, the CA that issued api.tls.cert`
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `${at}: its TLS certificate does not name ${t.base.hostname} (${err.message}): give --api https://NAME:PORT with a name the certificate holds`
    case 'EPROTO': return `${at}: TLS failed (${err.message}); an http:// URL for an HTTPS API, or the other way round?`
    default: return `cannot reach ${at}: ${err.code ?? ''} ${err.message}`.trim()
  }
}
