// GET /api/v1/check?name=&type=&client= (viewer): the Verdict the running policy gives a name for a
// client, exactly what `egressd query` prints (policy/check.ts builds both).

import { isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { InputError } from '../../errors.js'
import { checkName } from '../../policy/check.js'
import { normalizeName } from '../../policy/names.js'
import { qtypeNumber } from '../../qtypes.js'
import type { RouteContext } from '../context.js'
import { BLOCK_ACTIONS, errors, StringEnum } from '../schemas.js'

const Query = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 300, example: 'web.telegram.org' }),
  type: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9]{1,10}$', default: 'A' })),
  client: Type.Optional(Type.String({ minLength: 2, maxLength: 64, default: '127.0.0.1', description: 'Client IP address (decides the group)' }))
}, { additionalProperties: false })

const Check = Type.Object({
  name: Type.String(),
  type: Type.String(),
  client: Type.String(),
  group: Type.String(),
  verdict: Type.String({ description: "allow, block, or 'monitor (answered, logged as a would-be block)'" }),
  action: Type.Optional(StringEnum(BLOCK_ACTIONS)),
  category: Type.Optional(Type.String()),
  list: Type.Optional(Type.String()),
  line: Type.Optional(Type.Integer()),
  rule: Type.Optional(Type.String()),
  matched: Type.Optional(StringEnum(['qname', 'cname', 'address'])),
  policyRef: Type.Optional(Type.String()),
  alsoAffects: Type.Optional(Type.Array(Type.String(), { description: 'What else the blocking category cuts off (shared infrastructure)' }))
})

export const checkRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  app.get<{ Querystring: Static<typeof Query> }>('/api/v1/check', {
    config: { role: 'viewer' },
    schema: {
      tags: ['policy'],
      summary: 'The Verdict for a name and client, as `egressd query` prints it',
      querystring: Query,
      response: { 200: Check, ...errors(400) }
    }
  }, async req => {
    const { name, type = 'A', client = '127.0.0.1' } = req.query
    const n = normalizeName(name)
    if ('error' in n) throw new InputError('querystring.name', n.error)
    if (isIP(client) === 0) throw new InputError('querystring.client', `must be an IP address, got ${JSON.stringify(client)}`)
    const qtype = qtypeNumber(type)
    if (qtype === undefined) throw new InputError('querystring.type', `not a DNS record type: ${JSON.stringify(type)} (a mnemonic such as AAAA, or a number)`)
    return checkName(ctx.host.policy.engine, n.name, qtype, client)
  })
}
