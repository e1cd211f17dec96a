// GET /metrics: Prometheus text format (role metrics; viewer and admin tokens may scrape too).

import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { RouteContext } from '../app.js'
import type { EventLoopLag } from '../event-loop-lag.js'
import { renderMetrics } from '../metrics.js'
import { errors } from '../schemas.js'

export function metricsRoutes (app: FastifyInstance, ctx: RouteContext, lag: EventLoopLag): void {
  app.get('/metrics', {
    config: { role: 'metrics' },
    schema: {
      tags: ['metrics'],
      summary: 'Prometheus metrics (text exposition format 0.0.4)',
      description: 'Queries by protocol and result, blocks by category, cache, upstream latency and health, ' +
        'in-flight queries, TCP connections and their unsent answers, UDP kernel drops, list entries, block-log queue, memory and event-loop lag.',
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'text/plain; version=0.0.4' }), ...errors() }
    }
  }, async (_req, reply) => {
    return reply.type('text/plain; version=0.0.4; charset=utf-8')
      .send(renderMetrics({ host: ctx.host, version: ctx.version, lag, rateLimited: () => ctx.rateLimiter.refused, limits: ctx.limits }))
  })
}
