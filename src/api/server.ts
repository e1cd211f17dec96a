// The management API's listener: reads the TLS files, builds the app (app.ts) for the daemon and
// listens on api.listen. Closing it closes the app and its connections.

import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { formatAddress } from '../config/load.js'
import { EgressdError } from '../errors.js'
import { buildApp } from './app.js'
import type { ApiHost } from './host.js'

export interface ApiAddress { readonly host: string, readonly port: number, readonly tls: boolean }

export interface ApiServerDeps {
  readonly host: ApiHost
  readonly log: Logger
  readonly now: () => number
  readonly version: string
}

export class ApiServer {
  readonly address: ApiAddress
  readonly #app: FastifyInstance

  private constructor (app: FastifyInstance, address: ApiAddress) {
    this.#app = app
    this.address = address
  }

  /** Builds the app and listens; throws EGRESSD_ERR_API_TLS (files, app) or EGRESSD_ERR_LISTEN, leaving nothing open. */
  static async start (deps: ApiServerDeps): Promise<ApiServer> {
    const c = deps.host.config.api
    const log = deps.log.child({ mod: 'api' })
    const tls = c.tls === undefined ? undefined : { cert: readTlsFile(c.tls.cert, 'cert'), key: readTlsFile(c.tls.key, 'key') }
    let app: FastifyInstance
    try {
      // The block routes come with the host's blockSearch (ApiHost.blockSearch).
      app = await buildApp({ host: deps.host, log: deps.log, now: deps.now, version: deps.version, tls })
    } catch (err) {
      throw new EgressdError('EGRESSD_ERR_API_TLS', `api: cannot start: ${(err as Error).message}`, { cause: err })
    }
    try {
      await app.listen({ host: c.listen.host, port: c.listen.port })
    } catch (err) {
      await app.close()
      throw new EgressdError('EGRESSD_ERR_LISTEN', `api.listen ${formatAddress(c.listen)}: ${(err as Error).message}`, { cause: err })
    }
    const a = app.server.address() as AddressInfo
    if (c.tokens.length === 0) log.warn('no api.tokens configured: only /healthz, /readyz and /docs answer; make one with: egressd token create --role admin')
    log.info({ url: `${tls !== undefined ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` }, 'management API listening')
    return new ApiServer(app, { host: a.address, port: a.port, tls: tls !== undefined })
  }

  async close (): Promise<void> {
    await this.#app.close()
  }
}

function readTlsFile (file: string, key: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_API_TLS', `api.tls.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
}
