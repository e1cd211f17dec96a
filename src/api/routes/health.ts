// GET /healthz (the process answers) and GET /readyz (ready to serve: DNS listeners bound, lists
// loaded, the policy file complete, store writable, at least one upstream healthy). No token; a failing readiness names only
// the failing parts, no details.

import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import type { RouteContext } from '../context.js'
import { notReady, READY_PARTS } from '../readiness.js'
import { StringEnum } from '../schemas.js'

const Ready = Type.Object({
  status: StringEnum(['ready', 'not ready']),
  failing: Type.Optional(Type.Array(StringEnum(READY_PARTS)))
})

export const healthRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  app.get('/healthz', {
    config: { role: 'public' },
    schema: {
      tags: ['health'],
      summary: 'Liveness: the process is up and answering',
      response: { 200: Type.Object({ status: StringEnum(['ok']) }) }
    }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    config: { role: 'public' },
    schema: {
      tags: ['health'],
      summary: 'Readiness: listeners bound, lists loaded, store writable, an upstream healthy',
      description: 'Answers 503 with the names of the failing parts when not ready.',
      response: { 200: Ready, 503: Ready }
    }
  }, async (_req, reply) => {
    const failing = notReady(ctx.host)
    if (failing.length > 0) return reply.code(503).send({ status: 'not ready', failing })
    return { status: 'ready' as const }
  })
}
