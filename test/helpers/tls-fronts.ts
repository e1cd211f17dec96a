// Encrypted fronts for a real (plain) DNS upstream, for testing tls:// and https:// upstreams:
// a throwaway CA with server certificates made by the openssl CLI, a DNS-over-TLS front that relays
// each connection to the upstream's TCP port, and a DNS-over-HTTPS front that relays each POSTed
// message to the upstream over UDP. Both listen on 127.0.0.1 only and count what they see.

import { execFileSync } from 'node:child_process'
import dgram from 'node:dgram'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import { requireTool } from './tools.js'
import { tempDir } from './tmp.js'

// ---------------------------------------------------------------------------------------------
// Certificates

export interface KeyPair {
  /** PEM private key. */
  readonly key: Buffer
  /** PEM certificate (leaf only; the CA is not sent along). */
  readonly cert: Buffer
}

export interface TestPki {
  readonly dir: string
  /** Path of the CA certificate (PEM), for an upstream's caFile. */
  readonly caFile: string
  /** Issue a server certificate signed by the CA with these subjectAltName entries ('DNS:x', 'IP:y'). */
  issue (name: string, altNames: string[]): KeyPair
  remove (): void
}

function openssl (args: string[], cwd: string): void {
  let bin: string
  try {
    bin = requireTool('openssl')
  } catch {
    throw new Error('openssl is not installed (the tests make their certificates with it): apt-get install openssl')
  }
  try {
    execFileSync(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '')
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr || (err as Error).message}`)
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/** A throwaway CA in a new temp dir. Certificates are valid for two days. */
export function makeTestPki (): TestPki {
  const dir = tempDir('egressd-pki-')
  openssl(['req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=egressd test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir)
  let serial = 0x1000
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    issue (name, altNames) {
      const base = name.replace(/[^A-Za-z0-9.-]/g, '_')
      writeFileSync(join(dir, `${base}.ext`), [
        `subjectAltName=${altNames.join(',')}`,
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth'
      ].join('\n') + '\n')
      openssl(['req', ...EC_KEY, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`], dir)
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++),
        '-days', '2', '-sha256', '-extfile', `${base}.ext`, '-out', `${base}.pem`], dir)
      return { key: readFileSync(join(dir, `${base}.key`)), cert: readFileSync(join(dir, `${base}.pem`)) }
    },
    remove () { rmSync(dir, { recursive: true, force: true }) }
  }
}

// ---------------------------------------------------------------------------------------------
// DNS over TLS

export interface Target { readonly host: string, readonly port: number }

export interface DotStats {
  /** TLS handshakes the server completed. */
  connections: number
  /** Handshakes that failed on the server side (e.g. the client rejected the certificate). */
  handshakeErrors: number
  /** DNS messages received from clients (after decryption). */
  frames: number
  /** DNS messages sent back to clients. */
  answers: number
  /** Most messages received on one connection but not yet answered. */
  maxInFlight: number
  /** SNI of each connection (false: none sent). */
  servernames: Array<string | false>
  /** Negotiated ALPN protocol of each connection (false: none). */
  alpn: Array<string | false>
}

export interface DotFront {
  readonly host: string
  readonly port: number
  readonly stats: DotStats
  close (): Promise<void>
}

export interface DotFrontOptions extends KeyPair {
  readonly target: Target
  /**
   * Hold the messages of a connection until this many have arrived, then relay them all: proves the
   * client pipelines (a client that waits for each answer never gets one). Default 1 (no holding).
   */
  readonly holdUntil?: number
}

/** Calls `onFrame` with each complete 2-byte-length-prefixed message of a byte stream. */
function frameReader (onFrame: (frame: Buffer) => void): (d: Buffer) => void {
  let buf = Buffer.alloc(0)
  return d => {
    buf = Buffer.concat([buf, d])
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const len = buf.readUInt16BE(0)
      onFrame(buf.subarray(0, 2 + len))
      buf = buf.subarray(2 + len)
    }
  }
}

export async function startDotFront (opts: DotFrontOptions): Promise<DotFront> {
  const stats: DotStats = { connections: 0, handshakeErrors: 0, frames: 0, answers: 0, maxInFlight: 0, servernames: [], alpn: [] }
  const sockets = new Set<net.Socket>()
  const holdUntil = opts.holdUntil ?? 1
  const server = tls.createServer({ key: opts.key, cert: opts.cert, ALPNProtocols: ['dot'] }, client => {
    stats.connections++
    stats.servernames.push(client.servername ?? false)
    stats.alpn.push(client.alpnProtocol ?? false)
    sockets.add(client)
    // Messages relayed to the target and not answered yet, by DNS ID. The target's TCP connection
    // lives apart from the client's: dnsmasq closes some connections after one answer (its first
    // one), so a closed one is reopened on demand and what it left unanswered is sent again.
    const unanswered = new Map<number, Buffer>()
    let upstream: net.Socket | undefined
    let reopened = 0
    let inFlight = 0
    let held: Buffer[] | undefined = holdUntil > 1 ? [] : undefined
    const relay = (frames: Buffer[]): void => {
      for (const f of frames) unanswered.set(f.readUInt16BE(2), f)
      if (upstream === undefined) {
        const conn = net.connect({ host: opts.target.host, port: opts.target.port, noDelay: true })
        upstream = conn
        sockets.add(conn)
        conn.on('data', frameReader(frame => {
          if (frame.length >= 4) unanswered.delete(frame.readUInt16BE(2))
          stats.answers++
          inFlight--
          client.write(frame)
        }))
        conn.on('error', () => { /* 'close' follows */ })
        conn.on('close', () => {
          sockets.delete(conn)
          if (upstream !== conn) return
          upstream = undefined
          if (unanswered.size > 0 && !client.destroyed && reopened++ < 10) relay([...unanswered.values()])
        })
      }
      upstream.write(Buffer.concat(frames))
    }
    client.on('data', frameReader(frame => {
      stats.frames++
      inFlight++
      stats.maxInFlight = Math.max(stats.maxInFlight, inFlight)
      if (frame.length < 4) return
      if (held === undefined) { relay([frame]); return }
      held.push(frame)
      if (held.length >= holdUntil) { relay(held); held = undefined }
    }))
    client.on('error', () => { /* 'close' follows */ })
    client.on('end', () => { client.end() })
    client.on('close', () => {
      sockets.delete(client)
      upstream?.destroy()
      upstream = undefined
    })
  })
  server.on('tlsClientError', (_err, sock) => { stats.handshakeErrors++; sock.destroy() })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as net.AddressInfo
  return {
    host: '127.0.0.1',
    port,
    stats,
    close: () => new Promise<void>(resolve => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  }
}

// ---------------------------------------------------------------------------------------------
// DNS over HTTPS

/** ok: relay to the target; status500: answer HTTP 500; garbage: 200 with bytes that are no DNS message. */
export type DohMode = 'ok' | 'status500' | 'garbage'

export interface DohRequest {
  readonly method: string
  readonly path: string
  readonly contentType: string | undefined
  readonly accept: string | undefined
  /** The DNS message ID of the body (RFC 8484 wants 0). */
  readonly id: number | undefined
  readonly body: Buffer
}

export interface DohFront {
  readonly host: string
  readonly port: number
  /** Every request, in order. */
  readonly requests: DohRequest[]
  /** TLS connections accepted. */
  readonly connections: () => number
  /** TLS handshakes that failed on the server side (e.g. the client rejected the certificate). */
  readonly handshakeErrors: () => number
  /** How the next requests are answered; may be changed at any time. */
  mode: DohMode
  close (): Promise<void>
}

export interface DohFrontOptions extends KeyPair {
  readonly target: Target
  readonly mode?: DohMode
  /** Default /dns-query. */
  readonly path?: string
}

/** Sends one message over UDP and resolves with the first reply (or rejects after `ms`). */
function udpExchange (target: Target, msg: Buffer, ms: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(target.host) ? 'udp6' : 'udp4')
    const timer = setTimeout(() => { sock.close(); reject(new Error(`no UDP answer within ${ms} ms`)) }, ms)
    sock.on('error', err => { clearTimeout(timer); sock.close(); reject(err) })
    sock.on('message', reply => { clearTimeout(timer); sock.close(); resolve(reply) })
    sock.send(msg, target.port, target.host)
  })
}

export async function startDohFront (opts: DohFrontOptions): Promise<DohFront> {
  const requests: DohRequest[] = []
  const path = opts.path ?? '/dns-query'
  let connections = 0
  let handshakeErrors = 0
  const server = https.createServer({ key: opts.key, cert: opts.cert }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        contentType: req.headers['content-type'],
        accept: req.headers.accept,
        id: body.length >= 2 ? body.readUInt16BE(0) : undefined,
        body
      })
      const send = (status: number, payload: Buffer, type = 'application/dns-message'): void => {
        res.writeHead(status, { 'content-type': type, 'content-length': payload.length, 'cache-control': 'max-age=0' })
        res.end(payload)
      }
      if (req.method !== 'POST' || req.url !== path) { send(404, Buffer.from('not found\n'), 'text/plain'); return }
      if (req.headers['content-type'] !== 'application/dns-message') { send(415, Buffer.from('unsupported media type\n'), 'text/plain'); return }
      switch (front.mode) {
        case 'status500': send(500, Buffer.from('internal error\n'), 'text/plain'); return
        case 'garbage': send(200, Buffer.from('<html>not dns</html>')); return
        case 'ok':
          udpExchange(opts.target, body, 2000).then(
            answer => send(200, answer),
            () => send(502, Buffer.from('upstream failed\n'), 'text/plain'))
      }
    })
  })
  server.on('secureConnection', () => { connections++ })
  server.on('tlsClientError', (_err, sock) => { handshakeErrors++; sock.destroy() })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const { port } = server.address() as net.AddressInfo
  const front: DohFront = {
    host: '127.0.0.1',
    port,
    requests,
    connections: () => connections,
    handshakeErrors: () => handshakeErrors,
    mode: opts.mode ?? 'ok',
    close: () => new Promise<void>(resolve => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
  return front
}
