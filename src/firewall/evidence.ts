// Evidence from the firewall (issue 24 item 4): reads back the dynamic sets `evidence_v4` and
// `evidence_v6` that the reject rules update (firewall/nftables.ts says why this mechanism, and
// what the key is), every firewall.evidence.intervalMs, with `nft -j list set` (one spawn per
// set), and turns the packets counted since the previous read into FirewallHits, at most one per
// (client, destination) per firewall.evidence.perPairSeconds: a hit carries every rejected packet
// of the pair since the pair's previous hit (attempts), also those of suppressed reads, which are
// emitted when the pair's window has passed.
//
// Counting: per element (client . destination . proto . set tag) the packet counter of the
// previous read is kept; the difference is what is new. An element that is gone is forgotten; one
// whose counter went down, or one of a set whose handle changed (a full table sync recreated the
// table), starts again from zero. The kernel refreshes an element's timeout (15 min) on every
// packet, so an element only times out after 15 minutes without attempts.
//
// Ports: the counted key has none (a port sweep would fill the set, see nftables.ts). When a read
// finds new attempts, the small port set `evidence_ports_v4`/`_v6` (client . destination . proto .
// port, 60 s, not refreshed) is read too and names the port of the pair's hit (the most recently
// added one); when the port set was full, or the sample expired, the port is the pair's previous
// one, or 0 (unknown).
//
// Bounds: the element maps hold what the kernel sets hold (each at most EVIDENCE_SET_SIZE,
// 16384: about 2 MB of JSON per family); the pair map holds pairs inside their window, at most
// maxPairs (the oldest goes first, counted). A set at its size is reported (state.full, and a warn
// at most once an hour): the reject still works, but new (client, destination) keys are not
// recorded until old ones time out. nft's output is read up to 64 MiB. Bad output is counted and
// reported (state.lastError), never thrown. With firewall.sync or firewall.evidence.enabled off
// nothing is read.

import { spawn } from 'node:child_process'
import type { Logger } from 'pino'
import type { FirewallConfig } from '../config/types.js'
import type { Family, FirewallHit } from '../learn/types.js'
import { evidencePortSetName, evidenceSetName, evidenceTags, isAddress, type SetKind } from './nftables.js'

export interface EvidenceState {
  /** Set reads (one nft spawn each) that succeeded and failed. */
  reads: number
  failures: number
  /** Elements of a read that were not what the reject rules write (skipped). */
  badElements: number
  lastError: string | undefined
  lastOkAt: number | undefined
  hits: number
  /** Elements read with new attempts while their pair was inside its window (the attempts go with its next hit). */
  suppressed: number
  /** Pairs dropped from a full pair map, with their attempts not yet reported. */
  evictedPairs: number
  /** Elements in the evidence sets at the last read (both families), and whether one was at its size. */
  elements: number
  full: boolean
  /** Whether a port set was at its size at its last read (ports of new attempts may be 0, unknown). */
  portsFull: boolean
}

export interface EvidenceDeps {
  /** The firewall settings in force (a reload applies): table, sync, evidence. */
  readonly firewall: () => FirewallConfig
  readonly log: Logger
  readonly now: () => number
  /** Receives every hit; must not throw (a throw is logged and ignored). */
  readonly onHit: (hit: FirewallHit) => void
  /** Names of the categories the table was rendered with, to say which category and set rejected. */
  readonly categories?: () => readonly string[]
  /** The nft command and leading arguments; default ['nft'] (tests: ['ip', 'netns', 'exec', NS, 'nft']). */
  readonly command?: readonly string[]
  /** Pairs (client, destination) tracked at most; default 10000. */
  readonly maxPairs?: number
  /** A read taking longer is killed and counted as failed; default 10000 ms. */
  readonly nftTimeoutMs?: number
}

/** One element of an evidence set, as read. */
export interface EvidenceElement {
  readonly client: string
  readonly destination: string
  readonly proto: string
  readonly tag: number
  readonly packets: number
}

/** One element of an evidence port set, as read: a port seen for the key, `expires` seconds left. */
export interface PortSample {
  readonly client: string
  readonly destination: string
  readonly proto: string
  readonly port: number
  readonly expires: number
}

/** A set as read: its handle, its size (undefined: nft printed none) and its elements. */
export type SetRead<E> =
  | { readonly ok: true, readonly handle: number | undefined, readonly size: number | undefined, readonly elements: readonly E[], readonly bad: number, readonly firstBad: string | undefined }
  | { readonly ok: false, readonly error: string }

export type EvidenceRead = SetRead<EvidenceElement>
export type PortRead = SetRead<PortSample>

interface Pair {
  lastHitAt: number
  attempts: number
  family: Family
  proto: string
  port: number
  tag: number
}

const MAX_OUTPUT = 64 * 1024 * 1024
const FULL_WARN_GAP_MS = 3_600_000

export class FirewallEvidence {
  readonly state: EvidenceState = {
    reads: 0, failures: 0, badElements: 0, lastError: undefined, lastOkAt: undefined, hits: 0, suppressed: 0, evictedPairs: 0, elements: 0, full: false, portsFull: false
  }
  readonly #deps: EvidenceDeps
  readonly #log: Logger
  readonly #maxPairs: number
  /** Per family: the set's handle at the last read, and each element's packet count then. */
  readonly #seen = new Map<Family, { handle: number | undefined, packets: Map<string, number> }>()
  readonly #pairs = new Map<string, Pair>()
  #tags: { of: readonly string[] | undefined, map: ReturnType<typeof evidenceTags> } = { of: undefined, map: new Map() }
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #started = false
  #fullWarnedAt = -Infinity

  constructor (deps: EvidenceDeps) {
    this.#deps = deps
    this.#log = deps.log.child({ mod: 'firewall-evidence' })
    this.#maxPairs = deps.maxPairs ?? 10_000
  }

  /** Pairs inside their window (for tests and status). */
  get pairs (): number { return this.#pairs.size }

  start (): void {
    if (this.#started) return
    this.#started = true
    this.#schedule()
  }

  async close (): Promise<void> {
    this.#started = false
    if (this.#timer !== undefined) { clearTimeout(this.#timer); this.#timer = undefined }
    if (this.#running !== undefined) await this.#running
  }

  #schedule (): void {
    if (!this.#started) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.readNow().finally(() => this.#schedule())
    }, this.#deps.firewall().evidence.intervalMs)
    this.#timer.unref()
  }

  /** One read of both sets and the hits it gives; resolves when done (never rejects). */
  readNow (): Promise<void> {
    if (this.#running !== undefined) return this.#running
    this.#running = this.#tick().catch(e => {
      this.state.failures++
      this.state.lastError = e instanceof Error ? e.message : String(e)
      this.#log.error({ err: e }, 'firewall evidence read failed')
    }).finally(() => { this.#running = undefined })
    return this.#running
  }

  async #tick (): Promise<void> {
    const fw = this.#deps.firewall()
    if (!fw.sync || !fw.evidence.enabled) return
    let elements = 0
    let full = false
    let portsFull = false
    for (const family of [4, 6] as const) {
      const read = parseEvidenceSet(await this.#list(fw.table, evidenceSetName(family)), evidenceSetName(family), family)
      if (!this.#readOk(read, evidenceSetName(family))) continue
      elements += read.elements.length
      if (read.size !== undefined && read.elements.length + read.bad >= read.size) full = true
      const fresh = this.#fresh(family, read.handle, read.elements)
      let ports = new Map<string, PortSample>()
      if (fresh.length > 0) {
        const portRead = parsePortSet(await this.#list(fw.table, evidencePortSetName(family)), evidencePortSetName(family), family)
        if (this.#readOk(portRead, evidencePortSetName(family))) {
          if (portRead.size !== undefined && portRead.elements.length + portRead.bad >= portRead.size) portsFull = true
          ports = latestPorts(portRead.elements)
        }
      }
      this.#count(family, fresh, ports, fw.evidence.perPairSeconds * 1000)
    }
    this.state.elements = elements
    this.state.full = full
    this.state.portsFull = portsFull
    const now = this.#deps.now()
    if (full && now - this.#fullWarnedAt >= FULL_WARN_GAP_MS) {
      this.#fullWarnedAt = now
      this.#log.warn({ elements }, 'firewall evidence set full: rejects still work, but new client/destination attempts are not recorded until old ones time out (15 min without attempts)')
    }
    this.#expire(fw.evidence.perPairSeconds * 1000)
  }

  /** Counts a read (ok or failed); true when it is usable. */
  #readOk<E> (read: SetRead<E>, name: string): read is Extract<SetRead<E>, { ok: true }> {
    if (!read.ok) {
      this.state.failures++
      this.state.lastError = `${name}: ${read.error}`
      this.#log.warn({ err: this.state.lastError }, 'firewall evidence: set not read')
      return false
    }
    this.state.reads++
    this.state.lastOkAt = this.#deps.now()
    if (read.bad > 0) {
      this.state.badElements += read.bad
      this.state.lastError = `${name}: ${read.bad} element(s) not understood, e.g. ${read.firstBad ?? ''}`
    }
    return true
  }

  /** nft's output of one set, or the error text (a string starting with '!'). */
  #list (table: string, set: string): Promise<string> {
    const [cmd, ...args] = this.#deps.command ?? ['nft']
    return new Promise(resolve => {
      const nft = spawn(cmd, [...args, '-j', 'list', 'set', 'inet', table, set], { stdio: ['ignore', 'pipe', 'pipe'] })
      const out: Buffer[] = []
      let size = 0
      let err = ''
      const killer = setTimeout(() => { err += 'nft timed out; '; nft.kill('SIGKILL') }, this.#deps.nftTimeoutMs ?? 10_000)
      killer.unref()
      nft.stdout.on('data', (d: Buffer) => {
        size += d.length
        if (size > MAX_OUTPUT) { err += `output over ${MAX_OUTPUT} bytes; `; nft.kill('SIGKILL'); return }
        out.push(d)
      })
      nft.stderr.on('data', d => { if (err.length < 4096) err += String(d) })
      nft.on('error', e => { err += e.message })
      nft.on('close', code => {
        clearTimeout(killer)
        if (code === 0 && err === '') resolve(Buffer.concat(out).toString('utf8'))
        else resolve('!' + (err.trim().split('\n').slice(0, 3).join(' | ') || `nft exited with ${String(code)}`))
      })
    })
  }

  /** The elements with attempts since the previous read, with how many (and remembers the counters). */
  #fresh (family: Family, handle: number | undefined, elements: readonly EvidenceElement[]): Array<{ e: EvidenceElement, delta: number }> {
    const before = this.#seen.get(family)
    const previous = before !== undefined && before.handle === handle ? before.packets : new Map<string, number>()
    const packets = new Map<string, number>()
    const fresh: Array<{ e: EvidenceElement, delta: number }> = []
    for (const e of elements) {
      const key = `${e.client} ${e.destination} ${e.proto} ${e.tag}`
      packets.set(key, e.packets)
      const prev = previous.get(key)
      const delta = prev === undefined || e.packets < prev ? e.packets : e.packets - prev
      if (delta > 0) fresh.push({ e, delta })
    }
    this.#seen.set(family, { handle, packets })
    return fresh
  }

  #count (family: Family, fresh: ReadonlyArray<{ e: EvidenceElement, delta: number }>, ports: ReadonlyMap<string, PortSample>, windowMs: number): void {
    const now = this.#deps.now()
    for (const { e, delta } of fresh) {
      const pairKey = `${e.client} ${e.destination}`
      const port = ports.get(`${pairKey} ${e.proto}`)?.port
      let pair = this.#pairs.get(pairKey)
      if (pair === undefined) {
        if (this.#pairs.size >= this.#maxPairs) this.#evictOldest()
        pair = { lastHitAt: -Infinity, attempts: 0, family, proto: e.proto, port: port ?? 0, tag: e.tag }
        this.#pairs.set(pairKey, pair)
      }
      pair.attempts += delta
      // Without a sample the pair keeps the port it had for the same protocol, else 0 (unknown).
      if (port !== undefined) pair.port = port
      else if (pair.proto !== e.proto) pair.port = 0
      pair.proto = e.proto
      pair.tag = e.tag
      if (now - pair.lastHitAt >= windowMs) this.#emit(pairKey, pair, now)
      else this.state.suppressed++
    }
  }

  /** Pairs whose window has passed: their carried attempts become a hit; idle ones are forgotten. */
  #expire (windowMs: number): void {
    const now = this.#deps.now()
    for (const [key, pair] of this.#pairs) {
      if (now - pair.lastHitAt < windowMs) continue
      if (pair.attempts > 0) this.#emit(key, pair, now)
      else this.#pairs.delete(key)
    }
  }

  #evictOldest (): void {
    for (const [key, pair] of this.#pairs) {
      this.#pairs.delete(key)
      if (pair.attempts > 0) this.state.evictedPairs++
      return
    }
  }

  #emit (pairKey: string, pair: Pair, now: number): void {
    const space = pairKey.indexOf(' ')
    const known = this.#tagMap().get(pair.tag)
    const hit: FirewallHit = {
      ts: now,
      client: pairKey.slice(0, space),
      destination: pairKey.slice(space + 1),
      family: pair.family,
      proto: pair.proto,
      port: pair.port,
      attempts: pair.attempts,
      ...known !== undefined ? { category: known.category, set: known.set } : {}
    }
    pair.attempts = 0
    pair.lastHitAt = now
    // Re-inserted so that the map's order is the order of last hits (eviction takes the oldest).
    this.#pairs.delete(pairKey)
    this.#pairs.set(pairKey, pair)
    this.state.hits++
    try { this.#deps.onHit(hit) } catch (e) { this.#log.error({ err: e }, 'firewall evidence: onHit threw') }
  }

  #tagMap (): Map<number, { readonly category: string, readonly set: string, readonly kind: SetKind }> {
    const categories = this.#deps.categories?.()
    if (categories !== this.#tags.of) this.#tags = { of: categories, map: evidenceTags(categories ?? []) }
    return this.#tags.map
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

/** An integer nft printed as a number or as text (decimal or 0x hex). */
function integer (x: unknown): number | undefined {
  if (isCount(x)) return x
  if (typeof x === 'string' && /^(0x[0-9a-f]{1,8}|[0-9]{1,10})$/i.test(x)) return Number(x)
  return undefined
}

/** Per `client destination proto`, the sample added last (the most time left). */
export function latestPorts (samples: readonly PortSample[]): Map<string, PortSample> {
  const latest = new Map<string, PortSample>()
  for (const p of samples) {
    const key = `${p.client} ${p.destination} ${p.proto}`
    const had = latest.get(key)
    if (had === undefined || p.expires > had.expires) latest.set(key, p)
  }
  return latest
}

/**
 * Parses `nft -j list set inet TABLE NAME` output of an evidence set (text starting with '!' is
 * the error of a failed nft run). Strict: the set must be there by name; an element that is not
 * (address . address . proto . tag) with a packet counter is counted as bad and skipped.
 */
export function parseEvidenceSet (text: string, name: string, family: Family): EvidenceRead {
  return parseSet(text, name, item => parseElement(item, family))
}

/** Parses an evidence port set (address . address . proto . port), like parseEvidenceSet. */
export function parsePortSet (text: string, name: string, family: Family): PortRead {
  return parseSet(text, name, item => parsePortSample(item, family))
}

function parseSet<E> (text: string, name: string, parse: (item: unknown) => E | undefined): SetRead<E> {
  if (text.startsWith('!')) return { ok: false, error: text.slice(1) }
  let doc: unknown
  try { doc = JSON.parse(text) } catch (e) { return { ok: false, error: `nft printed no JSON: ${(e as Error).message}` } }
  if (!isObject(doc) || !Array.isArray(doc.nftables)) return { ok: false, error: 'nft JSON without an "nftables" array' }
  const set = doc.nftables.map(x => isObject(x) ? x.set : undefined).find(s => isObject(s) && s.name === name)
  if (!isObject(set)) return { ok: false, error: `nft JSON without the set ${name}` }
  const handle = isCount(set.handle) ? set.handle : undefined
  const size = isCount(set.size) && set.size > 0 ? set.size : undefined
  if (set.elem === undefined) return { ok: true, handle, size, elements: [], bad: 0, firstBad: undefined }
  if (!Array.isArray(set.elem)) return { ok: false, error: `set ${name}: "elem" is not an array` }
  const elements: E[] = []
  let bad = 0
  let firstBad: string | undefined
  for (const item of set.elem) {
    const e = parse(item)
    if (e !== undefined) { elements.push(e); continue }
    bad++
    firstBad ??= JSON.stringify(item).slice(0, 200)
  }
  return { ok: true, handle, size, elements, bad, firstBad }
}

/** The value of an element of `width` concatenated fields, the first two addresses of the family. */
function concat (item: unknown, width: number, family: Family): { elem: Record<string, unknown>, fields: unknown[], client: string, destination: string, proto: string } | undefined {
  const elem = isObject(item) && isObject(item.elem) ? item.elem : undefined
  if (elem === undefined || !isObject(elem.val) || !Array.isArray(elem.val.concat) || elem.val.concat.length !== width) return undefined
  const fields = elem.val.concat as unknown[]
  const [client, destination, proto] = fields
  if (typeof client !== 'string' || !isAddress(client, family) || typeof destination !== 'string' || !isAddress(destination, family)) return undefined
  const protoText = typeof proto === 'string' && /^[a-z0-9-]{1,20}$/i.test(proto) ? proto : isCount(proto) && proto <= 255 ? String(proto) : undefined
  if (protoText === undefined) return undefined
  return { elem, fields, client, destination, proto: protoText }
}

function parseElement (item: unknown, family: Family): EvidenceElement | undefined {
  const c = concat(item, 4, family)
  if (c === undefined) return undefined
  const tag = integer(c.fields[3])
  if (tag === undefined || tag > 0xffffffff) return undefined
  const counter = c.elem.counter
  if (counter === undefined) return { client: c.client, destination: c.destination, proto: c.proto, tag, packets: 0 }
  if (!isObject(counter) || !isCount(counter.packets)) return undefined
  return { client: c.client, destination: c.destination, proto: c.proto, tag, packets: counter.packets }
}

function parsePortSample (item: unknown, family: Family): PortSample | undefined {
  const c = concat(item, 4, family)
  if (c === undefined) return undefined
  const port = integer(c.fields[3])
  if (port === undefined || port > 65535) return undefined
  const expires = isCount(c.elem.expires) ? c.elem.expires : 0
  return { client: c.client, destination: c.destination, proto: c.proto, port, expires }
}
