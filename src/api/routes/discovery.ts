// GET /api/v1/discovery (viewer): the banned-app discovery report (store/discovery.ts) — per
// client, the categories it tried to reach by DNS and at the firewall, first and last seen,
// attempts per day, and whether the pattern looks like an installed app or a single click.
// Registered by the app (app.ts) beside the block routes, when its host has a block search:
//
//   app.register(discoveryRoutes, { ...ctx, reader: host.blockSearch })
//
// Parameters are validated as the block search's are: an unknown one, a bad time or client, or a
// category that names nothing (neither the policy's nor one the store holds events of) is a 400
// naming it. The report is computed in the reader's worker thread, never on the DNS event loop.

import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { checkFilterValues } from '../../store/block-filter.js'
import type { BlockReader } from '../../store/block-reader.js'
import { MAX_LIMIT } from '../../store/block-search.js'
import { parseDiscovery, PATTERN_RULE, PATTERNS } from '../../store/discovery.js'
import type { RouteContext } from '../context.js'
import { errors, StringEnum } from '../schemas.js'

export interface DiscoveryRoutesOptions extends Partial<Pick<RouteContext, 'filterValues'>> {
  readonly reader: BlockReader
}

const text = (description: string, extra: Record<string, unknown> = {}): ReturnType<typeof Type.String> =>
  Type.String({ minLength: 1, maxLength: 300, description, ...extra })

const Query = Type.Object({
  since: Type.Optional(text('Start (inclusive): ISO 8601, epoch ms, or relative to now (-24h, -7d); default -7d', { examples: ['-7d'] })),
  until: Type.Optional(text('End (exclusive): ISO 8601, epoch ms, relative, or now (default)')),
  client: Type.Optional(text('Client address (exact) or CIDR', { examples: ['10.20.0.0/16'] })),
  category: Type.Optional(text('Only this category', { examples: ['whatsapp'] })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: 'Clients at most (default 100)' }))
}, { additionalProperties: false })

const Day = Type.Object({
  day: Type.String({ description: 'UTC day, YYYY-MM-DD' }),
  dns: Type.Integer({ description: 'Blocked or monitored queries' }),
  firewall: Type.Integer({ description: 'Rejected packets' })
})

const Pattern = StringEnum(PATTERNS, { description: PATTERN_RULE })

const Category = Type.Object({
  category: Type.String(),
  pattern: Pattern,
  dnsAttempts: Type.Integer({ description: 'Blocked or monitored queries' }),
  firewallAttempts: Type.Integer({ description: 'Rejected packets (sum of the firewall events\' attempts)' }),
  firewallEvents: Type.Integer({ description: 'Firewall events (rate-limited per client and destination)' }),
  firstSeen: Type.String(),
  lastSeen: Type.String(),
  days: Type.Integer({ description: 'Distinct UTC days with attempts' }),
  windows: Type.Integer({ description: 'Distinct 10-minute windows with attempts' }),
  perDay: Type.Array(Day, { description: 'The days with attempts, oldest first' })
})

const Client = Type.Object({
  client: Type.String(),
  group: Type.String({ description: 'The group of its latest event' }),
  pattern: Pattern,
  dnsAttempts: Type.Integer(),
  firewallAttempts: Type.Integer(),
  firstSeen: Type.String(),
  lastSeen: Type.String(),
  categories: Type.Array(Category)
})

const Report = Type.Object({
  from: Type.String(),
  to: Type.String(),
  rule: Type.String({ description: 'How the pattern is decided' }),
  clients: Type.Array(Client, { description: 'Strongest pattern first (installed-app, unclear, single-click), then most attempts' })
})

export const discoveryRoutes: FastifyPluginAsync<DiscoveryRoutesOptions> = async (app, opts) => {
  const reader = opts.reader
  const stored = reader.stored === undefined ? undefined : reader.stored.bind(reader)
  app.get('/api/v1/discovery', {
    config: { role: 'viewer' },
    schema: {
      tags: ['blocks'],
      summary: 'Banned-app discovery: which clients tried which banned services, and how',
      description: 'Per client and category: blocked queries, rejected connection attempts at the firewall (clients that never asked DNS included), ' +
        'first and last seen, attempts per day, and a pattern: installed-app, single-click or unclear. ' + PATTERN_RULE,
      querystring: Query,
      response: { 200: Report, ...errors(400, 503) }
    }
  }, async req => {
    const q = req.query as { since?: string, until?: string, client?: string, category?: string, limit?: number }
    const r = parseDiscovery(q, reader.now())
    await checkFilterValues({ category: r.category }, opts.filterValues?.(), stored)
    return await reader.discovery(r)
  })
}
