// GET /api/v1/check?name=&type=&client= (viewer): the Verdict the running policy gives a name for a
// client, exactly what `egressd query` prints (policy/check.ts builds both); for a blocked name also
// the learned addresses it left in the firewall's sets. With an IP address (`address=`, or `name=`
// holding one): how the firewall's table treats traffic to it — published ranges, opt-in shared
// ranges, learned sets (the running daemon's book), what the guard holds back — and whether
// firewall.sync loads the table.

import { isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { InputError } from '../../errors.js'
import type { CoverageSources } from '../../firewall/coverage.js'
import { checkAddress, checkName } from '../../policy/check.js'
import { normalizeName } from '../../policy/names.js'
import { qtypeNumber } from '../../qtypes.js'
import type { RouteContext } from '../context.js'
import { BLOCK_ACTIONS, errors, Nullable, StringEnum } from '../schemas.js'

const Query = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 300, example: 'web.telegram.org', description: 'A name; an IP address here is read as `address`' })),
  address: Type.Optional(Type.String({ minLength: 1, maxLength: 64, example: '149.154.167.51', description: 'An IP address: how the firewall treats traffic to it (instead of a name)' })),
  type: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9]{1,10}$', default: 'A' })),
  client: Type.Optional(Type.String({ minLength: 2, maxLength: 64, default: '127.0.0.1', description: 'Client IP address (decides the group)' }))
}, { additionalProperties: false })

const via = StringEnum(['query', 'probe'] as const)
const LearnedHit = Type.Object({
  address: Type.String(),
  category: Type.String(),
  set: Type.String({ description: 'The nft set, e.g. learned_whatsapp_v4' }),
  name: Type.String({ description: 'The name whose resolution put it there (the latest one)' }),
  via,
  firstSeen: Type.String({ description: 'ISO 8601' }),
  lastSeen: Type.String({ description: 'ISO 8601' }),
  expiresAt: Type.String({ description: 'ISO 8601' })
})
const HeldHit = Type.Object({
  address: Type.String(),
  category: Type.String(),
  name: Type.String(),
  via,
  reason: StringEnum(['allowed-name', 'never-block', 'shared-host'] as const),
  sharedWith: Type.Array(Type.String(), { description: 'Allowed names that share it' }),
  range: Nullable(Type.String({ description: 'never-block: the range and where it comes from' })),
  lastSeen: Type.String({ description: 'ISO 8601' }),
  expiresAt: Type.String({ description: 'ISO 8601' })
})
const Firewall = Type.Object({
  sync: Type.Boolean({ description: 'firewall.sync: egressd loads the table itself' }),
  table: Type.String(),
  learning: Type.Boolean({ description: 'learning.enabled' }),
  notes: Type.Array(Type.String(), { description: 'e.g. sync off: export the table with `egressd export nftables`' }),
  covered: Type.Optional(Type.Boolean({ description: 'Address checks: in a set the table rejects' })),
  ranges: Type.Optional(Type.Array(Type.Object({
    category: Type.String(),
    set: Type.String({ description: 'e.g. telegram_v4' }),
    range: Type.String(),
    list: Type.Optional(Type.String()),
    line: Type.Optional(Type.Integer()),
    rule: Type.Optional(Type.String())
  }), { description: 'Published ranges of the categories the firewall carries' })),
  shared: Type.Optional(Type.Array(Type.Object({
    category: Type.String(),
    set: Type.String({ description: 'e.g. whatsapp_shared_v4' }),
    range: Type.String(),
    cutsOff: Type.Array(Type.String(), { description: 'What else these ranges carry' })
  }), { description: 'Opt-in shared ranges turned on (firewall.sharedRanges)' })),
  learned: Type.Array(LearnedHit, { description: 'Learned sets holding it (address checks) or the name\'s learned addresses (name checks)' }),
  held: Type.Array(HeldHit, { description: 'Learned rows the collateral guard keeps out of the sets' }),
  guard: Type.Optional(Type.Object({
    reason: StringEnum(['allowed-name', 'never-block', 'shared-host'] as const),
    sharedWith: Type.Array(Type.String()),
    range: Nullable(Type.String())
  }, { description: 'Address checks: the guard would keep it out of any learned set now' })),
  allowRule: Type.Optional(Type.String({ description: 'Address checks: an allow rule range accepted before any reject' }))
})

const Check = Type.Object({
  name: Type.Optional(Type.String({ description: 'Name checks' })),
  address: Type.Optional(Type.String({ description: 'Address checks (canonical text)' })),
  family: Type.Optional(Type.Integer({ enum: [4, 6] })),
  type: Type.Optional(Type.String({ description: 'Name checks' })),
  client: Type.String(),
  group: Type.String(),
  verdict: Type.String({ description: "allow, block, or 'monitor (answered, logged as a would-be block)'; for an address: block when the firewall's table rejects traffic to it" }),
  action: Type.Optional(StringEnum(BLOCK_ACTIONS)),
  category: Type.Optional(Type.String()),
  list: Type.Optional(Type.String()),
  line: Type.Optional(Type.Integer()),
  rule: Type.Optional(Type.String()),
  matched: Type.Optional(StringEnum(['qname', 'cname', 'address'])),
  policyRef: Type.Optional(Type.String()),
  alsoAffects: Type.Optional(Type.Array(Type.String(), { description: 'What else the blocking category cuts off (shared infrastructure)' })),
  firewall: Type.Optional(Firewall)
})

export const checkRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  app.get<{ Querystring: Static<typeof Query> }>('/api/v1/check', {
    config: { role: 'viewer' },
    schema: {
      tags: ['policy'],
      summary: 'The Verdict for a name and client, or the firewall\'s coverage of an address, as `egressd query` prints it',
      querystring: Query,
      response: { 200: Check, ...errors(400) }
    }
  }, async req => {
    const { name, address, type = 'A', client = '127.0.0.1' } = req.query
    if (name !== undefined && address !== undefined) throw new InputError('querystring.address', 'give name or address, not both')
    if (name === undefined && address === undefined) throw new InputError('querystring.name', 'required')
    if (isIP(client) === 0) throw new InputError('querystring.client', `must be an IP address, got ${JSON.stringify(client)}`)
    const host = ctx.host
    const learning = host.learning
    const sources: CoverageSources = {
      config: host.config,
      build: host.policyBuild,
      learned: learning === undefined ? undefined : () => ({ active: learning.book.list(), held: learning.book.held() }),
      guard: learning === undefined ? undefined : a => learning.guard.check(a)
    }
    if (address !== undefined || isIP(name ?? '') !== 0) {
      const field = address !== undefined ? 'querystring.address' : 'querystring.name'
      const c = checkAddress(sources, address ?? name ?? '', client)
      if (c === undefined) throw new InputError(field, `must be an IP address, got ${JSON.stringify(address ?? name)}`)
      return c
    }
    const n = normalizeName(name ?? '')
    if ('error' in n) throw new InputError('querystring.name', n.error)
    const qtype = qtypeNumber(type)
    if (qtype === undefined) throw new InputError('querystring.type', `not a DNS record type: ${JSON.stringify(type)} (a mnemonic such as AAAA, or a number)`)
    return checkName(host.policy.engine, n.name, qtype, client, sources)
  })
}
