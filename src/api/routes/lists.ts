// POST /api/v1/lists/update (admin): download the URL list sources now (all, or one), through the
// same checks as the scheduled updates; each source's outcome is returned and the call audited.

import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { EgressdError, NotFoundError, UnavailableError } from '../../errors.js'
import { redactUrls } from '../../lists/redact.js'
import type { RouteContext } from '../context.js'
import { actorOf } from '../policy-changes.js'
import { errors, Nullable, StringEnum } from '../schemas.js'

const UpdateBody = Type.Object({
  source: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'One source by name (default: every URL source)' })),
  force: Type.Optional(Type.Boolean({ description: 'Accept a version that shrank by more than the allowed share' }))
}, { additionalProperties: false })

const Result = Type.Object({
  source: Type.String(),
  outcome: StringEnum(['updated', 'unchanged', 'not-modified', 'rejected'] as const),
  entries: Nullable(Type.Integer({ description: 'Entries of the copy in use after this attempt' })),
  previousEntries: Nullable(Type.Integer()),
  sha256: Nullable(Type.String()),
  reason: Nullable(Type.String({ description: 'rejected: the short reason (http-status, timeout, signature, shrink, ...)' })),
  error: Nullable(Type.String({ description: 'rejected: what went wrong; the previous copy keeps serving' })),
  ms: Type.Number()
})

export const listRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  const { host } = ctx
  app.post<{ Body: Static<typeof UpdateBody> }>('/api/v1/lists/update', {
    config: { role: 'admin' },
    schema: {
      tags: ['lists'],
      summary: 'Update the URL list sources now',
      description: 'Fetches (conditionally), verifies and checks each source; a rejected version leaves the previous one serving. Answers when every attempt is done.',
      body: Type.Optional(UpdateBody),
      response: { 200: Type.Object({ results: Type.Array(Result) }), ...errors(400, 404) }
    }
  }, async req => {
    const lists = host.lists
    if (lists === undefined) throw new UnavailableError('list updates are not available')
    const body = req.body ?? {}
    let results
    try {
      results = await lists.updateNow({ source: body.source, force: body.force })
    } catch (err) {
      // The updater's unknown source is a usage error to the CLI; here it is a 404 naming the field.
      if (err instanceof EgressdError && err.code === 'EGRESSD_ERR_USAGE') throw new NotFoundError(`body.source: ${err.message}`, { cause: err })
      throw err
    }
    const view = results.map(r => ({
      source: r.source,
      outcome: r.outcome,
      entries: r.entries ?? null,
      previousEntries: r.previousEntries ?? null,
      sha256: r.sha256 ?? null,
      reason: r.reason ?? null,
      error: r.error === undefined ? null : redactUrls(r.error),
      ms: r.ms
    }))
    host.customPolicy?.record(actorOf(req), 'lists.update', body.source ?? '*', { force: body.force === true },
      view.map(v => ({ source: v.source, outcome: v.outcome, entries: v.entries, sha256: v.sha256, reason: v.reason })))
    return { results: view }
  })
}
