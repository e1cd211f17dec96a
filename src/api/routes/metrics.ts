// GET /metrics: Prometheus text format (role metrics; viewer and admin tokens may scrape too).
// The plugin owns its registry: made when the app registers it, dropped when the app closes.

import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import type { RouteContext } from '../context.js'
import { createMetricsExporter } from '../metrics.js'
import { errors } from '../schemas.js'

export const metricsRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  const exporter = createMetricsExporter({ host: ctx.host, version: ctx.version, rateLimited: () => ctx.rateLimiter.refused, limits: ctx.limits, now: ctx.now })
  app.addHook('onClose', async () => { exporter.close() })

  app.get('/metrics', {
    config: { role: 'metrics' },
    schema: {
      tags: ['metrics'],
      summary: 'Prometheus metrics (text exposition format 0.0.4)',
      description: 'Queries by protocol and result, answer time to clients by result, blocks by category, cache, upstream latency and health, ' +
        'in-flight queries, TCP connections and their unsent answers, UDP kernel drops, list entries and URL source freshness, config reloads, ' +
        'block-log queue, drops and rows written, store file sizes, firewall sync, and prom-client\'s process and Node.js metrics ' +
        '(CPU, memory, file descriptors, GC, event-loop lag).',
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'text/plain; version=0.0.4' }), ...errors() }
    }
  }, async (_req, reply) => {
    return reply.type(exporter.contentType).send(await exporter.render())
  })
}
