// The block log's query API (viewer role): search with keyset pagination and JSON / NDJSON / CSV
// export, statistics, the bypass report, and a live tail as Server-Sent Events. Registered by the
// app (app.ts) when its host has a block search, with the app's RouteContext and the reader:
//
//   app.register(blockRoutes, { ...ctx, reader: host.blockSearch })
//
// Every query parameter is validated (unknown ones included) and a bad one is a QueryError, which
// the app's error handler answers 400 with a message and a `parameter` that name it. A category, group or action filter must name something that exists (else
// 400 listing the valid values, so a typo does not read as "no activity"): an action one of
// FILTER_ACTIONS; with `filterValues` (the app passes the policy in force), a category or group
// one of the policy's, or, for searches, exports, stats and bypass, one the store holds events
// of (a category since removed stays searchable; see storedFilterValue). The live tail takes only
// the policy's: an event of a removed category can no longer come. Queries run in the reader's worker thread, never on the DNS event loop;
// NDJSON and CSV exports are streamed page by page (2,000 rows a page), never built in memory.
//
// Live tails are bounded (api.liveTail): at most maxStreamsPerClient per client address (429) and
// maxStreams in all (503); a stream whose client reads slower than events come, so that more
// than maxQueuedBytesPerStream of output waits unsent, or whose output has not drained for
// stuckTimeoutMs, is closed with a last `event: closed` naming the reason, and its connection is
// destroyed CLOSE_GRACE_MS later if the client does not read that either. So a stream holds at
// most about maxQueuedBytesPerStream + FLUSH_AT of memory, however many events come.

import { Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { LiveTailConfig } from '../../config/types.js'
import { QueryError, UnavailableError } from '../../errors.js'
import { qtypeName } from '../../qtypes.js'
import { MATCH_NAMES, type BlockEvent, type BlockRow } from '../../store/block-event.js'
import { checkFilterValues, eventMatches, FILTER_ACTIONS, parseFilter, parseTime, type BlockFilter, type FilterParams } from '../../store/block-filter.js'
import type { BlockReader } from '../../store/block-reader.js'
import { MAX_LIMIT, type Bucket } from '../../store/block-search.js'
import { CSV_HEADER, csvLine } from '../../store/csv.js'
import type { RouteContext } from '../context.js'
import { errorBody } from '../errors.js'
import { ClientSlots, newApiLimitCounters } from '../rate-limit.js'

/**
 * The reader, and from the app's RouteContext: `limits` (where refused and closed streams are
 * counted, for /metrics), `liveTail` (the limits in force, read per stream; default
 * LIVE_TAIL_DEFAULTS) and `filterValues` (the categories and client groups category= and group=
 * must name: the policy in force; none: not checked). Optional, for the routes on a bare fastify.
 */
export interface BlockRoutesOptions extends Partial<Pick<RouteContext, 'limits' | 'liveTail' | 'filterValues'>> {
  readonly reader: BlockReader
  /** SSE keep-alive comment interval (default 15 s). */
  readonly heartbeatMs?: number
}

const EXPORT_PAGE = 2000
/** api.liveTail's defaults, for an app that does not pass the config's. */
const LIVE_TAIL_DEFAULTS: LiveTailConfig = { maxStreams: 64, maxStreamsPerClient: 4, maxQueuedBytesPerStream: 262144, stuckTimeoutMs: 30_000 }
/** After the last event of a stream closed for not keeping up, how long its client has to read it. */
const CLOSE_GRACE_MS = 5000
/** A live tail's events of one event-loop turn are written at the latest when they reach this size. */
const FLUSH_AT = 16384
/** Seconds a refused live tail is told to wait (Retry-After). */
const STREAM_RETRY_AFTER_S = 10

const str = (description: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'string', minLength: 1, maxLength: 300, description, ...extra })

const FILTER_PROPS = {
  from: str('Start (inclusive): ISO 8601, epoch ms, or relative to now (-24h, -7d, -30m)', { examples: ['-24h'] }),
  to: str('End (exclusive): ISO 8601, epoch ms, relative, or now'),
  client: str('Client address (exact) or CIDR', { examples: ['10.20.0.0/16'] }),
  group: str('Client group name'),
  domain: str('Query name, exact; with suffix=true also every name below it', { examples: ['telegram.org'] }),
  suffix: { type: 'boolean', description: 'Match the domain and every name below it' },
  category: str('Category', { examples: ['telegram'] }),
  action: str(`Action taken: ${FILTER_ACTIONS.join(', ')}`),
  qtype: str('Query type: mnemonic (AAAA) or number (28)'),
  matched: str(`What matched: ${MATCH_NAMES.join(', ')} (firewall: connection attempts the firewall rejected)`)
} as const

const ROW_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    time: { type: 'string' },
    ts: { type: 'integer' },
    client: { type: 'string' },
    group: { type: 'string' },
    qname: { type: 'string' },
    qtype: { type: 'string' },
    matched: { type: 'string' },
    value: { type: 'string' },
    category: { type: 'string' },
    action: { type: 'string' },
    list: { type: ['string', 'null'] },
    line: { type: ['integer', 'null'] },
    rule: { type: ['string', 'null'] },
    listHash: { type: ['string', 'null'] },
    rcode: { type: ['integer', 'null'] },
    latencyMs: { type: ['integer', 'null'] },
    port: { type: ['integer', 'null'], description: 'Firewall events: destination port (0 for protocols without ports)' },
    proto: { type: ['string', 'null'], description: "Firewall events: protocol ('tcp', 'udp', ...)" },
    attempts: { type: ['integer', 'null'], description: 'Firewall events: rejected packets the event stands for' }
  }
} as const

const ERROR_SCHEMA = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' }, parameter: { type: 'string' } }
} as const

const BLOCKS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...FILTER_PROPS,
    limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, description: 'Rows per page (json: default 100); ndjson/csv: cap on the export (default: everything)' },
    cursor: str('From the previous page\'s next (json) or X-Next-Cursor header (ndjson/csv)', { maxLength: 200 }),
    order: { type: 'string', enum: ['desc', 'asc'], description: 'desc (default): newest first' },
    format: { type: 'string', enum: ['json', 'ndjson', 'csv'], description: 'json (default), ndjson or csv (streamed)' }
  }
} as const

const STATS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: FILTER_PROPS.from,
    to: FILTER_PROPS.to,
    category: FILTER_PROPS.category,
    client: FILTER_PROPS.client,
    group: FILTER_PROPS.group,
    top: { type: 'integer', minimum: 1, maximum: 1000, description: 'How many domains and clients (default 10)' },
    bucket: { type: 'string', enum: ['1m', '1h', '1d'], description: 'Time series bucket (default by range)' }
  }
} as const

const BYPASS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: FILTER_PROPS.from,
    to: FILTER_PROPS.to,
    category: str('Category counted as bypass attempts (default doh-bypass)'),
    limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, description: 'Clients (default 100)' }
  }
} as const

const STREAM_QUERY = { type: 'object', additionalProperties: false, properties: { ...FILTER_PROPS } } as const

type Query = Record<string, string | number | boolean | undefined>

/** `from`/`to` of a stats or bypass request (default `defaultFrom` to now); from must be before to. */
function timeRange (q: Query, now: number, defaultFrom: string): { from: number, to: number } {
  const from = parseTime((q.from as string | undefined) ?? defaultFrom, now, 'from')
  const to = parseTime((q.to as string | undefined) ?? 'now', now, 'to')
  if (from >= to) throw new QueryError('from', 'must be before to')
  return { from, to }
}

/** Rejects a parameter the route does not know, naming it (whatever the app's validator does with extras). */
function rejectUnknown (allowed: readonly string[]) {
  const known = new Set(allowed)
  return async (req: FastifyRequest): Promise<void> => {
    for (const k of Object.keys(req.query as object)) {
      if (!known.has(k)) throw new QueryError(k, 'unknown parameter')
    }
  }
}

function filterParams (q: Query): FilterParams {
  const p: Record<string, unknown> = {}
  for (const k of Object.keys(FILTER_PROPS)) if (q[k] !== undefined) p[k] = k === 'suffix' ? q[k] : String(q[k])
  return p
}

/** A pushed event in the row shape (without a database id). */
function liveRow (e: BlockEvent): Omit<BlockRow, 'id'> {
  return {
    time: new Date(e.ts).toISOString(),
    ts: e.ts,
    client: e.client,
    group: e.group,
    qname: e.qname,
    qtype: qtypeName(e.qtype),
    matched: e.matched,
    value: e.value,
    category: e.category,
    action: e.action,
    list: e.list ?? null,
    line: e.line ?? null,
    rule: e.rule ?? null,
    listHash: e.listHash ?? null,
    rcode: e.rcode ?? null,
    latencyMs: e.latencyMs ?? null,
    port: e.port ?? null,
    proto: e.proto ?? null,
    attempts: e.attempts ?? null
  }
}

export const blockRoutes: FastifyPluginAsync<BlockRoutesOptions> = async (app, opts) => {
  const reader = opts.reader
  const heartbeatMs = opts.heartbeatMs ?? 15_000
  const liveTail = opts.liveTail ?? (() => LIVE_TAIL_DEFAULTS)
  const counters = opts.limits ?? newApiLimitCounters()
  const stored = reader.stored === undefined ? undefined : reader.stored.bind(reader)
  /** A QueryError (400) for a category or group that names nothing, listing the valid ones. */
  const checkValues = async (f: Pick<BlockFilter, 'category' | 'group'>, withStored = true): Promise<void> =>
    await checkFilterValues(f, opts.filterValues?.(), withStored ? stored : undefined)
  // Live tails open, per client address and in all.
  const streams = new ClientSlots()
  // Live tails end when the app closes (they would hold close() forever otherwise).
  const tails = new Set<() => void>()
  app.addHook('onClose', async () => { for (const end of [...tails]) end() })

  app.get('/api/v1/blocks', {
    config: { role: 'viewer' },
    preValidation: rejectUnknown(Object.keys(BLOCKS_QUERY.properties)),
    schema: {
      tags: ['blocks'],
      summary: 'Search the block log',
      description: 'Events newest first (order=asc: oldest first), filtered; keyset pagination with an opaque cursor. format=ndjson|csv streams the whole match (or `limit` rows) page by page.',
      querystring: BLOCKS_QUERY,
      response: {
        200: { type: 'object', properties: { rows: { type: 'array', items: ROW_SCHEMA }, next: { type: 'string' } }, required: ['rows'] },
        400: ERROR_SCHEMA
      }
    }
  }, async (req, reply) => {
    const q = req.query as Query
    const filter = parseFilter(filterParams(q), reader.now())
    await checkValues(filter)
    const order = q.order as 'asc' | 'desc' | undefined
    const format = (q.format as string | undefined) ?? 'json'
    const cursor = q.cursor as string | undefined
    if (format === 'json') {
      return await reader.search(filter, { limit: (q.limit as number | undefined) ?? 100, cursor, order })
    }
    // Check the first page before the status line goes out: a bad cursor is still a 400.
    const cap = (q.limit as number | undefined) ?? Number.MAX_SAFE_INTEGER
    const first = await reader.search(filter, { limit: Math.min(EXPORT_PAGE, cap), cursor, order })
    const csv = format === 'csv'
    async function * lines (): AsyncGenerator<string> {
      if (csv) yield CSV_HEADER
      let page = first
      let sent = 0
      for (;;) {
        let chunk = ''
        for (const r of page.rows) chunk += csv ? csvLine(r) : JSON.stringify(r) + '\n'
        if (chunk !== '') yield chunk
        sent += page.rows.length
        if (page.next === undefined || sent >= cap) return
        page = await reader.search(filter, { limit: Math.min(EXPORT_PAGE, cap - sent), cursor: page.next, order })
      }
    }
    // With a limit, the cursor to continue from is known only at the end: when the first page
    // already covers the limit, say it in a header.
    if (first.next !== undefined && first.rows.length >= cap) reply.header('x-next-cursor', first.next)
    reply.header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
    if (csv) reply.header('content-disposition', 'attachment; filename="egressd-blocks.csv"')
    return reply.send(Readable.from(lines()))
  })

  app.get('/api/v1/stats', {
    config: { role: 'viewer' },
    preValidation: rejectUnknown(Object.keys(STATS_QUERY.properties)),
    schema: {
      tags: ['blocks'],
      summary: 'Block statistics for a range',
      description: 'Counts per category and action, top domains, top clients, and a time series (default range -24h to now), optionally for one category, client (address or CIDR) or client group. Block and monitor events only.',
      querystring: STATS_QUERY,
      response: {
        200: {
          type: 'object',
          properties: {
            from: { type: 'string' },
            to: { type: 'string' },
            total: { type: 'integer' },
            categories: { type: 'array', items: { type: 'object', properties: { category: { type: 'string' }, action: { type: 'string' }, count: { type: 'integer' } } } },
            topDomains: { type: 'array', items: { type: 'object', properties: { qname: { type: 'string' }, count: { type: 'integer' } } } },
            topClients: { type: 'array', items: { type: 'object', properties: { client: { type: 'string' }, count: { type: 'integer' } } } },
            series: {
              type: 'object',
              properties: {
                bucket: { type: 'string' },
                points: { type: 'array', items: { type: 'object', properties: { time: { type: 'string' }, count: { type: 'integer' } } } }
              }
            }
          }
        },
        400: ERROR_SCHEMA
      }
    }
  }, async req => {
    const q = req.query as Query
    const { from, to } = timeRange(q, reader.now(), '-24h')
    const f = parseFilter({ client: q.client as string | undefined, group: q.group as string | undefined, category: q.category as string | undefined }, reader.now())
    await checkValues(f)
    return await reader.stats({ from, to, category: f.category, client: f.client, group: f.group, top: q.top as number | undefined, bucket: q.bucket as Bucket | undefined })
  })

  app.get('/api/v1/bypass', {
    config: { role: 'viewer' },
    preValidation: rejectUnknown(Object.keys(BYPASS_QUERY.properties)),
    schema: {
      tags: ['blocks'],
      summary: 'Clients that look like they walk around the filter',
      description: 'Hits on the doh-bypass category (public DoH/DoT resolvers, browser and OS canary names) ranked by client, with first and last seen (default range -7d to now).',
      querystring: BYPASS_QUERY,
      response: {
        200: {
          type: 'object',
          properties: {
            clients: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  client: { type: 'string' }, hits: { type: 'integer' }, names: { type: 'integer' }, firstSeen: { type: 'string' }, lastSeen: { type: 'string' }, topName: { type: 'string' }
                }
              }
            }
          }
        },
        400: ERROR_SCHEMA
      }
    }
  }, async req => {
    const q = req.query as Query
    const { from, to } = timeRange(q, reader.now(), '-7d')
    await checkValues({ category: q.category as string | undefined })
    return { clients: await reader.bypass({ from, to, category: q.category as string | undefined, limit: q.limit as number | undefined }) }
  })

  app.get('/api/v1/blocks/stream', {
    config: { role: 'viewer' },
    preValidation: rejectUnknown(Object.keys(STREAM_QUERY.properties)),
    schema: {
      tags: ['blocks'],
      summary: 'Live tail of the block log (Server-Sent Events)',
      description: 'Each matching event as `event: block` with the row as JSON data (without id). Same filters as /api/v1/blocks. ' +
        'At most api.liveTail.maxStreamsPerClient streams per client address (429) and maxStreams in all (503). ' +
        'A client that reads slower than events come (more than maxQueuedBytesPerStream unsent, or nothing drained for stuckTimeoutMs) is disconnected after ' +
        'a last `event: closed` with data `{"reason":"slow consumer"}` (or `"stuck"`); reconnect and fill the gap with /api/v1/blocks.',
      querystring: STREAM_QUERY,
      response: { 400: ERROR_SCHEMA, 429: ERROR_SCHEMA, 503: ERROR_SCHEMA }
    }
  }, async (req, reply) => {
    const q = req.query as Query
    const filter = parseFilter(filterParams(q), reader.now())
    await checkValues(filter, false)
    const live = reader.live
    if (live === undefined) throw new UnavailableError('the block log is not being written (read-only store)')
    const limits = liveTail()
    const client = req.ip
    const refused = streams.acquire(client, limits.maxStreamsPerClient, limits.maxStreams)
    if (refused !== undefined) {
      counters.streamsRefused[refused]++
      reply.header('retry-after', String(STREAM_RETRY_AFTER_S))
      return refused === 'client'
        ? reply.code(429).send(errorBody(429, `too many live tails from ${client}: at most ${limits.maxStreamsPerClient} at once (api.liveTail.maxStreamsPerClient)`))
        : reply.code(503).send(errorBody(503, `too many live tails open: at most ${limits.maxStreams} at once (api.liveTail.maxStreams)`))
    }
    counters.streamsOpen = streams.size
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    let open = true
    let stuck: NodeJS.Timeout | undefined
    // Events of one event-loop turn are gathered and written as one chunk after it (or sooner,
    // past FLUSH_AT). The bound applies to what the kernel did not take: res.write corks the
    // socket until the next tick, so the write is pushed out at once, and what is left queued
    // afterwards is the client's backlog. Output that stops draining arms the stuck timer.
    let pending = ''
    let scheduled = false
    const flush = (): void => {
      scheduled = false
      if (!open || pending === '') return
      const ok = res.write(pending)
      pending = ''
      res.socket?.uncork()
      if (res.writableLength > limits.maxQueuedBytesPerStream) { cutOff('slow consumer'); return }
      if (!ok && stuck === undefined) {
        stuck = setTimeout(() => cutOff('stuck'), limits.stuckTimeoutMs)
        stuck.unref()
      }
    }
    const send = (text: string): void => {
      if (!open) return
      pending += text
      if (pending.length >= FLUSH_AT) flush()
      else if (!scheduled) { scheduled = true; setImmediate(flush) }
    }
    res.on('drain', () => { clearTimeout(stuck); stuck = undefined })
    const unsubscribe = live.subscribe(e => {
      if (eventMatches(filter, e)) send(`event: block\ndata: ${JSON.stringify(liveRow(e))}\n\n`)
    })
    const beat = setInterval(() => send(': keep-alive\n\n'), heartbeatMs)
    beat.unref()
    /** Stops sending; `last` goes out before the end of the response. */
    const stop = (last?: string): void => {
      if (!open) return
      open = false
      pending = ''
      clearInterval(beat)
      clearTimeout(stuck)
      unsubscribe()
      res.end(last)
    }
    // A stream that does not keep up says why, then its connection goes: closed after what is
    // queued, or destroyed CLOSE_GRACE_MS later if the client does not read even that.
    const socket = res.socket
    const cutOff = (reason: 'slow consumer' | 'stuck'): void => {
      if (reason === 'slow consumer') counters.streamsClosed.slowConsumer++
      else counters.streamsClosed.stuck++
      req.log.warn({ client, reason, queuedBytes: res.writableLength, maxQueuedBytesPerStream: limits.maxQueuedBytesPerStream, stuckTimeoutMs: limits.stuckTimeoutMs },
        'live tail closed: the client does not keep up')
      stop(`event: closed\ndata: ${JSON.stringify({ reason })}\n\n`)
      socket?.end()
      const grace = setTimeout(() => socket?.destroy(), CLOSE_GRACE_MS)
      grace.unref()
      socket?.once('close', () => clearTimeout(grace))
    }
    tails.add(stop)
    // 'close': the response ended, or the connection went first.
    res.once('close', () => {
      stop()
      tails.delete(stop)
      streams.release(client)
      counters.streamsOpen = streams.size
    })
    send(': egressd block log live tail\n\n')
  })
}
