// A daemon that has learned (issue 24): its upstream is a real dnsmasq on loopback answering a
// banned name with A, an allowed name with B and a second banned name with B as well. After the
// lookups (real dig) the daemon's book holds A in whatsapp's learned set (from the background
// resolution of the blocked query) and B held back by the guard with the allowed name. A and B are
// public-looking addresses outside every never-block range, and nothing leaves loopback.

import type { Test } from 'tap'
import { dig } from '../helpers/dig.js'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { call, sleep, startApiDaemon, TOKENS, type ApiDaemon } from './helpers.js'

export const A = '11.0.0.10'
export const B = '11.0.0.20'
/** Banned (whatsapp.com), not a probe name: learned from the client's query. */
export const BANNED_A = 'www.whatsapp.com'
/** Banned (whatsapp.net), resolves to B. */
export const BANNED_B = 'media.whatsapp.net'
/** Allowed, resolves to B. */
export const ALLOWED_B = 'portal.example.com'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- merged over startApiDaemon's defaults
export async function startLearningDaemon (t: Test, config: Record<string, any> = {}): Promise<ApiDaemon> {
  const upstream = await startDnsmasq({
    auth: false,
    lines: [`host-record=${BANNED_A},${A}`, `host-record=${ALLOWED_B},${B}`, `host-record=${BANNED_B},${B}`]
  })
  t.teardown(() => upstream.stop())
  const d = await startApiDaemon({ upstreams: [upstream.url], ...config })
  t.teardown(() => d.close())
  return d
}

/** The client's lookups: the allowed name first, then both banned names (each blocked). */
export async function lookUp (t: Test, d: ApiDaemon): Promise<void> {
  const q = (name: string): Promise<{ status: string, answers: Array<{ data: string }> }> => dig(['@127.0.0.1', '-p', String(d.dnsPort), name, 'A', '+tries=1', '+time=3'])
  const allowed = await q(ALLOWED_B)
  t.same([allowed.status, allowed.answers.map(a => a.data)], ['NOERROR', [B]], 'the allowed name resolves to B')
  t.equal((await q(BANNED_A)).status, 'NXDOMAIN', `${BANNED_A} is blocked`)
  t.equal((await q(BANNED_B)).status, 'NXDOMAIN', `${BANNED_B} is blocked`)
}

/** Polls `get` every 100 ms until `ok`, at most `ms`; throws with the last value. */
export async function until<T> (what: string, get: () => T | Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  let v = await get()
  while (!ok(v)) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(v).slice(0, 800)}`)
    await sleep(100)
    v = await get()
  }
  return v
}

interface LearnedBody { learned: Array<{ address: string }>, held: Array<{ address: string }> }

/** After the lookups: waits (bounded) until the API shows A learned and B held. */
export async function waitLearned (d: ApiDaemon): Promise<void> {
  await until('A learned and B held (GET /api/v1/learned)', async () => (await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.viewer })).json as LearnedBody,
    j => j.learned.some(l => l.address === A) && j.held.some(h => h.address === B))
}
