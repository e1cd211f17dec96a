// GET /api/v1/learned (viewer): the learned address sets — per category, the addresses the
// firewall's learned sets hold now (with the name that produced each, first and last seen, expiry)
// and those the collateral guard holds back, with the allowed names that share each address or the
// never-block range it falls in; and the learner's counters (queue, drops, resolutions).

import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { InputError } from '../../errors.js'
import type { HeldAddress, LearnedAddress } from '../../learn/types.js'
import type { RouteContext } from '../context.js'
import { errors, Nullable, StringEnum } from '../schemas.js'

const Query = Type.Object({
  category: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only this category', examples: ['whatsapp'] }))
}, { additionalProperties: false })

const learnedProps = {
  address: Type.String(),
  family: Type.Integer({ enum: [4, 6] }),
  category: Type.String(),
  name: Type.String({ description: 'The name whose resolution produced it (the latest one)' }),
  via: StringEnum(['query', 'probe'] as const, { description: 'query: a blocked client query resolved in the background; probe: a pack probe name' }),
  firstSeen: Type.String({ description: 'ISO 8601' }),
  lastSeen: Type.String({ description: 'ISO 8601' }),
  expiresAt: Type.String({ description: 'ISO 8601' })
}
const Learned = Type.Object(learnedProps)
const Held = Type.Object({
  ...learnedProps,
  reason: StringEnum(['allowed-name', 'never-block', 'shared-host'] as const, { description: 'allowed-name: an allowed name resolved to it; never-block: in a never-block range; shared-host: reached through a shared front end (a CDN, the parent company\'s edge)' }),
  sharedWith: Type.Array(Type.String(), { description: 'Allowed names that resolved to it within learning.guardWindowSeconds' }),
  range: Nullable(Type.String({ description: 'never-block: the range and where it comes from' }))
})
const Response = Type.Object({
  enabled: Type.Boolean({ description: 'learning.enabled (and the policy file available)' }),
  learned: Type.Array(Learned),
  held: Type.Array(Held),
  counters: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Null()]), { description: 'The learner\'s, the book\'s and the guard\'s counters' })
})

const iso = (ms: number): string => new Date(ms).toISOString()
const learnedOut = (a: LearnedAddress): Static<typeof Learned> => ({
  address: a.address, family: a.family, category: a.category, name: a.name, via: a.via, firstSeen: iso(a.firstSeen), lastSeen: iso(a.lastSeen), expiresAt: iso(a.expiresAt)
})
const heldOut = (h: HeldAddress): Static<typeof Held> => ({ ...learnedOut(h), reason: h.reason, sharedWith: [...h.sharedWith], range: h.range ?? null })

export const learnedRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  const { host } = ctx
  app.get<{ Querystring: Static<typeof Query> }>('/api/v1/learned', {
    config: { role: 'viewer' },
    schema: {
      tags: ['firewall'],
      summary: 'Learned address sets and what the guard holds back',
      querystring: Query,
      response: { 200: Response, ...errors(400) }
    }
  }, async req => {
    const category = req.query.category
    const known = host.policy.engine.categories.map(c => c.name)
    if (category !== undefined && !known.includes(category)) throw new InputError('querystring.category', `no category "${category}"; valid: ${known.join(', ')}`)
    const learning = host.learning
    if (learning === undefined) return { enabled: false, learned: [], held: [], counters: {} }
    const f = learning.figures()
    const counters = Object.fromEntries(Object.entries({ ...f.learner, ...f.book, allowedAddresses: f.guard.allowedAddresses }).map(([k, v]) => [k, v ?? null]))
    return { enabled: true, learned: learning.book.list(category).map(learnedOut), held: learning.book.held(category).map(heldOut), counters }
  })
}
