// Background resolution of blocked names, pack probe names and the guard's everyday names through
// the configured upstreams (the UpstreamPool's query), never through egressd's own listener.
//
// blocked() runs for every blocked query on the DNS path: for a name queued, in flight or resolved
// within its answer's TTL it is one Map lookup and a clock read, with no allocation and no Promise.
// A new name is queued (one pending resolution per name) in a ring of learning.queueMax names;
// when the ring is full the name is dropped and counted (and tried again at its next query).
//
// Resolutions start from a token bucket of learning.resolvesPerSecond tokens a second (burst: one
// second's worth), with at most `concurrency` in flight; each asks A, AAAA and HTTPS. Probe names
// and guard seeds wait in rings of their own (queueMax each, so the ~660 everyday seed names
// cannot push out the pack's probe names) and take the same tokens: query learning goes first, but
// while probe names or seeds wait at least one start in PROBE_SHARE goes to them (seeds before
// probes, so the guard knows the addresses everyday names use before probe answers are judged),
// so neither starves the other and the total rate stays the configured one.

import type { Logger } from 'pino'
import type { LearningConfig } from '../config/types.js'
import type { Resolution } from '../dns/upstream/pool.js'
import { answerTargets, AnswerTargets, QType, Rcode } from '../dns/wire.js'
import type { LearnedBook } from './book.js'
import type { LearnedVia } from './types.js'

/** The UpstreamPool's query, or anything with its contract. */
export type QueryUpstream = (question: Buffer, dnssecOk: boolean) => Promise<Resolution>

export interface LearnerDeps {
  readonly learning: LearningConfig
  readonly book: LearnedBook
  /** Asked anew for each question, so a reload that replaces the pool is followed: `(q, d) => daemon.pool.query(q, d)`. */
  readonly query: QueryUpstream
  readonly log: Logger
  readonly now: () => number
  /** Resolutions in flight at most (default: resolvesPerSecond, between 4 and 64). */
  readonly concurrency?: number
  /**
   * The shared front end (shared-hosts.ts) a CNAME or HTTPS/SVCB target name is under, if any: the
   * addresses of such a chain are held back (shared-host), never put into a set.
   */
  readonly frontEnd?: (name: string) => string | undefined
}

export interface LearnerStats {
  /** Blocked names accepted into the queue. */
  readonly queued: number
  /** Blocked queries not considered because the queue was full (learning.queueMax), repeats of a name included. */
  readonly dropped: number
  /** Resolutions started (all kinds). */
  readonly started: number
  /** Resolutions that got at least one answer. */
  readonly resolved: number
  /** Resolutions where every question failed. */
  readonly failed: number
  /** Addresses that went into (or stayed in) a set. */
  readonly learned: number
  /** Addresses the guard held back. */
  readonly held: number
  readonly inflight: number
  /** Blocked names waiting now. */
  readonly queueDepth: number
  /** Probe names waiting now. */
  readonly probeQueueDepth: number
  readonly probesQueued: number
  /** Probe names dropped because their ring was full. */
  readonly probesDropped: number
  /** Guard seeds waiting now. */
  readonly seedQueueDepth: number
  readonly seedsQueued: number
  /** Guard seeds dropped because their ring was full. */
  readonly seedsDropped: number
}

const QUEUED = 0
const INFLIGHT = 1
const DONE = 2

/** A blocked name the learner knows: queued, in flight, or resolved and fresh `until`. */
interface NameState {
  readonly name: string
  category: string
  state: typeof QUEUED | typeof INFLIGHT | typeof DONE
  until: number
  /** The number of its last resolution (its entry in the forgetting order). */
  doneSeq: number
}

/** A probe name (learned as 'probe' for its category) or a guard seed (an allowed name). */
interface ProbeItem { readonly name: string, readonly category: string | undefined }

/** One start in this many goes to probe names while they wait. */
const PROBE_SHARE = 4
/** A name is not resolved again sooner than this, whatever its TTL (a blocked client retries often). */
const MIN_RECHECK_MS = 60_000
/** After a failed resolution, the name waits this long. */
const FAIL_RETRY_MS = 60_000
const QTYPES = [QType.A, QType.AAAA, QType.HTTPS] as const

/** A fixed-size FIFO of `capacity` items. */
class Ring<T> {
  readonly #items: Array<T | undefined>
  #head = 0
  #count = 0
  constructor (readonly capacity: number) { this.#items = new Array<T | undefined>(capacity) }
  get size (): number { return this.#count }
  push (x: T): boolean {
    if (this.#count === this.capacity) return false
    this.#items[(this.#head + this.#count) % this.capacity] = x
    this.#count++
    return true
  }

  shift (): T | undefined {
    if (this.#count === 0) return undefined
    const x = this.#items[this.#head]
    this.#items[this.#head] = undefined
    this.#head = (this.#head + 1) % this.capacity
    this.#count--
    return x
  }

  clear (): void { while (this.shift() !== undefined);/* empties */ }
}

export class Learner {
  readonly #book: LearnedBook
  readonly #query: QueryUpstream
  readonly #frontEnd: ((name: string) => string | undefined) | undefined
  readonly #log: Logger
  readonly #now: () => number
  readonly #rate: number
  readonly #concurrency: number
  readonly #names = new Map<string, NameState>()
  /**
   * Names in the order they were resolved (the first is forgotten first), with the resolution's
   * number: an entry whose name was queued again, resolved again or forgotten since is stale and
   * skipped. A plain array read from #doneHead (not a Map iterated from its start, which walks the
   * holes its deletions leave): forgetting is O(1) amortized.
   */
  #doneQ: NameState[] = []
  #doneQSeq: number[] = []
  #doneHead = 0
  #doneSeq = 0
  /** How many names the map keeps at most (resolved ones are forgotten first-in first-out). */
  readonly #maxNames: number
  readonly #queue: Ring<NameState>
  readonly #probes: Ring<ProbeItem>
  readonly #seeds: Ring<ProbeItem>
  #tokens: number
  #refilledAt: number
  #sinceProbe = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false
  readonly #targets = new AnswerTargets()
  #queued = 0
  #dropped = 0
  #started = 0
  #resolved = 0
  #failed = 0
  #learned = 0
  #held = 0
  #inflight = 0
  #probesQueued = 0
  #probesDropped = 0
  #seedsQueued = 0
  #seedsDropped = 0

  constructor (deps: LearnerDeps) {
    const c = deps.learning
    this.#book = deps.book
    this.#query = deps.query
    this.#frontEnd = deps.frontEnd
    this.#log = deps.log.child({ mod: 'learner' })
    this.#now = deps.now
    this.#rate = c.resolvesPerSecond
    this.#concurrency = deps.concurrency ?? Math.min(64, Math.max(4, c.resolvesPerSecond))
    this.#maxNames = Math.max(10_000, c.queueMax * 10)
    this.#queue = new Ring(c.queueMax)
    this.#probes = new Ring(c.queueMax)
    this.#seeds = new Ring(c.queueMax)
    this.#tokens = this.#rate
    this.#refilledAt = deps.now()
  }

  /**
   * A query for `name` (lower case, no trailing dot) was blocked by `category`. Called on the DNS
   * path for every blocked query; nearly free for a name seen recently.
   */
  blocked (name: string, category: string): void {
    // A full queue takes nothing: no lookup at all (a flood of distinct names costs a comparison).
    if (this.#queue.size === this.#queue.capacity) { this.#dropped++; return }
    const s = this.#names.get(name)
    if (s !== undefined) {
      if (s.state !== DONE || s.until > this.#now() || this.#closed) return
      this.#queue.push(s)
      s.state = QUEUED
      s.category = category
      this.#queued++
      this.#wake()
      return
    }
    if (this.#closed) return
    const n: NameState = { name, category, state: QUEUED, until: 0, doneSeq: 0 }
    this.#names.set(name, n)
    this.#queue.push(n)
    this.#queued++
    if (this.#names.size > this.#maxNames) this.#forgetOne()
    this.#wake()
  }

  /** Queues each category's probe names (learned as 'probe'); names beyond the queue are dropped and counted. */
  probe (names: ReadonlyMap<string, readonly string[]>): void {
    for (const [category, list] of names) for (const name of list) this.#queueProbe({ name, category })
  }

  /** Queues allowed everyday names: their answers feed the guard (as allowed answers), never a set. */
  seedGuard (names: readonly string[]): void {
    for (const name of names) this.#queueProbe({ name, category: undefined })
  }

  get stats (): LearnerStats {
    return {
      queued: this.#queued,
      dropped: this.#dropped,
      started: this.#started,
      resolved: this.#resolved,
      failed: this.#failed,
      learned: this.#learned,
      held: this.#held,
      inflight: this.#inflight,
      queueDepth: this.#queue.size,
      probeQueueDepth: this.#probes.size,
      probesQueued: this.#probesQueued,
      probesDropped: this.#probesDropped,
      seedQueueDepth: this.#seeds.size,
      seedsQueued: this.#seedsQueued,
      seedsDropped: this.#seedsDropped
    }
  }

  /** Stops starting resolutions, empties the queues and waits for those in flight (their results still count). */
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    for (let s = this.#queue.shift(); s !== undefined; s = this.#queue.shift()) this.#names.delete(s.name)
    this.#probes.clear()
    this.#seeds.clear()
    // In-flight resolutions are not waited for: an upstream that does not answer would hold the
    // shutdown for its timeouts (or, with nothing else keeping the process alive, forever). They
    // end on their own and learn nothing once closed.
  }

  #queueProbe (item: ProbeItem): void {
    if (this.#closed) return
    const name = item.name.toLowerCase().replace(/\.$/, '')
    if (question(name, QType.A) === undefined) { this.#log.warn({ name }, 'probe name skipped: not a host name'); return }
    const seed = item.category === undefined
    if (!(seed ? this.#seeds : this.#probes).push(name === item.name ? item : { name, category: item.category })) {
      if (seed) this.#seedsDropped++
      else this.#probesDropped++
      return
    }
    if (seed) this.#seedsQueued++
    else this.#probesQueued++
    this.#wake()
  }

  /**
   * Forgets the name resolved longest ago (a queued or in-flight one stays: the ring bounds those).
   * O(1): #done holds only resolved names, so nothing queued has to be skipped.
   */
  #forgetOne (): void {
    const q = this.#doneQ
    while (this.#doneHead < q.length) {
      const i = this.#doneHead++
      const s = q[i]
      if (s.state === DONE && s.doneSeq === this.#doneQSeq[i] && this.#names.get(s.name) === s) {
        this.#names.delete(s.name)
        break
      }
    }
    if (this.#doneHead >= 1024 && this.#doneHead * 2 >= q.length) this.#compactDone()
  }

  /** A name was resolved: to the back of the forgetting order. */
  #resolvedName (s: NameState): void {
    s.doneSeq = ++this.#doneSeq
    this.#doneQ.push(s)
    this.#doneQSeq.push(s.doneSeq)
    // Names resolved again and again while the map is not full leave stale entries: drop them now
    // and then (amortized O(1): only when they outnumber the map's names).
    if (this.#doneQ.length - this.#doneHead > 2 * this.#names.size + 1024) this.#compactDone()
  }

  #compactDone (): void {
    const q: NameState[] = []
    const seq: number[] = []
    for (let i = this.#doneHead; i < this.#doneQ.length; i++) {
      const s = this.#doneQ[i]
      if (s.state === DONE && s.doneSeq === this.#doneQSeq[i] && this.#names.get(s.name) === s) { q.push(s); seq.push(this.#doneQSeq[i]) }
    }
    this.#doneQ = q
    this.#doneQSeq = seq
    this.#doneHead = 0
  }

  #wake (): void {
    if (this.#timer !== undefined || this.#closed) return
    this.#timer = setTimeout(() => { this.#timer = undefined; this.#drain() }, 0)
    this.#timer.unref()
  }

  /** Starts what the tokens and the concurrency bound allow; re-arms for the next token. */
  #drain (): void {
    if (this.#closed) return
    const now = this.#now()
    this.#tokens = Math.min(this.#rate, this.#tokens + (now - this.#refilledAt) * this.#rate / 1000)
    this.#refilledAt = now
    while (this.#tokens >= 1 && this.#inflight < this.#concurrency && (this.#queue.size > 0 || this.#probes.size > 0 || this.#seeds.size > 0)) {
      this.#tokens -= 1
      const side = this.#seeds.size > 0 ? this.#seeds : this.#probes
      if (side.size > 0 && (this.#queue.size === 0 || this.#sinceProbe >= PROBE_SHARE - 1)) {
        this.#sinceProbe = 0
        const p = side.shift() as ProbeItem
        void this.#run(p.name, p.category, p.category === undefined ? undefined : 'probe', undefined)
      } else {
        this.#sinceProbe++
        const s = this.#queue.shift() as NameState
        s.state = INFLIGHT
        void this.#run(s.name, s.category, 'query', s)
      }
    }
    if (this.#queue.size === 0 && this.#probes.size === 0 && this.#seeds.size === 0) return
    // Waiting for a token (a completion below the concurrency bound wakes the drain itself).
    if (this.#tokens < 1 && this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.#timer = undefined; this.#drain() }, Math.ceil((1 - this.#tokens) * 1000 / this.#rate))
      this.#timer.unref()
    }
  }

  /**
   * One resolution: A, AAAA and HTTPS of `name`. With `via`, its addresses are learned for
   * `category`; without, it is a guard seed and they go to the guard as an allowed answer.
   */
  async #run (name: string, category: string | undefined, via: LearnedVia | undefined, state: NameState | undefined): Promise<void> {
    this.#inflight++
    this.#started++
    /** The shortest lifetime of the answers with addresses, and of any answer. */
    let addrTtl = Infinity
    let anyTtl = Infinity
    let answered = false
    const v4 = new Set<number>()
    const v6 = new Set<string>()
    const frontEnds = new Set<string>()
    const frontEnd = this.#frontEnd
    try {
      const settled = await Promise.allSettled(QTYPES.map(async t => {
        const q = question(name, t)
        if (q === undefined) throw new Error(`not a host name: ${JSON.stringify(name)}`)
        return await this.#query(q, false)
      }))
      // Closed meanwhile: the book may be closed too; what this resolution found is dropped.
      if (this.#closed) return
      for (const r of settled) {
        if (r.status === 'rejected') continue
        const a = r.value.answer
        if (a.rcode !== Rcode.NOERROR && a.rcode !== Rcode.NXDOMAIN) continue
        answered = true
        const t = answerTargets(a, this.#targets)
        if (t.v4Count + t.v6Count > 0) addrTtl = Math.min(addrTtl, a.lifetime)
        anyTtl = Math.min(anyTtl, a.lifetime)
        for (let i = 0; i < t.v4Count; i++) v4.add(t.v4[i])
        for (let i = 0; i < t.v6Count; i++) v6.add(t.v6[i])
        if (frontEnd !== undefined) for (let i = 0; i < t.nameCount; i++) if (frontEnd(t.names[i]) !== undefined) frontEnds.add(t.names[i])
      }
      if (!answered) {
        this.#failed++
        const why = settled.map(r => r.status === 'rejected' ? (r.reason as Error).message : `rcode ${r.value.answer.rcode}`).join('; ')
        this.#log.debug({ name, why }, 'background resolution failed')
      } else {
        this.#resolved++
        if (v4.size + v6.size > 0) {
          const ttlSeconds = addrTtl
          if (via !== undefined && category !== undefined) {
            const o = this.#book.learn(category, name, v4, v6, ttlSeconds, via, [...frontEnds])
            this.#learned += o.active
            this.#held += o.held
          } else {
            const v4s = [...v4]
            const v6s = [...v6]
            this.#book.allowedAnswer(name, { v4: v4s, v4Count: v4s.length, v6: v6s, v6Count: v6s.length })
          }
        }
      }
    } catch (err) {
      this.#failed++
      this.#log.warn({ err, name }, 'background resolution failed')
    } finally {
      if (state !== undefined) {
        state.state = DONE
        this.#resolvedName(state)
        const ttl = addrTtl !== Infinity ? addrTtl : anyTtl !== Infinity ? anyTtl : 0
        const wait = answered ? Math.max(MIN_RECHECK_MS, ttl * 1000) : FAIL_RETRY_MS
        state.until = this.#now() + wait
      }
      this.#inflight--
      if (!this.#closed) this.#drain()
    }
  }
}

/** The question section for `name`, `qtype`, class IN; undefined when `name` is not a host name. */
export function question (name: string, qtype: number): Buffer | undefined {
  const labels = name.replace(/\.$/, '').split('.')
  let len = 5
  for (const l of labels) {
    if (l.length === 0 || l.length > 63 || !/^[\x21-\x7e]+$/.test(l)) return undefined
    len += l.length + 1
  }
  if (len > 255 + 4) return undefined
  const b = Buffer.alloc(len)
  let p = 0
  for (const l of labels) {
    b[p++] = l.length
    p += b.write(l.toLowerCase(), p, 'latin1')
  }
  b[p++] = 0
  b.writeUInt16BE(qtype, p)
  b.writeUInt16BE(1, p + 2)
  return b
}
