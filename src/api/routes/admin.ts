// GET /api/v1/status (viewer): version, uptime, a config summary with secrets left out, lists and
// their state, upstream health, the firewall (full syncs, learned-set element batches, evidence
// reads) and the learned address sets. POST /api/v1/reload (admin): reload the config and lists
// as SIGHUP does, reporting what changed or why it was rejected. GET /api/v1/audit (admin): the audit log.
// POST /api/v1/policy/acknowledge (admin): an admin has seen what the policy file lost to damage;
// readiness recovers (the acknowledgement is audited).

import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { formatAddress } from '../../config/load.js'
import type { Config } from '../../config/types.js'
import type { ListenerFigures } from '../../dns/listener.js'
import { ConfigError, PolicyError } from '../../errors.js'
import { redactUrls } from '../../lists/redact.js'
import { sharedRangesSummary } from '../../policy/pack-extras.js'
import { BlockLogStatus, blockLogStatus } from '../block-log-status.js'
import type { RouteContext } from '../context.js'
import { errorBody } from '../errors.js'
import { actorOf, requireStore } from '../policy-changes.js'
import { notReady } from '../readiness.js'
import { errors, Iso, Nullable, StringEnum } from '../schemas.js'

const Any = Type.Unsafe<unknown>({ description: 'JSON (null when absent)', nullable: true })

/** What an operator may see of the config: no token hashes, no credentials in URLs. */
function configSummary (c: Config): Record<string, unknown> {
  return {
    source: c.source,
    dns: { listen: c.dns.listen.map(formatAddress), ednsUdpSize: c.dns.ednsUdpSize, upstreamTimeoutMs: c.dns.upstreamTimeoutMs, maxInflight: c.dns.maxInflight },
    upstreams: c.upstreams.map(u => redactUrls(u.url)),
    cache: c.cache,
    api: {
      listen: formatAddress(c.api.listen),
      tls: c.api.tls !== undefined,
      allowPlaintext: c.api.allowPlaintext,
      tokens: c.api.tokens.map(t => ({ name: t.name, role: t.role })),
      bodyLimit: c.api.bodyLimit,
      rateLimit: c.api.rateLimit
    },
    dataDir: c.dataDir,
    blocklists: {
      dir: c.blocklists.dir,
      action: c.blocklists.action,
      categories: c.blocklists.categories,
      sources: c.blocklists.sources.map(s => ({ name: s.name, format: s.format, category: s.category ?? s.name, ...(s.path !== undefined ? { path: s.path } : { url: redactUrls(s.url ?? '') }) })),
      rules: { block: c.blocklists.rules.block.length, allow: c.blocklists.rules.allow.length },
      groups: c.blocklists.groups.map(g => ({ name: g.name, clients: g.clients.length, exempt: g.exempt }))
    },
    firewall: { table: c.firewall.table, sync: c.firewall.sync, sharedRanges: c.firewall.sharedRanges },
    log: c.log
  }
}

const Status = Type.Object({
  version: Type.String(),
  node: Type.String(),
  startedAt: Iso,
  uptimeSeconds: Type.Number(),
  ready: Type.Boolean(),
  notReady: Type.Array(Type.String()),
  config: Type.Record(Type.String(), Any, { description: 'Config summary; token hashes and URL credentials left out' }),
  dns: Type.Object({
    listening: Type.Array(Type.String()),
    inflight: Type.Integer(),
    tcpConnections: Type.Integer({ description: 'Client TCP connections open' }),
    tcpWriteBlocked: Type.Integer({ description: 'Client TCP connections not read from because their answers do not drain' }),
    udpKernelDrops: Nullable(Type.Integer({ description: 'Queries the kernel dropped on the UDP listener sockets (receive buffer full); null when /proc cannot be read' }))
  }),
  policy: Type.Object({
    generation: Type.Integer(),
    loadedAt: Iso,
    names: Type.Integer(),
    addresses: Type.Integer(),
    warnings: Type.Integer(),
    customRules: Type.Integer(),
    store: Type.Object({
      path: Type.String({ description: 'The policy file (custom rules, category overrides, audit log)' }),
      available: Type.Boolean(),
      complete: Type.Boolean({ description: 'False when rows were lost to damage (until an admin acknowledges) or the file is unavailable' }),
      problems: Type.Array(Type.String(), { description: 'Why the policy is incomplete' })
    })
  }),
  lists: Type.Array(Type.Object({ category: Type.String(), list: Type.String(), rules: Type.Integer(), skipped: Type.Integer(), state: Type.String() })),
  sources: Type.Array(Type.Object({
    name: Type.String(),
    url: Type.String(),
    category: Nullable(Type.String()),
    state: Type.String({ description: 'current, failing (the last good copy serves), or no copy yet' }),
    entries: Nullable(Type.Integer()),
    fetchedAt: Nullable(Iso),
    lastSuccess: Nullable(Iso),
    nextAttempt: Nullable(Iso),
    lastError: Nullable(Type.String())
  }), { description: 'URL list sources (downloads)' }),
  upstreams: Type.Array(Type.Object({
    url: Type.String(), healthy: Type.Boolean(), queries: Type.Integer(), failures: Type.Integer(),
    consecutiveFailures: Type.Integer(), lastError: Nullable(Type.String()), latencyMs: Type.Number()
  })),
  cache: Type.Object({ size: Type.Integer(), hits: Type.Integer(), misses: Type.Integer(), evictions: Type.Integer() }),
  store: Type.Object({ available: Type.Boolean(), path: Nullable(Type.String()) }),
  blockLog: Nullable(BlockLogStatus),
  firewall: Type.Object({
    attempts: Type.Integer(),
    failures: Type.Integer(),
    lastError: Nullable(Type.String()),
    elements: Type.Object({
      batches: Type.Integer({ description: 'Learned-set element batches run (nft -f), between full syncs' }),
      failures: Type.Integer({ description: 'Batches nft refused (their changes wait for the next full sync)' }),
      lastError: Nullable(Type.String({ description: 'Why the last batch failed; null once one succeeds' })),
      lastOkAt: Nullable(Iso),
      pending: Type.Integer({ description: 'Element changes waiting for their batch' })
    }, { description: 'Learned-set elements changed incrementally (firewall.sync)' }),
    evidence: Type.Object({
      reads: Type.Integer({ description: 'Evidence set reads that succeeded' }),
      failures: Type.Integer({ description: 'Evidence set reads that failed' }),
      lastError: Nullable(Type.String({ description: 'The last read failure or elements not understood' })),
      lastOkAt: Nullable(Iso),
      hits: Type.Integer({ description: 'Firewall events reported (block-log events matched=firewall)' })
    }, { description: 'Rejected connections read back from the evidence sets (firewall.sync and firewall.evidence.enabled)' }),
    sharedRanges: Type.Array(Type.Object({
      category: Type.String(),
      cutsOff: Type.Array(Type.String(), { description: 'Allowed services these ranges also carry: cut off while they are on' }),
      ranges: Type.Integer()
    }), { description: 'Shared ranges turned on by firewall.sharedRanges (firewall only, never DNS matching)' })
  }),
  learning: Type.Object({
    enabled: Type.Boolean({ description: 'Learned address sets are on (learning.enabled, and the policy file is available)' }),
    active: Type.Integer({ description: 'Learned addresses in the sets now' }),
    held: Type.Integer({ description: 'Learned addresses the collateral guard holds back now' }),
    queueDepth: Type.Integer({ description: 'Blocked names waiting for a background resolution' }),
    dropped: Type.Integer({ description: 'Blocked names dropped because the queue was full (learning.queueMax)' }),
    lastStoreError: Nullable(Type.String({ description: 'Why the last write to the policy file failed (null: none)' }))
  }, { description: 'Learned address sets (GET /api/v1/learned lists them)' })
})

const Names = Type.Array(Type.String())

const Reloaded = Type.Object({
  status: StringEnum(['applied', 'unchanged'], { description: 'applied: something took effect; unchanged: nothing did (restart-only changes may still be pending)' }),
  config: Type.String({ description: 'Where the config was read from' }),
  applied: Type.Array(Type.String(), { description: 'What took effect' }),
  needsRestart: Type.Array(Type.String(), { description: 'What changed but takes effect only after a restart' }),
  tokens: Type.Object({ added: Names, removed: Names, changed: Names }, { description: 'API token names added, removed, or changed (role or secret)' }),
  generation: Type.Integer({ description: 'Policy generation now in force' })
})

const Rejected = Type.Object({
  error: Type.String(),
  message: Type.String(),
  statusCode: Type.Integer(),
  issues: Type.Array(Type.String(), { description: 'Every problem, as path: message (the running config stays)' })
})

const AuditQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  before: Type.Optional(Type.Integer({ minimum: 1, description: 'Only entries with an id below this (paging)' })),
  action: Type.Optional(Type.String({ maxLength: 64 }))
}, { additionalProperties: false })

const AuditEntry = Type.Object({
  id: Type.Integer(),
  time: Iso,
  actor: Type.String({ description: 'Token name ("egressd" for its own changes)' }),
  client: Type.String({ description: 'Client address' }),
  action: Type.String(),
  target: Type.String(),
  before: Any,
  after: Any
})

/** The policy file's state; a host without one (tests' stand-ins) reports it from customPolicy. */
function policyStoreOf (host: RouteContext['host']): { path: string, available: boolean, complete: boolean, problems: string[] } {
  const s = host.policyStore
  if (s !== undefined) return { path: s.path, available: s.available, complete: s.complete, problems: [...s.problems] }
  const problems = host.customPolicy === undefined ? ['the policy file is unavailable'] : [...host.customPolicy.losses]
  return { path: '', available: host.customPolicy !== undefined, complete: problems.length === 0, problems }
}

/** The DNS listener's socket figures for the status (zeros and null when the host has none). */
function dnsSocketStatus (f: ListenerFigures | undefined): { tcpConnections: number, tcpWriteBlocked: number, udpKernelDrops: number | null } {
  return { tcpConnections: f?.tcpConnections ?? 0, tcpWriteBlocked: f?.tcpWriteBlocked ?? 0, udpKernelDrops: f?.udpKernelDrops ?? null }
}

type Host = RouteContext['host']
type ToIso = (ms: number) => string

function elementStatus (host: Host, iso: ToIso): Static<typeof Status>['firewall']['elements'] {
  const e = host.firewallSync?.elements
  const s = e?.state
  return { batches: s?.batches ?? 0, failures: s?.failures ?? 0, lastError: s?.lastError ?? null, lastOkAt: s?.lastOkAt === undefined ? null : iso(s.lastOkAt), pending: e?.pending ?? 0 }
}

function evidenceStatus (host: Host, iso: ToIso): Static<typeof Status>['firewall']['evidence'] {
  const s = host.firewallSync?.evidence.state
  return { reads: s?.reads ?? 0, failures: s?.failures ?? 0, lastError: s?.lastError ?? null, lastOkAt: s?.lastOkAt === undefined ? null : iso(s.lastOkAt), hits: s?.hits ?? 0 }
}

function learningStatus (host: Host): Static<typeof Status>['learning'] {
  const f = host.learning?.figures()
  if (f === undefined) return { enabled: false, active: 0, held: 0, queueDepth: 0, dropped: 0, lastStoreError: null }
  return { enabled: true, active: f.book.active, held: f.book.held, queueDepth: f.learner.queueDepth, dropped: f.learner.dropped, lastStoreError: f.store.lastError ?? null }
}

export const adminRoutes: FastifyPluginAsync<RouteContext> = async (app, ctx) => {
  const { host } = ctx
  const iso = (ms: number): string => new Date(ms).toISOString()

  app.get('/api/v1/status', {
    config: { role: 'viewer' },
    schema: { tags: ['admin'], summary: 'Version, uptime, config summary, lists, upstream health', querystring: Type.Object({}, { additionalProperties: false }), response: { 200: Status, ...errors(400) } }
  }, async (): Promise<Static<typeof Status>> => {
    const now = ctx.now()
    const build = host.policyBuild
    const stats = host.policy.engine.stats()
    const failing = notReady(host)
    const bl = host.blockLogFigures()
    const cs = host.cache.stats
    return {
      version: ctx.version,
      node: process.version,
      startedAt: iso(host.startedAt),
      uptimeSeconds: Math.round((now - host.startedAt) / 100) / 10,
      ready: failing.length === 0,
      notReady: failing,
      config: configSummary(host.config),
      dns: {
        listening: host.addresses.map(a => `${a.protocol} ${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`),
        inflight: host.inflight,
        ...dnsSocketStatus(host.dnsSockets?.())
      },
      policy: {
        generation: host.policy.engine.generation,
        loadedAt: iso(host.policyLoadedAt),
        names: stats.names,
        addresses: stats.addresses,
        warnings: build.warnings.length,
        customRules: host.customPolicy?.rules.list().length ?? 0,
        store: policyStoreOf(host)
      },
      lists: build.lists.map(l => ({ ...l, state: l.skipped > 0 ? `loaded, ${l.skipped} line(s) skipped` : 'loaded' })),
      sources: (host.lists?.status() ?? []).map(x => {
        const when = (ms: number | undefined): string | null => ms === undefined ? null : iso(ms)
        const failing = x.lastError !== undefined && (x.lastSuccess === undefined || x.lastError.at > x.lastSuccess)
        return {
          name: x.name,
          url: redactUrls(x.url),
          category: x.category ?? null,
          state: x.fetchedAt === undefined ? 'no copy yet' : failing ? 'failing (the last good copy serves)' : 'current',
          entries: x.entries ?? null,
          fetchedAt: when(x.fetchedAt),
          lastSuccess: when(x.lastSuccess),
          nextAttempt: when(x.nextAttempt),
          // The updater's messages quote the URL as configured: show it redacted there too.
          lastError: x.lastError === undefined ? null : `${x.lastError.reason}: ${redactUrls(x.lastError.message)}`
        }
      }),
      // A DoH upstream's URL may carry a token; its errors quote the URL.
      upstreams: host.pool.health().map(h => ({ ...h, url: redactUrls(h.url), lastError: h.lastError === undefined ? null : redactUrls(h.lastError) })),
      cache: { size: host.cache.size, hits: cs.hits, misses: cs.misses, evictions: cs.evictions },
      store: { available: host.db !== undefined, path: host.db?.name ?? null },
      blockLog: bl === undefined ? null : blockLogStatus(bl, iso),
      firewall: {
        attempts: host.firewall.attempts,
        failures: host.firewall.failures,
        lastError: host.firewall.lastError ?? null,
        elements: elementStatus(host, iso),
        evidence: evidenceStatus(host, iso),
        sharedRanges: sharedRangesSummary(build.extras).map(s => ({ category: s.category, cutsOff: s.cutsOff, ranges: s.ranges }))
      },
      learning: learningStatus(host)
    }
  })

  app.post('/api/v1/reload', {
    config: { role: 'admin' },
    schema: {
      tags: ['admin'],
      summary: 'Reload the config file and lists (as SIGHUP)',
      description: 'Reports what took effect and what needs a restart; a config or list that does not load is rejected (422) with every problem, and the running config stays.',
      response: { 200: Reloaded, 422: Rejected, ...errors(400) }
    }
  }, async (req, reply) => {
    // The host counts, audits (as this token) and logs the reload, applied or rejected.
    try {
      const r = host.reloadConfig({ trigger: 'api', actor: actorOf(req) })
      const tokens = { added: [...r.tokens.added], removed: [...r.tokens.removed], changed: [...r.tokens.changed] }
      return { status: r.status, config: host.config.source, applied: [...r.applied], needsRestart: [...r.needsRestart], tokens, generation: r.generation }
    } catch (err) {
      if (!(err instanceof ConfigError) && !(err instanceof PolicyError)) throw err
      const issues = err instanceof ConfigError ? err.issues.map(i => `${i.path === '' ? '(file)' : i.path}: ${i.message}`) : [...err.problems]
      return reply.code(422).send({ ...errorBody(422, `reload rejected, the running config stays: ${issues.length} problem(s)`), issues })
    }
  })

  app.post('/api/v1/policy/acknowledge', {
    config: { role: 'admin' },
    schema: {
      tags: ['admin'],
      summary: 'Acknowledge what the policy file lost to damage',
      description: 'When custom rules, category overrides or audit rows could not be recovered from a damaged policy file, readiness fails ' +
        '(`policy`) and the status lists the losses, across restarts, until an admin has seen them: this clears them (re-add what is missing ' +
        'through the API) and writes the acknowledgement to the audit log.',
      body: Type.Optional(Type.Object({}, { additionalProperties: false })),
      response: { 200: Type.Object({ acknowledged: Type.Array(Type.String(), { description: 'The losses cleared (empty: there were none)' }) }), ...errors(400, 503) }
    }
  }, async req => ({ acknowledged: [...requireStore(host).acknowledgeLosses(actorOf(req))] }))

  app.get<{ Querystring: Static<typeof AuditQuery> }>('/api/v1/audit', {
    config: { role: 'admin' },
    schema: {
      tags: ['admin'],
      summary: 'The audit log of admin changes, newest first',
      querystring: AuditQuery,
      response: { 200: Type.Object({ entries: Type.Array(AuditEntry) }), ...errors(400, 503) }
    }
  }, async req => {
    const entries = requireStore(host).audit.list({ limit: req.query.limit ?? 100, beforeId: req.query.before, action: req.query.action })
    return { entries: entries.map(e => ({ id: e.id, time: iso(e.ts), actor: e.actor, client: e.client, action: e.action, target: e.target, before: e.before, after: e.after })) }
  })
}
