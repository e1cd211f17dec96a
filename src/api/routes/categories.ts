// GET /api/v1/categories (viewer): every category with its state per client group and the run-time
// overrides. PATCH /api/v1/categories/:name (admin): enable/disable a category and/or set its block
// action, for every group or one; stored, applied at once, audited.

import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import type { CategoryOverride } from '../../config/types.js'
import { InputError, NotFoundError } from '../../errors.js'
import type { RouteContext } from '../context.js'
import type { ApiHost } from '../host.js'
import { actorOf, requireStore } from '../policy-changes.js'
import { BLOCK_ACTIONS, errors, NoQuery, StringEnum } from '../schemas.js'

const Override = Type.Object({
  enabled: Type.Optional(Type.Boolean()),
  action: Type.Optional(StringEnum(BLOCK_ACTIONS))
})

const Category = Type.Object({
  name: Type.String(),
  title: Type.String(),
  policyRef: Type.String(),
  enabled: Type.Boolean({ description: 'For groups that do not say otherwise' }),
  action: StringEnum(BLOCK_ACTIONS),
  alsoAffects: Type.Array(Type.String(), { description: 'What else stops working while the category is on (shared infrastructure)' }),
  entries: Type.Integer({ description: 'Rules loaded into this category' }),
  groups: Type.Array(Type.Object({ group: Type.String(), enabled: Type.Boolean(), action: StringEnum(BLOCK_ACTIONS) })),
  overrides: Type.Record(Type.String(), Override, { description: "Run-time overrides by group ('*' = every group)" })
})

const Patch = Type.Object({
  group: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "A client group name, 'default', or '*' (every group; the default)" })),
  enabled: Type.Optional(Type.Boolean()),
  action: Type.Optional(StringEnum(BLOCK_ACTIONS))
}, { additionalProperties: false, minProperties: 1 })

function categoryView (host: ApiHost, name: string): Static<typeof Category> | undefined {
  const engine = host.policy.engine
  const i = engine.categories.findIndex(c => c.name === name)
  if (i < 0) return undefined
  const c = engine.categories[i]
  const overrides: Record<string, CategoryOverride> = {}
  for (const [group, o] of Object.entries(host.customPolicy?.categories.all() ?? {})) if (o[name] !== undefined) overrides[group] = o[name]
  return {
    name: c.name,
    title: c.title,
    policyRef: c.policyRef,
    enabled: c.enabled,
    action: c.action,
    alsoAffects: [...c.alsoAffects],
    entries: host.policyBuild.lists.filter(l => l.category === name).reduce((n, l) => n + l.rules, 0),
    groups: engine.groups.map(g => ({ group: g.name, enabled: g.enabled[i] === 1, action: g.actions[i] })),
    overrides
  }
}

export const categoryRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  const { host } = ctx
  app.get('/api/v1/categories', {
    config: { role: 'viewer' },
    schema: {
      tags: ['policy'],
      summary: 'Categories and their state per client group',
      querystring: NoQuery,
      response: { 200: Type.Object({ categories: Type.Array(Category) }), ...errors(400) }
    }
  }, async () => ({
    categories: host.policy.engine.categories.map(c => categoryView(host, c.name)).filter(c => c !== undefined)
  }))

  app.patch<{ Params: { name: string }, Body: Static<typeof Patch> }>('/api/v1/categories/:name', {
    config: { role: 'admin' },
    schema: {
      tags: ['policy'],
      summary: 'Enable or disable a category, or set its block action, for every group or one',
      description: 'Stored and applied to DNS at once; survives restarts; written to the audit log.',
      params: Type.Object({ name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' }) }),
      body: Patch,
      response: { 200: Type.Object({ category: Category, before: Override, after: Override }), ...errors(400, 404, 409, 503) }
    }
  }, async req => {
    const store = requireStore(host)
    const { name } = req.params
    const { group = '*', enabled, action } = req.body
    if (enabled === undefined && action === undefined) {
      throw new InputError('body', 'give "enabled" and/or "action"')
    }
    const engine = host.policy.engine
    if (!engine.categories.some(c => c.name === name)) throw new NotFoundError(`no category "${name}"`)
    if (name.startsWith('custom:')) throw new InputError('params.name', `"${name}" belongs to its group and cannot be changed`)
    if (group !== '*' && !engine.groups.some(g => g.name === group)) {
      throw new InputError('body.group', `no client group "${group}" (known: *, ${engine.groups.map(g => g.name).join(', ')})`)
    }
    const { before, after } = store.setCategory(group, name, {
      ...(enabled !== undefined && { enabled }),
      ...(action !== undefined && { action })
    }, actorOf(req))
    return { category: categoryView(host, name), before, after }
  })
}
