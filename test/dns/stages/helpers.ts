// What the stage tests share: queries as a client writes them (dns-packet, read by the real
// readQuery), a real policy engine from the bundled lists (telegram.org is listed; 149.154.167.51
// is in Telegram's published ranges), answers as an upstream sends them (prepareAnswer), and a
// fake `next` that records whether it was called and returns what the row says.

import * as packet from 'dns-packet'
import { buildEngine } from '../../../src/policy/build.js'
import type { Engine } from '../../../src/policy/engine.js'
import { type Handler, type Outcome, type Pending, QueryContext, type Protocol } from '../../../src/dns/contract.js'
import { prepareAnswer, readQuery, upstreamQuestion, type Query, type StoredAnswer } from '../../../src/dns/wire.js'
import { testConfig } from '../../helpers/daemon.js'

export const cfg = testConfig({})

let generation = 1
/** A policy snapshot of the bundled lists with `blocklists` settings on top. */
export function engine (blocklists: Record<string, unknown> = {}): Engine {
  return buildEngine(testConfig({ blocklists }).blocklists, generation++).engine
}

export interface QuerySpec {
  readonly name: string
  readonly type?: string
  readonly class?: string
  /** An OPT record with this EDNS version (none when undefined). */
  readonly edns?: number
  /** The DNSSEC OK bit in the OPT record. */
  readonly do?: boolean
  readonly id?: number
}

/** A query's bytes as a client sends them. */
export function queryBytes (s: QuerySpec): Buffer {
  return Buffer.from(packet.encode({
    type: 'query', id: s.id ?? 7, flags: packet.RECURSION_DESIRED,
    questions: [{ name: s.name, type: (s.type ?? 'A') as packet.RecordType, class: (s.class ?? 'IN') as packet.RecordClass }],
    additionals: s.edns === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: 1232, ednsVersion: s.edns, flags: s.do === true ? packet.DNSSEC_OK : 0 } as unknown as packet.Answer]
  }))
}

export interface TestContext extends QueryContext {
  /** Outcomes the context's finish was called with, after the queued steps ran. */
  readonly finished: Outcome[]
}

/** A query's context as the pipeline makes it; its `finish` runs the queued steps and records the outcome. */
export function context (s: QuerySpec & { client?: string, engine?: Engine, protocol?: Protocol }): TestContext {
  const msg = queryBytes(s)
  const q = readQuery(msg)
  if (typeof q === 'string') throw new Error(`not a query: ${q}`)
  const finished: Outcome[] = []
  const ctx = new QueryContext(msg, q, s.protocol ?? 'udp', s.client ?? '192.168.0.10', s.engine ?? defaultEngine(), { reply: () => {} }, null, 0, (c, o) => {
    for (let i = 0; i < c.stepCount; i++) o = c.steps![i](c, o)
    finished.push(o)
  }) as TestContext
  Object.defineProperty(ctx, 'finished', { value: finished })
  return ctx
}

let shared: Engine | undefined
function defaultEngine (): Engine { return shared ??= engine() }

/** A fake `next`: returns `result` (an Outcome, PENDING, or what a function makes of the context), counting calls. */
export function fakeNext (result: Outcome | Pending | ((ctx: QueryContext) => Outcome | Pending)): Handler & { calls: number } {
  const next = ((ctx: QueryContext) => {
    next.calls++
    return typeof result === 'function' ? result(ctx) : result
  }) as Handler & { calls: number }
  next.calls = 0
  return next
}

/** An upstream's answer to `q`: A records (addresses) or a CNAME chain ending in an address; NXDOMAIN with an SOA. */
export function upstreamAnswer (q: Query, msg: Buffer, records: Array<{ type: 'A' | 'CNAME', data: string, name?: string }>, rcode: 'NOERROR' | 'NXDOMAIN' = 'NOERROR', ttl = 60): StoredAnswer {
  const question = upstreamQuestion(msg, q)
  const raw = Buffer.from(packet.encode({
    type: 'response', id: 0, flags: packet.RECURSION_DESIRED | (rcode === 'NXDOMAIN' ? 3 : 0),
    questions: [{ name: q.qname, type: 'A', class: 'IN' }],
    answers: records.map(r => ({ name: r.name ?? q.qname, type: r.type, ttl, data: r.data })),
    // A negative answer carries its zone's SOA, whose MINIMUM makes it cacheable (RFC 2308).
    authorities: rcode === 'NXDOMAIN' ? [{ name: 'example', type: 'SOA', ttl, data: { mname: 'ns.example', rname: 'h.example', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: ttl } }] : []
  }))
  const a = prepareAnswer(raw, question, cfg.cache, 1232)
  if (typeof a === 'string') throw new Error(`bad answer: ${a}`)
  return a
}

/** The rcode of an answer (extended with the OPT's upper bits) and its EDE info-codes. */
export function decoded (b: Buffer): { id: number, rcode: number, ede: number[], answers: packet.Answer[] } {
  const p = packet.decode(b)
  const opt = (p.additionals ?? []).find(r => r.type === 'OPT') as { extendedRcode?: number, options?: Array<{ code: number, data: Buffer }> } | undefined
  return {
    id: p.id ?? -1,
    rcode: (b[3] & 0x0f) + ((opt?.extendedRcode ?? 0) << 4),
    ede: (opt?.options ?? []).filter(o => o.code === 15).map(o => o.data.readUInt16BE(0)),
    answers: p.answers ?? []
  }
}
