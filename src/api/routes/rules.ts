// GET /api/v1/rules (viewer), POST /api/v1/rules and DELETE /api/v1/rules/:id (admin): custom block
// and allow rules (domain, =exact, *.wildcard, /regex/, CIDR) with a comment and an optional expiry.
// Stored in the policy file, applied to DNS before the response is sent, audited; expired rules drop
// out on a timer. Rule ids are positive decimal integers, never given twice; an id in any other
// spelling (0x1, 1e3, 01, 20 digits) is a 400, never read as some other rule's id. A block rule the
// rule guard refuses (a public suffix, nearly every name, names that must keep working, too wide an
// address range: policy/guard.ts) is a 422 saying what it would block, unless sent with
// `force: true`; then its audit row keeps the guard's message as `forced`.

import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { InputError, RuleTooBroadError } from '../../errors.js'
import { loadRuleGuard } from '../../packs/collateral.js'
import type { RuleGuard } from '../../policy/guard.js'
import { parseList } from '../../policy/parsers.js'
import type { RuleView } from '../../store/custom-policy.js'
import type { RouteContext } from '../context.js'
import { actorOf, requireStore } from '../policy-changes.js'
import { errors, Iso, NoQuery, Nullable, StringEnum } from '../schemas.js'

const Rule = Type.Object({
  id: Type.Integer(),
  kind: StringEnum(['block', 'allow']),
  rule: Type.String({ description: 'As a plain list line (normalized)' }),
  type: StringEnum(['domain', 'exact', 'wildcard', 'regex', 'cidr']),
  comment: Type.String(),
  createdAt: Iso,
  createdBy: Type.String({ description: 'Token name' }),
  expiresAt: Nullable(Iso)
})

const NewRule = Type.Object({
  rule: Type.String({
    minLength: 1,
    maxLength: 1024,
    description: 'example.org (and every name under it), =example.org (only it), *.example.org (only under it), /^regex$/, 203.0.113.0/24 (answer addresses)',
    example: 'chat.example.org'
  }),
  kind: Type.Optional(StringEnum(['block', 'allow'], { default: 'block', description: 'Allow rules override every block rule' })),
  comment: Type.Optional(Type.String({ maxLength: 500, default: '' })),
  expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the rule drops out (RFC 3339)' })),
  ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 366 * 86400, description: 'Or: drop out this many seconds from now' })),
  force: Type.Optional(Type.Boolean({
    default: false,
    description: 'Add a block rule the rule guard refuses (a public suffix, nearly every name, names that must keep working, an address range wider than blocklists.guard.maxPrefix); the audit row records it as forced'
  }))
}, { additionalProperties: false })

/** A rule id as the path spells it: decimal, no sign, no leading zero, at most 16 digits (and <= 2^53 - 1, checked after). */
const RULE_ID_PATTERN = '^[1-9][0-9]{0,15}$'
const RULE_ID = new RegExp(RULE_ID_PATTERN)

/** The rule id of a path parameter, or an InputError (400) saying what an id is. */
function parseRuleId (text: unknown): number {
  const s = typeof text === 'string' ? text : String(text)
  const id = RULE_ID.test(s) ? Number(s) : NaN
  if (!Number.isSafeInteger(id)) {
    throw new InputError('params.id',
      `a rule id is a decimal number from 1 to ${Number.MAX_SAFE_INTEGER} without sign or leading zeros (got ${JSON.stringify(s.slice(0, 40))})`)
  }
  return id
}

const iso = (ms: number): string => new Date(ms).toISOString()
const show = (r: RuleView): Static<typeof Rule> => ({ ...r, createdAt: iso(r.createdAt), expiresAt: r.expiresAt === null ? null : iso(r.expiresAt) })

export const ruleRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  // The rule guard of the config in force, built at the first block rule after a start or a reload.
  let guarded: { readonly blocklists: object, readonly guard: RuleGuard } | undefined
  const guard = (): RuleGuard => {
    const blocklists = ctx.host.config.blocklists
    if (guarded?.blocklists !== blocklists) {
      const { guard, collateral } = loadRuleGuard(blocklists)
      if (collateral.problems.length > 0) ctx.log.warn({ problems: collateral.problems }, 'rule guard: part of the collateral corpus could not be read; it checks the rest')
      guarded = { blocklists, guard }
    }
    return guarded.guard
  }

  /** The guard's message for a block rule it refuses, or undefined (allow rules, fine rules, rules the store will refuse). */
  const tooBroad = (kind: 'block' | 'allow', text: string): string | undefined => {
    if (kind !== 'block') return undefined
    const parsed = parseList(text.trim(), 'plain')
    if (parsed.issues.length > 0 || parsed.rules.length !== 1) return undefined
    return guard().check(parsed.rules[0])?.message
  }

  app.get('/api/v1/rules', {
    config: { role: 'viewer' },
    schema: {
      tags: ['policy'],
      summary: 'Custom rules',
      querystring: NoQuery,
      response: { 200: Type.Object({ rules: Type.Array(Rule) }), ...errors(400, 503) }
    }
  }, async () => ({ rules: requireStore(ctx.host).listRules().map(show) }))

  app.post<{ Body: Static<typeof NewRule> }>('/api/v1/rules', {
    config: { role: 'admin' },
    schema: {
      tags: ['policy'],
      summary: 'Add a custom block or allow rule',
      description: 'Applied to DNS before the response is sent; survives restarts; written to the audit log.',
      body: NewRule,
      response: { 201: Type.Object({ rule: Rule }), ...errors(400, 409, 413, 415, 422, 503) }
    }
  }, async (req, reply) => {
    const store = requireStore(ctx.host)
    const b = req.body
    if (b.expiresAt !== undefined && b.ttlSeconds !== undefined) {
      throw new InputError('body.ttlSeconds', 'give either expiresAt or ttlSeconds, not both')
    }
    const expiresAt = b.expiresAt !== undefined ? Date.parse(b.expiresAt) : b.ttlSeconds !== undefined ? ctx.now() + b.ttlSeconds * 1000 : null
    const kind = b.kind ?? 'block'
    const refused = tooBroad(kind, b.rule)
    if (refused !== undefined && b.force !== true) throw new RuleTooBroadError('body.rule', `${refused}; send "force": true to add it anyway`)
    const rule = store.addRule({ kind, rule: b.rule, comment: b.comment ?? '', expiresAt, forced: refused }, actorOf(req))
    return reply.code(201).send({ rule: show(rule) })
  })

  app.delete<{ Params: { id: string } }>('/api/v1/rules/:id', {
    config: { role: 'admin' },
    // Before the schema: its pattern would refuse the same ids, with a message that does not say what an id is.
    preValidation: async req => { parseRuleId((req.params as { id?: unknown }).id) },
    schema: {
      tags: ['policy'],
      summary: 'Remove a custom rule',
      description: 'Applied to DNS before the response is sent; written to the audit log.',
      params: Type.Object({ id: Type.String({ pattern: RULE_ID_PATTERN, description: `A rule id: 1 to ${Number.MAX_SAFE_INTEGER}, decimal`, example: '17' }) }),
      response: { 200: Type.Object({ deleted: Rule }), ...errors(400, 404, 503) }
    }
  }, async req => ({ deleted: show(requireStore(ctx.host).removeRule(parseRuleId(req.params.id), actorOf(req))) }))
}
