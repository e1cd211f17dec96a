// A list server for list-update tests: node:http or node:https (certificate from a throwaway CA)
// on 127.0.0.1, serving whatever each path is set to (body with an ETag, a status, a redirect, a
// stall), answering conditional requests with 304, and recording every request it saw.

import http from 'node:http'
import https from 'node:https'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Socket } from 'node:net'

export type Route =
  | { readonly body: string | Buffer, readonly etag?: boolean }
  | { readonly status: number }
  | { readonly redirect: string, readonly status?: number }
  | { readonly stall: true }
  /** Announce no length and stream `bytes` bytes of list lines. */
  | { readonly stream: number }

export interface SeenRequest { readonly path: string, readonly headers: http.IncomingHttpHeaders }

export interface ListServer {
  readonly port: number
  /** `http://127.0.0.1:PORT` or `https://...`; pass a host to use a name instead. */
  url (path: string, host?: string): string
  readonly requests: SeenRequest[]
  set (path: string, route: Route): void
  close (): Promise<void>
}

export async function startListServer (tls?: { key: Buffer, cert: Buffer }): Promise<ListServer> {
  const routes = new Map<string, Route>()
  const requests: SeenRequest[] = []
  const sockets = new Set<Socket>()
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = req.url ?? '/'
    requests.push({ path, headers: req.headers })
    const r = routes.get(path)
    if (r === undefined) { res.writeHead(404).end('not found\n'); return }
    if ('stall' in r) return // never answers
    if ('status' in r && !('redirect' in r)) { res.writeHead(r.status).end(`status ${r.status}\n`); return }
    if ('redirect' in r) { res.writeHead(r.status ?? 302, { location: r.redirect }).end(); return }
    if ('stream' in r) {
      res.writeHead(200, { 'content-type': 'text/plain' })
      let sent = 0
      const line = Buffer.from('stream-filler.example\n'.repeat(1000))
      const more = (): void => {
        while (sent < r.stream) {
          sent += line.length
          if (!res.write(line)) { res.once('drain', more); return }
        }
        res.end()
      }
      more()
      return
    }
    const body = Buffer.from(r.body)
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`
    if (r.etag !== false && req.headers['if-none-match'] === etag) { res.writeHead(304, { etag }).end(); return }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, ...(r.etag !== false && { etag }) })
    res.end(body)
  }
  const server = tls === undefined ? http.createServer(handler) : https.createServer({ key: tls.key, cert: tls.cert }, handler)
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as AddressInfo
  const scheme = tls === undefined ? 'http' : 'https'
  return {
    port,
    url: (path, host = '127.0.0.1') => `${scheme}://${host}:${port}${path}`,
    requests,
    set: (path, route) => { routes.set(path, route) },
    close: () => new Promise<void>(resolve => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }
}
