// The management API as a fastify app factory: routes, auth, validation, rate limit, security
// headers, the OpenAPI document. It never listens by itself: the daemon calls listen(), tests call
// inject(). Every route declares `config.role` (public, metrics, viewer, admin; none = admin) and a
// schema with tags and a summary, from which /api/v1/openapi.json is generated.
//
// Order per request: rate limit (per client address) -> bearer token and role -> no unexpected body
// or query string -> schema validation -> handler -> security headers.

import swagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import type { Logger } from 'pino'
import { ApiError } from '../errors.js'
import { authenticate, bearerToken, mayCall } from './auth.js'
import { errorBody, installErrorHandlers, installJsonParser, installValidators, schemaErrorFormatter } from './errors.js'
import { EventLoopLag } from './event-loop-lag.js'
import { installSecurityHeaders } from './headers.js'
import type { ApiHost } from './host.js'
import { RateLimiter } from './rate-limit.js'
import { adminRoutes } from './routes/admin.js'
import { listRoutes } from './routes/lists.js'
import { categoryRoutes } from './routes/categories.js'
import { checkRoutes } from './routes/check.js'
import { docsRoutes } from './routes/docs.js'
import { healthRoutes } from './routes/health.js'
import { metricsRoutes } from './routes/metrics.js'
import { ruleRoutes } from './routes/rules.js'
import { ErrorSchema } from './schemas.js'

export interface ApiDeps {
  readonly host: ApiHost
  readonly log: Logger
  readonly now: () => number
  readonly version: string
  /** PEM contents; with them the app serves HTTPS. */
  readonly tls?: { readonly cert: Buffer, readonly key: Buffer }
  /** More route plugins (the block log's), registered under the same hooks. */
  readonly plugins?: ReadonlyArray<FastifyPluginAsync>
}

/** What route modules get. */
export interface RouteContext extends ApiDeps {
  readonly rateLimiter: RateLimiter
}

export async function buildApp (deps: ApiDeps): Promise<FastifyInstance> {
  const { host } = deps
  const api = host.config.api
  const log = deps.log.child({ mod: 'api' })
  const opts: FastifyServerOptions & { https?: unknown } = {
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: api.bodyLimit,
    schemaErrorFormatter: (errors, dataVar) => schemaErrorFormatter(errors as never, dataVar),
    return503OnClosing: true,
    forceCloseConnections: true,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 5_000,
    trustProxy: false,
    ...(deps.tls !== undefined && { https: { cert: deps.tls.cert, key: deps.tls.key, minVersion: 'TLSv1.2' } })
  }
  const app = Fastify(opts) as unknown as FastifyInstance
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
    if (!mayCall(token.role, needs)) return reply.code(403).send(errorBody(403, `this token's role may not do this (needs ${needs})`))
    req.principal = { name: token.name, role: token.role }
  })
  // Routes declare what they accept: a body or query string where none is expected is an error too.
  app.addHook('preValidation', async req => {
    const schema = req.routeOptions.schema
    if (req.body !== undefined && schema?.body === undefined) {
      throw new ApiError('EGRESSD_ERR_API_INVALID', 'body: this endpoint takes no request body', { field: 'body' })
    }
    const query = req.query as Record<string, unknown> | undefined
    const extra = query === undefined ? undefined : Object.keys(query)[0]
    if (extra !== undefined && schema?.querystring === undefined) {
      throw new ApiError('EGRESSD_ERR_API_INVALID', `querystring.${extra}: unknown parameter`, { field: `querystring.${extra}` })
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
      return { schema: s as typeof schema, url }
    }
  })

  const lag = new EventLoopLag(10)
  lag.start()
  app.addHook('onClose', async () => { lag.stop() })

  const ctx: RouteContext = { ...deps, rateLimiter }
  await app.register(async scope => {
    healthRoutes(scope, ctx)
    metricsRoutes(scope, ctx, lag)
    categoryRoutes(scope, ctx)
    ruleRoutes(scope, ctx)
    checkRoutes(scope, ctx)
    adminRoutes(scope, ctx)
    listRoutes(scope, ctx)
    docsRoutes(scope)
  })
  for (const plugin of deps.plugins ?? []) await app.register(plugin)
  return app
}
