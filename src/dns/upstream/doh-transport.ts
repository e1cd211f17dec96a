// DNS over HTTPS (RFC 8484): POST application/dns-message over a keep-alive HTTPS agent, with the
// certificate verified against the system CAs (plus an optional CA file) and the configured name.
// The query ID is 0 (RFC 8484 4.1); the answer must carry ID 0 and our question.

import https from 'node:https'
import { readFileSync } from 'node:fs'
import { UpstreamError } from '../../errors.js'
import { questionMatches } from '../wire.js'
import type { DropReason, Exchange, Transport } from './transport.js'

export interface DohTransportOptions {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly path: string
  readonly servername: string | undefined
  readonly caFile: string | undefined
  readonly onDrop: (reason: DropReason) => void
}

const MAX_ANSWER = 65535

export class DohTransport implements Transport {
  readonly url: string
  readonly #opts: DohTransportOptions
  readonly #agent: https.Agent

  constructor (opts: DohTransportOptions) {
    this.url = opts.url
    this.#opts = opts
    this.#agent = new https.Agent({
      keepAlive: true,
      maxSockets: 16,
      ca: opts.caFile === undefined ? undefined : readFileSync(opts.caFile),
      servername: opts.servername
    })
  }

  send (x: Exchange): void {
    this.#exchange(x).then(raw => { x.answer(raw) }, (err: Error) => { x.fail(err) })
  }

  #exchange (x: Exchange): Promise<Buffer> {
    x.wire.writeUInt16BE(0, 0)
    const o = this.#opts
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const fail = (code: 'EGRESSD_ERR_UPSTREAM_TIMEOUT' | 'EGRESSD_ERR_UPSTREAM_NETWORK' | 'EGRESSD_ERR_UPSTREAM_HTTP', msg: string, cause?: unknown): void => {
        clearTimeout(timer)
        reject(new UpstreamError(code, this.url, msg, { cause }))
      }
      const req = https.request({
        agent: this.#agent,
        host: o.host,
        port: o.port,
        path: o.path,
        method: 'POST',
        servername: o.servername,
        headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message', 'content-length': x.wire.length }
      }, res => {
        if (res.statusCode !== 200) {
          res.resume()
          fail('EGRESSD_ERR_UPSTREAM_HTTP', `HTTP ${res.statusCode ?? '?'}`)
          return
        }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (d: Buffer) => {
          size += d.length
          if (size > MAX_ANSWER) { req.destroy(); fail('EGRESSD_ERR_UPSTREAM_HTTP', 'answer larger than 65535 bytes'); return }
          chunks.push(d)
        })
        res.on('end', () => {
          clearTimeout(timer)
          const msg = Buffer.concat(chunks)
          if (msg.length < 12) { o.onDrop('short'); fail('EGRESSD_ERR_UPSTREAM_HTTP', 'answer shorter than a DNS header'); return }
          if (msg.readUInt16BE(0) !== 0) { o.onDrop('unknown-id'); fail('EGRESSD_ERR_UPSTREAM_HTTP', 'answer ID is not 0'); return }
          if (!questionMatches(msg, x.question)) { o.onDrop('wrong-question'); fail('EGRESSD_ERR_UPSTREAM_HTTP', 'answer is for another question'); return }
          resolve(msg)
        })
        res.on('error', err => fail('EGRESSD_ERR_UPSTREAM_NETWORK', err.message, err))
      })
      timer = setTimeout(() => {
        req.destroy()
        fail('EGRESSD_ERR_UPSTREAM_TIMEOUT', `no answer within ${x.timeoutMs} ms`)
      }, x.timeoutMs)
      req.on('error', err => { fail('EGRESSD_ERR_UPSTREAM_NETWORK', err.message, err) })
      req.end(x.wire)
    })
  }

  close (): void {
    this.#agent.destroy()
  }
}
