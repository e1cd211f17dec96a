// Downloads one list (or its signature) over http(s) with node:http/https, so egressd controls the
// socket: conditional GET (ETag / Last-Modified; a 304 is reported as such), TLS verified against
// the system CAs plus an optional CA file, at most 3 redirects and never to another scheme, a size
// cap enforced while the body streams in, one deadline for the whole download. Host names are
// resolved with the injected HostResolver (the configured upstreams) and every address is checked
// (addresses.ts) in the socket's own lookup and again once connected: the address connected to is
// the one checked, so DNS rebinding does not help. IP-literal URLs are checked the same way.

import http from 'node:http'
import https from 'node:https'
import { isIP, type LookupFunction, type Socket } from 'node:net'
import { rootCertificates } from 'node:tls'
import { ListUpdateError } from '../errors.js'
import { refusedRange } from './addresses.js'
import type { HostResolver } from './host-resolver.js'

export interface FetchOptions {
  readonly url: string
  /** Source name, for errors. */
  readonly source: string
  /** For the whole download, redirects included. */
  readonly timeoutMs: number
  readonly maxBytes: number
  /** Extra CA certificates (PEM) trusted besides the system ones. */
  readonly ca?: Buffer
  /** Validators of the copy we have: sent as If-None-Match / If-Modified-Since. */
  readonly etag?: string
  readonly lastModified?: string
  readonly resolveHost: HostResolver
  /** Lower-case host names / IP literals that may be non-public addresses. */
  readonly allowHosts: ReadonlySet<string>
  /** http:// is only allowed for signed lists. */
  readonly allowHttp: boolean
  readonly maxRedirects?: number
}

export type FetchResult =
  | { readonly status: 'not-modified', readonly url: string }
  | { readonly status: 'ok', readonly url: string, readonly body: Buffer, readonly etag?: string, readonly lastModified?: string }

const fail = (o: FetchOptions, reason: string, message: string, cause?: unknown): ListUpdateError =>
  new ListUpdateError(reason === 'address' || reason === 'scheme' ? 'EGRESSD_ERR_LIST_ADDRESS_REFUSED' : 'EGRESSD_ERR_LIST_FETCH',
    o.source, reason, message, cause === undefined ? undefined : { cause })

/** Fetches `o.url`, following redirects. Rejects with a ListUpdateError (reason tag set). */
export async function fetchList (o: FetchOptions): Promise<FetchResult> {
  const deadline = { at: Date.now() + o.timeoutMs }
  const first = parseUrl(o, o.url)
  if (first.protocol === 'http:' && !o.allowHttp) throw fail(o, 'scheme', `${o.url}: plain http:// is refused for a list that is not signed`)
  let url = first
  for (let hop = 0; ; hop++) {
    const r = await request(o, url, deadline)
    if (r.kind !== 'redirect') return r.result
    if (hop >= (o.maxRedirects ?? 3)) throw fail(o, 'redirect', `${o.url}: more than ${o.maxRedirects ?? 3} redirects`)
    let next: URL
    try {
      next = new URL(r.location, url)
    } catch {
      throw fail(o, 'redirect', `${url.href}: redirect to an invalid URL ${JSON.stringify(r.location)}`)
    }
    if (next.protocol !== first.protocol) throw fail(o, 'scheme', `${url.href}: redirect to another scheme refused (${next.href})`)
    url = parseUrl(o, next.href)
  }
}

function parseUrl (o: FetchOptions, text: string): URL {
  let u: URL
  try {
    u = new URL(text)
  } catch {
    throw fail(o, 'scheme', `not a URL: ${JSON.stringify(text)}`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw fail(o, 'scheme', `${u.protocol} URLs are refused (local lists are configured with "path")`)
  if (u.username !== '' || u.password !== '') throw fail(o, 'scheme', `${u.origin}: user info in list URLs is refused`)
  return u
}

type Hop = { kind: 'redirect', location: string } | { kind: 'done', result: FetchResult }

/** Why connecting to `address` for `host` is refused, or undefined. */
function refusal (o: FetchOptions, host: string, address: string): string | undefined {
  if (o.allowHosts.has(host)) return undefined
  const what = refusedRange(address)
  return what === undefined ? undefined : `${host} is ${address === host ? '' : `${address}, `}a ${what} address (allow it with blocklists.update.allowHosts)`
}

function request (o: FetchOptions, u: URL, deadline: { at: number }): Promise<Hop> {
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  const literal = isIP(host) !== 0
  if (literal) {
    const why = refusal(o, host, host)
    if (why !== undefined) return Promise.reject(fail(o, 'address', `${u.href}: ${why}`))
  }
  return new Promise<Hop>((resolve, reject) => {
    let settled = false
    const done = (err: Error | undefined, hop?: Hop): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err !== undefined) { req.destroy(); reject(err) } else resolve(hop as Hop)
    }
    // The socket's lookup: resolve through the upstreams, keep only permitted addresses.
    const lookup: LookupFunction = (hostname, options, cb) => {
      o.resolveHost(hostname).then(all => {
        const ok = all.filter(a => refusal(o, host, a) === undefined)
        if (ok.length === 0) {
          const why = refusal(o, host, all[0]) ?? 'no address'
          cb(fail(o, 'address', `${u.href}: ${why}`), '', 4)
          return
        }
        const family = (options as { family?: number }).family
        const fit = family === 4 || family === 6 ? ok.filter(a => isIP(a) === family) : ok
        if ((options as { all?: boolean }).all === true) {
          (cb as unknown as (e: null, a: Array<{ address: string, family: number }>) => void)(null, fit.map(a => ({ address: a, family: isIP(a) })))
        } else if (fit.length === 0) {
          cb(fail(o, 'network', `${u.href}: no IPv${String(family)} address for ${host}`), '', 4)
        } else {
          cb(null, fit[0], isIP(fit[0]))
        }
      }, (err: Error) => cb(err as NodeJS.ErrnoException, '', 4))
    }
    const headers: Record<string, string> = { 'user-agent': 'egressd list updater', accept: '*/*', 'accept-encoding': 'identity' }
    if (o.etag !== undefined) headers['if-none-match'] = o.etag
    if (o.lastModified !== undefined) headers['if-modified-since'] = o.lastModified
    const common = { method: 'GET', headers, agent: false as const, ...(literal ? {} : { lookup }) }
    const req = u.protocol === 'https:'
      ? https.request(u, { ...common, ...(o.ca !== undefined && { ca: [...rootCertificates, o.ca.toString()] }), ...(!literal && { servername: host }) })
      : http.request(u, common)
    const timer = setTimeout(() => done(fail(o, 'timeout', `${u.href}: no complete answer within ${o.timeoutMs} ms`)), Math.max(0, deadline.at - Date.now()))
    // The address actually connected to is checked once more, whatever resolved it.
    req.on('socket', (s: Socket) => {
      s.once('connect', () => {
        const why = s.remoteAddress === undefined ? 'no peer address' : refusal(o, host, s.remoteAddress)
        if (why !== undefined) done(fail(o, 'address', `${u.href}: ${why}`))
      })
    })
    req.on('error', err => {
      if (err instanceof ListUpdateError) { done(err); return }
      const code = (err as NodeJS.ErrnoException).code ?? ''
      const tlsProblem = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|HOSTNAME|ERR_TLS/.test(code)
      done(fail(o, tlsProblem ? 'tls' : 'network', `${u.href}: ${err.message}`, err))
    })
    req.on('response', res => {
      const status = res.statusCode ?? 0
      if (status >= 300 && status < 400 && status !== 304) {
        res.resume()
        const location = res.headers.location
        if (location === undefined) done(fail(o, 'http-status', `${u.href}: HTTP ${status} without Location`))
        else done(undefined, { kind: 'redirect', location })
        return
      }
      if (status === 304) {
        res.resume()
        if (o.etag === undefined && o.lastModified === undefined) done(fail(o, 'http-status', `${u.href}: HTTP 304 to an unconditional request`))
        else done(undefined, { kind: 'done', result: { status: 'not-modified', url: u.href } })
        return
      }
      if (status !== 200) {
        res.resume()
        done(fail(o, 'http-status', `${u.href}: HTTP ${status}${res.statusMessage === undefined ? '' : ` ${res.statusMessage}`}`))
        return
      }
      const declared = Number(res.headers['content-length'])
      if (Number.isFinite(declared) && declared > o.maxBytes) {
        done(fail(o, 'too-large', `${u.href}: ${declared} bytes announced, more than maxBytes ${o.maxBytes}`))
        return
      }
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (d: Buffer) => {
        size += d.length
        if (size > o.maxBytes) { done(fail(o, 'too-large', `${u.href}: more than maxBytes ${o.maxBytes} bytes`)); return }
        chunks.push(d)
      })
      res.on('error', err => done(fail(o, 'network', `${u.href}: ${err.message}`, err)))
      res.on('aborted', () => done(fail(o, 'network', `${u.href}: the connection closed before the end of the body`)))
      res.on('end', () => {
        if (!res.complete) { done(fail(o, 'network', `${u.href}: the connection closed before the end of the body`)); return }
        const header = (k: string): string | undefined => { const v = res.headers[k]; return typeof v === 'string' ? v : undefined }
        const etag = header('etag')
        const lastModified = header('last-modified')
        done(undefined, { kind: 'done', result: { status: 'ok', url: u.href, body: Buffer.concat(chunks), ...(etag !== undefined && { etag }), ...(lastModified !== undefined && { lastModified }) } })
      })
    })
    req.end()
  })
}
