// The management API as a fastify app factory: routes, auth, validation, rate limit, security
// headers, the OpenAPI document. It never listens by itself: the daemon calls listen(), tests call
// inject(). Every route declares `config.role` (public, metrics, viewer, admin; none = admin) and a
// schema with tags and a summary, from which /api/v1/openapi.json is generated.
//
// Order per request: rate limit (per client address) -> bearer token and role (an unknown route:
// 401 without a valid token, 404 with one of any role) -> no unexpected body
// or query string -> schema validation -> handler -> security headers.
//
// The listener is bounded by api.server: request headers must arrive within headersTimeoutMs and
// the whole request within requestTimeoutMs (checked every quarter of the headers timeout, at
// most every second: Node's own check runs every 30 s), TLS handshakes within the headers timeout,
// and connections beyond maxConnectionsPerClient (one address) or maxConnections (everyone) are
// closed as they arrive. So clients that send a byte at a time (slowloris) hold a connection for
// seconds, not forever, and one client cannot take every connection from the others (/healthz).

import swagger from '@fastify/swagger'
import type { Server, ServerOptions } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { ApiServerConfig } from '../config/types.js'
import type { Engine } from '../policy/engine.js'
import type { FilterValues } from '../store/block-filter.js'
import { InputError } from '../errors.js'
import { authenticate, bearerToken, mayCall } from './auth.js'
import type { ApiDeps, RouteContext } from './context.js'
import { errorBody, installErrorHandlers, installJsonParser, installValidators, schemaErrorFormatter } from './errors.js'
import { installSecurityHeaders } from './headers.js'
import { ClientSlots, newApiLimitCounters, RateLimiter, type ApiLimitCounters } from './rate-limit.js'
import { adminRoutes } from './routes/admin.js'
import { blockRoutes } from './routes/blocks.js'
import { categoryRoutes } from './routes/categories.js'
import { checkRoutes } from './routes/check.js'
import { discoveryRoutes } from './routes/discovery.js'
import { learnedRoutes } from './routes/learned.js'
import { docsRoutes } from './routes/docs.js'
import { healthRoutes } from './routes/health.js'
import { listRoutes } from './routes/lists.js'
import { metricsRoutes } from './routes/metrics.js'
import { ruleRoutes } from './routes/rules.js'
import { ErrorSchema } from './schemas.js'

/** How often Node looks for requests past their headers or request timeout. */
function timeoutCheckInterval (headersTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(headersTimeoutMs / 4)))
}

/** Node's server options for the timeouts of api.server (fastify does not pass these on itself). */
function serverTimeouts (s: ApiServerConfig): { headersTimeout: number, requestTimeout: number, connectionsCheckingInterval: number } {
  return { headersTimeout: s.headersTimeoutMs, requestTimeout: s.requestTimeoutMs, connectionsCheckingInterval: timeoutCheckInterval(s.headersTimeoutMs) }
}

/**
 * Closes connections beyond api.server's per-client and overall caps as they arrive (before TLS
 * or any byte is read), and counts them and the requests that ran out of time.
 */
function guardConnections (server: Server, s: ApiServerConfig, limits: ApiLimitCounters): void {
  const slots = new ClientSlots()
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress
    if (client === undefined) return // already gone
    const refused = slots.acquire(client, s.maxConnectionsPerClient, s.maxConnections)
    if (refused !== undefined) {
      limits.connectionsRefused[refused]++
      socket.destroy()
      return
    }
    socket.once('close', () => slots.release(client))
  })
  server.on('clientError', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') limits.requestTimeouts++
  })
}

/**
 * The app for `deps.host`: every route plugin of routes/, registered here and only here, with one
 * RouteContext; the block log's when the host has a block search.
 */
export async function buildApp (deps: ApiDeps): Promise<FastifyInstance> {
  const { host } = deps
  const api = host.config.api
  const log = deps.log.child({ mod: 'api' })
  const server = api.server
  const timeouts = serverTimeouts(server)
  const opts: FastifyServerOptions & { https?: unknown, http?: ServerOptions } = {
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: api.bodyLimit,
    schemaErrorFormatter: (errors, dataVar) => schemaErrorFormatter(errors as never, dataVar),
    return503OnClosing: true,
    forceCloseConnections: true,
    connectionTimeout: server.idleTimeoutMs,
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    maxRequestsPerSocket: server.maxRequestsPerSocket,
    trustProxy: false,
    http: timeouts,
    ...(deps.tls !== undefined && {
      https: { cert: deps.tls.cert, key: deps.tls.key, minVersion: 'TLSv1.2', handshakeTimeout: server.headersTimeoutMs, ...timeouts }
    })
  }
  const app = Fastify(opts) as unknown as FastifyInstance
  const limits = newApiLimitCounters()
  guardConnections(app.server, server, limits)
  installValidators(app)
  installJsonParser(app)
  installErrorHandlers(app, log, api.bodyLimit)
  installSecurityHeaders(app, deps.tls !== undefined)
  app.addSchema(ErrorSchema)

  const rateLimiter = new RateLimiter({ perSecond: api.rateLimit.perSecond, burst: api.rateLimit.burst, now: deps.now })
  app.addHook('onRequest', async (req, reply) => {
    const decision = rateLimiter.take(req.ip)
    if (!decision.ok) {
      return reply.code(429).header('retry-after', String(decision.retryAfterS))
        .send(errorBody(429, `too many requests from ${req.ip}; retry after ${decision.retryAfterS} s (api.rateLimit)`))
    }
    const needs = req.routeOptions.config?.role ?? 'admin'
    if (needs === 'public') return
    // Tokens are read from the config in force, so a reload that changes them applies at once.
    const token = authenticate(bearerToken(req.headers.authorization), host.config.api.tokens)
    if (token === undefined) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="egressd"')
        .send(errorBody(401, 'a valid bearer token is required (Authorization: Bearer <token>)'))
    }
    // An unknown route is a 404 for every valid token: answering 403 to lesser roles (an unmatched
    // route has no role, so it needs admin) would tell them nothing true.
    if (!mayCall(token.role, needs) && !req.is404) return reply.code(403).send(errorBody(403, `this token's role may not do this (needs ${needs})`))
    req.principal = { name: token.name, role: token.role }
  })
  // Routes declare what they accept: a body or query string where none is expected is an error too.
  app.addHook('preValidation', async req => {
    const schema = req.routeOptions.schema
    if (req.body !== undefined && schema?.body === undefined) {
      throw new InputError('body', 'this endpoint takes no request body')
    }
    const query = req.query as Record<string, unknown> | undefined
    const extra = query === undefined ? undefined : Object.keys(query)[0]
    if (extra !== undefined && schema?.querystring === undefined) {
      throw new InputError(`querystring.${extra}`, 'unknown parameter')
    }
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'egressd management API',
        version: deps.version,
        description: 'Admin control, health, metrics and the block log of egressd, the DNS egress filter. ' +
          'Authenticate with `Authorization: Bearer <token>`; each operation says the least role it needs (admin > viewer > metrics).'
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from `egressd token create`' } } },
      tags: [
        { name: 'health', description: 'Liveness and readiness (no token)' },
        { name: 'metrics', description: 'Prometheus metrics' },
        { name: 'policy', description: 'Categories, custom rules, verdicts' },
        { name: 'admin', description: 'Status, reload, audit log' },
        { name: 'lists', description: 'Updates of the URL list sources' },
        { name: 'blocks', description: 'The block log' },
        { name: 'docs', description: 'This document' }
      ]
    },
    transform: ({ schema, url, route }) => {
      const role = route.config?.role ?? 'admin'
      const s: Record<string, unknown> = { ...schema }
      if (role !== 'public') s.security = [{ bearer: [] }]
      s.description = `${typeof schema?.description === 'string' ? `${schema.description} ` : ''}Role: ${role === 'public' ? 'none (no token)' : role}.`
      return { schema: s, url }
    }
  })

  // Built once per policy engine (a reload swaps the engine), not per request.
  let values: { engine: Engine, values: FilterValues } | undefined
  const filterValues = (): FilterValues => {
    const engine = host.policy.engine
    if (values?.engine !== engine) {
      values = { engine, values: { categories: new Set(engine.categories.map(c => c.name)), groups: new Set(engine.groups.map(g => g.name)) } }
    }
    return values.values
  }
  const ctx: RouteContext = { ...deps, rateLimiter, limits, liveTail: () => host.config.api.liveTail, filterValues }
  await app.register(healthRoutes, ctx)
  await app.register(metricsRoutes, ctx)
  await app.register(categoryRoutes, ctx)
  await app.register(ruleRoutes, ctx)
  await app.register(checkRoutes, ctx)
  await app.register(adminRoutes, ctx)
  await app.register(listRoutes, ctx)
  await app.register(learnedRoutes, ctx)
  await app.register(docsRoutes, ctx)
  const reader = host.blockSearch
  if (reader !== undefined) await app.register(blockRoutes, { ...ctx, reader })
  if (reader !== undefined) await app.register(discoveryRoutes, { ...ctx, reader })
  return app
}
