// DNS wire format on the hot path: a hand-written reader for the client's header and question,
// a walker for upstream answers (validation, TTL offsets, negative TTL, OPT), and response
// builders that work from the query bytes. No full decode, no dns-packet here (see README:
// "Architecture"). Knows nothing of sockets, caches or policy.

// Node's global `Buffer` is a getter on globalThis: every `Buffer.allocUnsafe` in a hot function
// would call it. The module binding is a plain variable.
import { Buffer } from 'node:buffer'
import { FNV_OFFSET, FNV_PRIME, finishHash } from '../hash.js'

/** Rcodes; BADVERS (RFC 6891) is an extended rcode: its upper 8 bits go into the OPT record. */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const
export const QType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SVCB: 64, HTTPS: 65, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255 } as const
export const QClass = { IN: 1, CH: 3 } as const

const HEADER = 12
const FLAG_QR = 0x8000
const FLAG_TC = 0x0200
const FLAG_RD = 0x0100
const FLAG_RA = 0x0080
const FLAG_CD = 0x0010
const OPT_DO = 0x8000
const MAX_NAME = 255
/** EDNS(0) option code for Extended DNS Errors (RFC 8914). */
export const EDE_OPTION = 15

/** What the reader knows about a client's query. Offsets refer to the client's own bytes. */
export interface Query {
  readonly id: number
  readonly flags: number
  /** Lower-cased presentation form without the trailing dot ('' for the root); odd bytes escaped as \DDD. */
  readonly qname: string
  readonly qtype: number
  readonly qclass: number
  /** Offset just past QCLASS: bytes 12..questionEnd are the question as the client wrote it. */
  readonly questionEnd: number
  /** The client sent an OPT record. */
  readonly edns: boolean
  /** Largest UDP answer the client accepts: 512 without EDNS, else max(512, its payload size). */
  readonly udpSize: number
  /** DNSSEC OK bit from the client's OPT. */
  readonly do: boolean
  /** VERSION from the client's OPT (0 without EDNS); above 0 is answered BADVERS (RFC 6891 6.1.3). */
  readonly ednsVersion: number
  /** Cache and coalescing key: (lower-cased name, type, class, DO). */
  readonly key: string
  /** keyHash(key), found while the key was read (the cache looks it up, and stores under it). */
  readonly keyHash: number
}

/**
 * Why a packet is not a query we serve. `short` and `response` are dropped without an answer (the
 * header is unusable, or answering a response invites loops); `opcode` gets NOTIMP; the rest FORMERR.
 */
export type Malformed =
  | 'short' | 'response' | 'opcode' | 'qdcount' | 'sections'
  | 'label' | 'pointer' | 'name-too-long' | 'truncated' | 'opt' | 'trailing'

export const MALFORMED_KINDS: readonly Malformed[] = ['short', 'response', 'opcode', 'qdcount', 'sections', 'label', 'pointer', 'name-too-long', 'truncated', 'opt', 'trailing']

/** The rcode a malformed packet is answered with, or -1 to drop it. */
export function malformedRcode (kind: Malformed): number {
  if (kind === 'short' || kind === 'response') return -1
  return kind === 'opcode' ? Rcode.NOTIMP : Rcode.FORMERR
}

// Scratch space for building the name string in one pass (synchronous use only).
const nameScratch = Buffer.allocUnsafe(MAX_NAME + 32)

/**
 * Reads the header, the single question and an optional OPT record of a client's packet.
 * Returns the Query, or the kind of malformation. Allocates only the name and key strings.
 */
export function readQuery (msg: Buffer): Query | Malformed {
  const len = msg.length
  if (len < HEADER) return 'short'
  const flags = (msg[2] << 8) | msg[3]
  if ((flags & FLAG_QR) !== 0) return 'response'
  if (((flags >> 11) & 0xf) !== 0) return 'opcode'
  if (msg[4] !== 0 || msg[5] !== 1) return 'qdcount'
  // Nothing in answer and authority, but for an IXFR query's SOA (RFC 1995 3), checked below.
  let authority = false
  if (msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 0) {
    if (msg[6] !== 0 || msg[7] !== 0 || msg[8] !== 0 || msg[9] !== 1) return 'sections'
    authority = true
  }
  const arcount = (msg[10] << 8) | msg[11]

  // Question name: plain labels only (a compression pointer in a query is a format error).
  let p = HEADER
  let n = 0 // bytes written to nameScratch
  let wire = 1 // wire length of the name, including the root byte
  let plain = true
  let h = FNV_OFFSET // keyHash of the name so far, as it is written out
  for (;;) {
    if (p >= len) return 'truncated'
    const l = msg[p]
    if (l === 0) { p++; break }
    if ((l & 0xc0) === 0xc0) return 'pointer'
    if (l > 63) return 'label'
    wire += l + 1
    if (wire > MAX_NAME) return 'name-too-long'
    if (p + 1 + l > len) return 'truncated'
    if (n > 0) { nameScratch[n++] = 0x2e; h = Math.imul(h ^ 0x2e, FNV_PRIME) }
    for (let i = p + 1, end = p + 1 + l; i < end; i++) {
      let c = msg[i]
      if (c >= 0x41 && c <= 0x5a) c |= 0x20
      else if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c || c === 0x2f) plain = false
      nameScratch[n++] = c
      h = Math.imul(h ^ c, FNV_PRIME)
    }
    p += l + 1
  }
  if (p + 4 > len) return 'truncated'
  const qtype = (msg[p] << 8) | msg[p + 1]
  const qclass = (msg[p + 2] << 8) | msg[p + 3]
  const questionEnd = p + 4

  // Additional section: at most one OPT (RFC 6891 6.1.1); other records (TSIG, ...) are not ours to
  // verify, so a query carrying them is refused as a format error rather than forwarded half-understood.
  let edns = false
  let udpSize = 512
  let dnssecOk = false
  let ednsVersion = 0
  p = questionEnd
  if (authority) {
    // An IXFR query carries the client's SOA: skipped (the query is answered REFUSED, never forwarded).
    if (qtype !== QType.IXFR) return 'sections'
    p = skipName(msg, p)
    if (p < 0 || p + 10 > len) return 'truncated'
    p += 10 + ((msg[p + 8] << 8) | msg[p + 9])
    if (p > len) return 'truncated'
  }
  for (let i = 0; i < arcount; i++) {
    if (p + 11 > len) return 'truncated'
    if (msg[p] !== 0) return 'opt'           // OPT's owner is the root
    const type = (msg[p + 1] << 8) | msg[p + 2]
    if (type !== QType.OPT || edns) return 'opt'
    edns = true
    const size = (msg[p + 3] << 8) | msg[p + 4]
    udpSize = size > 512 ? size : 512
    ednsVersion = msg[p + 6]
    dnssecOk = (msg[p + 7] & 0x80) !== 0
    const rdlen = (msg[p + 9] << 8) | msg[p + 10]
    p += 11 + rdlen
    if (p > len) return 'truncated'
  }
  if (p !== len) return 'trailing'

  // The key is the name itself for the common case (A, IN, no DO): no concatenation, one string.
  // Otherwise a suffix after '/' (a byte that fast-path names never contain: it is escaped).
  let qname: string
  let key: string
  if (!plain) {
    qname = escapedName(msg, HEADER)
    key = qname + keySuffix(qtype, qclass, dnssecOk)
    h = keyHash(key)
  } else if (qtype === 1 && qclass === 1 && !dnssecOk) {
    qname = latin1(nameScratch, n)
    key = qname
    h = finishHash(h)
  } else {
    const suffix = keySuffix(qtype, qclass, dnssecOk)
    for (let i = 0; i < suffix.length; i++) {
      const c = suffix.charCodeAt(i)
      nameScratch[n + i] = c
      h = Math.imul(h ^ c, FNV_PRIME)
    }
    key = latin1(nameScratch, n + suffix.length)
    qname = key.slice(0, n)
    h = finishHash(h)
  }
  return { id: (msg[0] << 8) | msg[1], flags, qname, qtype, qclass, questionEnd, edns, udpSize, do: dnssecOk, ednsVersion, key, keyHash: h }
}

/**
 * The hash of a cache and coalescing key: FNV-1a over its characters, mixed (murmur3's finalizer)
 * so that the low bits spread, and never 0. readQuery finds it for the query's key as it reads it.
 */
export function keyHash (key: string): number {
  let h = FNV_OFFSET
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), FNV_PRIME)
  return finishHash(h)
}

function keySuffix (qtype: number, qclass: number, dnssecOk: boolean): string {
  let s = '/' + qtype
  if (qclass !== 1) s += '/' + qclass
  if (dnssecOk) s += '/do'
  return s
}

// Buffer#latin1Slice skips toString's argument checks; it exists on every Node Buffer (20+).
type Latin1 = Buffer & { latin1Slice: (start: number, end: number) => string }
function latin1 (b: Buffer, end: number): string {
  return (b as Latin1).latin1Slice(0, end)
}

/** Slow path for names with dots, backslashes or non-printable bytes inside labels. */
function escapedName (msg: Buffer, start: number): string {
  const labels: string[] = []
  let p = start
  while (msg[p] !== 0) {
    const l = msg[p]
    let s = ''
    for (let i = p + 1; i <= p + l; i++) {
      let c = msg[i]
      if (c >= 0x41 && c <= 0x5a) c |= 0x20
      if (c <= 0x20 || c >= 0x7f) s += '\\' + String(c).padStart(3, '0')
      else if (c === 0x2e || c === 0x5c || c === 0x2f) s += '\\' + String.fromCharCode(c)
      else s += String.fromCharCode(c)
    }
    labels.push(s)
    p += l + 1
  }
  return labels.join('.')
}

/**
 * The question as sent upstream: the client's question bytes with ASCII letters lower-cased, so
 * coalesced queries with different case share one upstream query and the answer check is exact.
 */
export function upstreamQuestion (msg: Buffer, q: Query): Buffer {
  // Byte by byte: Buffer#copy of a range makes a view of the source first (an object per query).
  const len = q.questionEnd - HEADER
  const b = Buffer.allocUnsafe(len)
  const nameEnd = len - 4
  for (let i = 0; i < len; i++) {
    const c = msg[HEADER + i]
    b[i] = i < nameEnd && c >= 0x41 && c <= 0x5a ? c | 0x20 : c
  }
  return b
}

/**
 * Builds the query egressd sends upstream: RD set, a fresh ID (filled in by the transport), the
 * lower-cased question and our own OPT (payload size `udpSize`, DO as the client asked).
 */
export function buildUpstreamQuery (question: Buffer, dnssecOk: boolean, udpSize: number): Buffer {
  // Every byte written here (no fill(0) first: for a buffer this small, a call into C++).
  const b = Buffer.allocUnsafe(HEADER + question.length + 11)
  put16(b, 0, 0) // the ID: the transport writes it
  put16(b, 2, FLAG_RD)
  put32(b, 4, 0x00010000) // QDCOUNT 1, ANCOUNT 0
  put32(b, 8, 1) // NSCOUNT 0, ARCOUNT 1: the OPT
  b.set(question, HEADER)
  writeOpt(b, HEADER + question.length, udpSize, dnssecOk, undefined)
  return b
}

/** True when the answer's question section equals `question` (ASCII case-insensitively). */
export function questionMatches (answer: Buffer, question: Buffer): boolean {
  if (answer.length < HEADER + question.length) return false
  if (answer[4] !== 0 || answer[5] !== 1) return false
  const nameEnd = question.length - 4
  for (let i = 0; i < nameEnd; i++) {
    let c = answer[HEADER + i]
    if (c >= 0x41 && c <= 0x5a) c |= 0x20
    if (c !== question[i]) return false
  }
  // QTYPE and QCLASS compare as numbers: a type like 65 (HTTPS) is the byte 'A', not a letter.
  for (let i = nameEnd; i < question.length; i++) if (answer[HEADER + i] !== question[i]) return false
  return true
}

/**
 * An upstream answer made ready to serve: OPT removed from the body (it is rebuilt per client),
 * RA set, TTLs clamped. The cache keeps a copy of its bytes, not the object.
 */
export interface StoredAnswer {
  /** The answer without its OPT record; ID and question case are patched per client. */
  readonly body: Buffer
  /** Our OPT record for EDNS clients: payload size ours, DO and options (e.g. EDE) from upstream. */
  readonly opt: Buffer
  readonly rcode: number
  /** Seconds this answer may be cached (0 = do not cache). */
  readonly lifetime: number
  readonly ancount: number
  /**
   * The upstream's datagram when `body` is its first bytes (prepareAnswer took it over); it may be
   * sent back to the client in place (renderInPlace), once.
   */
  readonly raw: Buffer | undefined
}

export interface TtlPolicy { minTtl: number, maxTtl: number, negativeMaxTtl: number }

/** Why an upstream answer was rejected. */
export type BadAnswer = 'short' | 'not-response' | 'question' | 'format' | 'truncated'

/** Skips a (possibly compressed) name starting at `p`; returns the offset after it, or -1 out of bounds. */
function skipName (b: Buffer, p: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (p >= b.length) return -1
    const l = b[p]
    if (l === 0) return p + 1
    if ((l & 0xc0) === 0xc0) return p + 2 > b.length ? -1 : p + 2
    if (l > 63) return -1
    p += l + 1
  }
  return -1
}

/**
 * Reads a (possibly compressed) name as lower-case dotted text; undefined when malformed. The
 * message starts at `base` in `b` (compression pointers count from there) and ends at `end`.
 */
export function readName (b: Buffer, start: number, base = 0, end = b.length): string | undefined {
  let p = start
  let out = ''
  let wire = 0
  for (let jumps = 0; jumps < 64;) {
    if (p >= end) return undefined
    const l = b[p]
    if (l === 0) return out
    if ((l & 0xc0) === 0xc0) {
      if (p + 2 > end) return undefined
      p = base + (((l & 0x3f) << 8) | b[p + 1])
      jumps++
      continue
    }
    if (l > 63 || p + 1 + l > end) return undefined
    wire += l + 1
    if (wire > MAX_NAME) return undefined
    if (out.length > 0) out += '.'
    out += b.toString('latin1', p + 1, p + 1 + l).toLowerCase()
    p += l + 1
  }
  return undefined
}

/**
 * Validates an upstream answer against the question we sent and prepares it for serving.
 * Runs once per upstream answer (the slow path); cache hits reuse the result. A usable answer
 * that owns its memory is taken over (its bytes are changed in place and kept as the body):
 * callers hand it over and do not read it afterwards.
 */
export function prepareAnswer (answer: Buffer, question: Buffer, ttl: TtlPolicy, udpSize: number): StoredAnswer | BadAnswer {
  if (answer.length < HEADER) return 'short'
  if ((answer[2] & 0x80) === 0) return 'not-response'
  if (!questionMatches(answer, question)) return 'question'
  if ((answer[2] & (FLAG_TC >> 8)) !== 0) return 'truncated'
  const rcode = answer[3] & 0x0f
  const ancount = (answer[6] << 8) | answer[7]
  const nscount = (answer[8] << 8) | answer[9]
  const arcount = (answer[10] << 8) | answer[11]
  const total = ancount + nscount + arcount
  // TTL offsets are collected in a scratch array first (synchronous use), then copied into an
  // array of exactly their number that the stored answer keeps.
  const scratch = ttlScratch
  let n = 0
  let pos = HEADER + question.length
  let optStart = -1
  let additionalBefore = 0
  let optFlags = 0
  let optRdata: Buffer | undefined
  let minTtl = Infinity
  let negTtl = -1
  for (let i = 0; i < total; i++) {
    const owner = pos
    const p = skipName(answer, pos)
    if (p < 0 || p + 10 > answer.length) return 'format'
    const type = (answer[p] << 8) | answer[p + 1]
    const rdlen = (answer[p + 8] << 8) | answer[p + 9]
    const rdata = p + 10
    if (rdata + rdlen > answer.length) return 'format'
    pos = rdata + rdlen
    if (type === QType.OPT) {
      if (i < ancount + nscount || optStart >= 0) return 'format'
      optStart = owner
      additionalBefore = i - ancount - nscount
      optFlags = (answer[p + 6] << 8) | answer[p + 7]
      if (rdlen > 0) optRdata = answer.subarray(rdata, rdata + rdlen)
      continue
    }
    if (optStart >= 0) continue // after the OPT: dropped below (its names may point across the OPT)
    const t = ttlAt(answer, p + 4)
    if (n === scratch.length) return 'format' // more records than a 64 KiB message can hold
    scratch[n++] = p + 4
    if (t < minTtl) minTtl = t
    if (i >= ancount && i < ancount + nscount && type === QType.SOA && negTtl < 0) {
      // RFC 2308 5: the negative TTL is min(SOA TTL, SOA MINIMUM); MINIMUM is the last 4 bytes.
      if (rdlen < 22) return 'format'
      const minimum = ttlField(answer, rdata + rdlen - 4)
      negTtl = Math.min(t, minimum)
    }
  }
  if (pos !== answer.length) return 'format'

  // Lifetime: positive answers live as long as their shortest TTL, negative ones per RFC 2308.
  const negative = rcode === Rcode.NXDOMAIN || (rcode === Rcode.NOERROR && ancount === 0)
  let lifetime = 0
  let cap = ttl.maxTtl
  if (negative) {
    if (negTtl >= 0) lifetime = clamp(negTtl, ttl.minTtl, ttl.negativeMaxTtl)
    cap = ttl.negativeMaxTtl
  } else if (rcode === Rcode.NOERROR && minTtl !== Infinity) {
    lifetime = clamp(minTtl, ttl.minTtl, ttl.maxTtl)
  }

  // Body: the answer without OPT, with RA set (we recurse for the client) and TTLs clamped.
  // The OPT is nearly always the last record. Records after it (additional data only) are dropped
  // with it: cutting the OPT out of the middle would break compression pointers behind it.
  // A datagram as received owns exactly its bytes: it becomes the body in place, with no copy. A
  // view into a larger buffer (a stream's chunk, a pool slab) is copied, so the cache does not
  // keep the rest of that buffer alive.
  const owned = answer.byteOffset === 0 && answer.buffer.byteLength === answer.length
  const kept = optStart >= 0 ? answer.subarray(0, optStart) : answer
  const body = owned ? kept : Buffer.from(kept)
  if (optStart >= 0) put16(body, 10, additionalBefore)
  body[3] |= FLAG_RA
  const floor = negative ? 0 : ttl.minTtl
  for (let i = 0; i < n; i++) {
    const at = scratch[i]
    const raw = ttlField(body, at)
    const c = clamp(raw > 0x7fffffff ? 0 : raw, floor, cap) // RFC 2181 8, as ttlAt
    if (c !== raw) put32(body, at, c)
  }
  const dnssecOk = (optFlags & OPT_DO) !== 0
  const opt = optRdata === undefined ? plainOpt(udpSize, dnssecOk) : buildOpt(udpSize, dnssecOk, optRdata)
  return { body, opt, rcode, lifetime, ancount, raw: owned ? answer : undefined }
}

/** Record offsets of the answer being prepared: a 64 KiB message holds fewer than 6,000 records. */
const ttlScratch = new Int32Array(6554)

/** The TTL field at `at`; RFC 2181 8: a TTL with the top bit set means 0. */
function ttlAt (b: Buffer, at: number): number {
  const t = ttlField(b, at)
  return t > 0x7fffffff ? 0 : t
}

/** The unsigned 32-bit field at `at`. */
function ttlField (b: Buffer, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0
}

// OPT records without options are the same bytes for every answer with the same size and DO bit:
// shared, never written to (renderAnswer copies them). The last one asked for is at hand without
// a map lookup (every answer asks with the same size).
const plainOpts = new Map<number, Buffer>()
let lastOptKey = 0
let lastOpt: Buffer | undefined
function plainOpt (udpSize: number, dnssecOk: boolean): Buffer {
  const k = dnssecOk ? -udpSize - 1 : udpSize
  if (k === lastOptKey && lastOpt !== undefined) return lastOpt
  let b = plainOpts.get(k)
  if (b === undefined) { b = buildOpt(udpSize, dnssecOk); plainOpts.set(k, b) }
  lastOptKey = k
  lastOpt = b
  return b
}

function clamp (v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v
}

/** An OPT RR: root owner, payload size, DO flag, and the given options (RDATA). */
export function buildOpt (udpSize: number, dnssecOk: boolean, rdata?: Buffer): Buffer {
  const b = Buffer.allocUnsafe(optLength(rdata))
  writeOpt(b, 0, udpSize, dnssecOk, rdata)
  return b
}

function optLength (rdata: Buffer | undefined): number {
  return rdata === undefined ? 11 : 11 + rdata.length
}

/**
 * Writes an OPT RR (see buildOpt) at `p`, every byte (`optLength(rdata)` of them). `rcode` is the
 * message's full rcode: its upper 8 bits are the OPT's EXTENDED-RCODE (RFC 6891 6.1.3; the header
 * holds the lower 4).
 */
function writeOpt (b: Buffer, p: number, udpSize: number, dnssecOk: boolean, rdata: Buffer | undefined, rcode = 0): void {
  const rdlen = rdata === undefined ? 0 : rdata.length
  b[p] = 0 // owner: the root
  put16(b, p + 1, QType.OPT)
  put16(b, p + 3, udpSize)
  b[p + 5] = rcode >>> 4 // EXTENDED-RCODE
  b[p + 6] = 0 // VERSION: we implement EDNS version 0
  put16(b, p + 7, dnssecOk ? OPT_DO : 0) // flags
  put16(b, p + 9, rdlen)
  if (rdata !== undefined) b.set(rdata, p + 11)
}

// Plain byte writes: Buffer#writeUInt16BE/32BE check their arguments on every call.
function put16 (b: Buffer, p: number, v: number): void {
  b[p] = v >>> 8
  b[p + 1] = v
}

function put32 (b: Buffer, p: number, v: number): void {
  b[p] = v >>> 24
  b[p + 1] = v >>> 16
  b[p + 2] = v >>> 8
  b[p + 3] = v
}

/** The EDE option (RFC 8914): info-code and UTF-8 extra text. */
export function edeOption (infoCode: number, text: string): Buffer {
  const t = Buffer.from(text, 'utf8')
  const b = Buffer.allocUnsafe(6 + t.length)
  b.writeUInt16BE(EDE_OPTION, 0)
  b.writeUInt16BE(2 + t.length, 2)
  b.writeUInt16BE(infoCode, 4)
  t.copy(b, 6)
  return b
}

/**
 * Renders a fresh upstream answer for one client: its ID, its question bytes (case preserved), its
 * RD bit, and our OPT when it sent EDNS.
 */
export function renderAnswer (a: StoredAnswer, msg: Buffer, q: Query): Buffer {
  const body = a.body
  const blen = body.length
  const opt = a.opt
  const out = Buffer.allocUnsafe(q.edns ? blen + opt.length : blen)
  out.set(body) // TypedArray#set: a memcpy without the cost of a native Buffer#copy call
  if (q.edns) for (let i = 0; i < opt.length; i++) out[blen + i] = opt[i]
  forClient(out, msg, q)
  return out
}

/**
 * renderAnswer without a copy: the client's ID, RD bit and question go into the upstream's own
 * datagram, which is sent as it is (with our OPT written over the upstream's when both are the
 * same size, as they are without options). For the one query that asked upstream, after everything
 * else has read the answer: the answer's bytes are changed. Falls back to renderAnswer.
 */
export function renderInPlace (a: StoredAnswer, msg: Buffer, q: Query): Buffer {
  const raw = a.raw
  const body = a.body
  if (raw === undefined) return renderAnswer(a, msg, q)
  if (!q.edns) {
    forClient(body, msg, q)
    return body
  }
  const opt = a.opt
  const blen = body.length
  if (raw.length !== blen + opt.length) return renderAnswer(a, msg, q)
  for (let i = 0; i < opt.length; i++) raw[blen + i] = opt[i]
  forClient(raw, msg, q)
  return raw
}

/**
 * Renders a cached answer for one client from the bytes `src[at ..]`: the body (`blen` bytes),
 * then our OPT (`olen` bytes), as AnswerCache keeps them. Like renderAnswer, with every TTL
 * decremented by `elapsed` seconds.
 */
export function renderCached (src: Buffer, at: number, blen: number, olen: number, msg: Buffer, q: Query, elapsed: number): Buffer {
  const len = q.edns ? blen + olen : blen
  const out = Buffer.allocUnsafe(len)
  // A short answer byte by byte: a ranged copy would first make a view of the source (an object
  // per hit), for fewer bytes than it takes to set one up.
  if (len <= 256) for (let i = 0; i < len; i++) out[i] = src[at + i]
  else out.set(src.subarray(at, at + len))
  if (elapsed > 0) {
    // The records are known to be well formed (prepareAnswer checked them before they were stored).
    const total = ((out[6] << 8) | out[7]) + ((out[8] << 8) | out[9]) + ((out[10] << 8) | out[11])
    let p = q.questionEnd
    for (let i = 0; i < total; i++) {
      p = skipName(out, p)
      const o = p + 4
      const v = ((out[o] << 24) | (out[o + 1] << 16) | (out[o + 2] << 8) | out[o + 3]) - elapsed
      if (v > 0) { out[o] = v >>> 24; out[o + 1] = v >>> 16; out[o + 2] = v >>> 8; out[o + 3] = v } else { out[o] = 0; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 0 }
      p += 10 + ((out[p + 8] << 8) | out[p + 9])
    }
  }
  forClient(out, msg, q)
  return out
}

/** The client's ID, RD bit and question bytes into an answer; ARCOUNT counts the OPT when it sent EDNS. */
function forClient (out: Buffer, msg: Buffer, q: Query): void {
  out[0] = msg[0]
  out[1] = msg[1]
  out[2] = (out[2] & 0xfe) | (msg[2] & 0x01) // RD as the client sent it
  for (let i = HEADER, end = q.questionEnd; i < end; i++) out[i] = msg[i]
  if (q.edns) {
    const ar = ((out[10] << 8) | out[11]) + 1
    out[10] = ar >>> 8
    out[11] = ar
  }
}

/**
 * A response with no records, built from the query bytes: header (ID, opcode, RD, CD from the
 * client; QR, RA and `rcode` set), the client's question, and an OPT when the client sent EDNS,
 * optionally with an Extended DNS Error option. An extended rcode (BADVERS) needs the client's
 * EDNS: its upper bits go into the OPT.
 */
export function emptyResponse (msg: Buffer, q: Query, rcode: number, udpSize: number, ede?: Buffer): Buffer {
  const qlen = q.questionEnd - HEADER
  const out = Buffer.allocUnsafe(HEADER + qlen + (q.edns ? optLength(ede) : 0))
  out[0] = msg[0]
  out[1] = msg[1]
  out[2] = 0x80 | (msg[2] & 0x79) // QR, opcode and RD from the query; AA and TC clear
  out[3] = (FLAG_RA | (msg[3] & FLAG_CD) | (rcode & 0x0f))
  put32(out, 4, 0x00010000) // QDCOUNT 1, ANCOUNT 0
  put32(out, 8, q.edns ? 1 : 0) // NSCOUNT 0, ARCOUNT
  for (let i = HEADER; i < q.questionEnd; i++) out[i] = msg[i]
  if (q.edns) writeOpt(out, HEADER + qlen, udpSize, q.do, ede, rcode)
  return out
}

/**
 * TXT RDATA for `text`: its UTF-8 bytes as character-strings of at most 255 bytes each (RFC 1035
 * 3.3.14). Built once (config), not per query.
 */
export function txtRdata (text: string): Buffer {
  const t = Buffer.from(text, 'utf8')
  const parts: Buffer[] = []
  for (let i = 0; i < t.length || i === 0; i += 255) {
    const chunk = t.subarray(i, i + 255)
    parts.push(Buffer.from([chunk.length]), chunk)
  }
  return Buffer.concat(parts)
}

/**
 * An authoritative answer with one TXT record, built from the query bytes: owner the question
 * name, class the question's (CH for version.bind), TTL 0, RDATA `rdata` (see txtRdata); an OPT
 * when the client sent EDNS. For what egressd answers about itself.
 */
export function txtResponse (msg: Buffer, q: Query, rdata: Buffer, udpSize: number): Buffer {
  const qlen = q.questionEnd - HEADER
  const anLen = 12 + rdata.length
  const out = Buffer.allocUnsafe(HEADER + qlen + anLen + (q.edns ? optLength(undefined) : 0))
  out[0] = msg[0]
  out[1] = msg[1]
  out[2] = 0x80 | (msg[2] & 0x79) | 0x04 // QR, opcode and RD from the query; AA
  out[3] = FLAG_RA | (msg[3] & FLAG_CD)
  put32(out, 4, 0x00010001) // QDCOUNT 1, ANCOUNT 1
  put32(out, 8, q.edns ? 1 : 0) // NSCOUNT 0, ARCOUNT
  for (let i = HEADER; i < q.questionEnd; i++) out[i] = msg[i]
  let p = HEADER + qlen
  put16(out, p, 0xc00c) // owner: pointer to the question name
  put16(out, p + 2, QType.TXT)
  put16(out, p + 4, q.qclass)
  put32(out, p + 6, 0)
  put16(out, p + 10, rdata.length)
  out.set(rdata, p + 12)
  p += anLen
  if (q.edns) writeOpt(out, p, udpSize, q.do, undefined)
  return out
}

/**
 * The Extended DNS Error options (RFC 8914) in an OPT record (as StoredAnswer.opt keeps it), as
 * option bytes ready for emptyResponse's `ede`; undefined when it has none. For the failure path
 * only (it allocates).
 */
export function edeOptions (opt: Buffer): Buffer | undefined {
  if (opt.length < 11) return undefined
  const end = Math.min(opt.length, 11 + ((opt[9] << 8) | opt[10]))
  const found: Buffer[] = []
  for (let p = 11; p + 4 <= end;) {
    const code = (opt[p] << 8) | opt[p + 1]
    const next = p + 4 + ((opt[p + 2] << 8) | opt[p + 3])
    if (next > end) break
    if (code === EDE_OPTION && next - p >= 6) found.push(opt.subarray(p, next))
    p = next
  }
  return found.length === 0 ? undefined : Buffer.concat(found)
}

/** A 12-byte answer for a packet whose header is readable but whose body is not (FORMERR/NOTIMP). */
export function headerOnlyResponse (msg: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER)
  out[0] = msg[0]
  out[1] = msg[1]
  out[2] = 0x80 | (msg[2] & 0x79)
  out[3] = FLAG_RA | (rcode & 0x0f)
  return out
}

/**
 * The UDP-sized version of a response: unchanged when it fits in `limit` bytes, else header and
 * question (and OPT for EDNS clients) with TC set, so the client retries over TCP (RFC 7766 / 6891).
 */
export function truncateForUdp (resp: Buffer, msg: Buffer, q: Query, limit: number, udpSize: number): Buffer {
  if (resp.length <= limit) return resp
  const out = emptyResponse(msg, q, resp[3] & 0x0f, udpSize)
  out[2] = resp[2] | (FLAG_TC >> 8)
  out[3] = resp[3]
  return out
}


/**
 * What answer policy looks at: CNAME/DNAME targets and every address in the answer section. One
 * instance is filled again for each answer (synchronous use), so inspecting allocates nothing
 * beyond the names of CNAME chains.
 */
export class AnswerTargets {
  /** The first `nameCount` entries are this answer's (the arrays keep their capacity between answers). */
  readonly names: string[] = []
  nameCount = 0
  /** A records and ipv4hints as 32-bit values: the first `v4Count`. */
  readonly v4: number[] = []
  v4Count = 0
  /** AAAA records and ipv6hints as text: the first `v6Count`. */
  readonly v6: string[] = []
  v6Count = 0
}

const SVC_IPV4HINT = 4
const SVC_IPV6HINT = 6

function ipv4Value (b: Buffer, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0
}

function ipv6Text (b: Buffer, p: number): string {
  let s = ''
  for (let i = 0; i < 16; i += 2) s += (i === 0 ? '' : ':') + ((b[p + i] << 8) | b[p + i + 1]).toString(16)
  return s
}

/**
 * Walks the answer section of a stored answer (already validated by prepareAnswer) and collects
 * into `out` (emptied first) CNAME and DNAME targets, A and AAAA addresses, and the ipv4hint/ipv6hint
 * of HTTPS and SVCB records (RFC 9460), which browsers may connect to without another lookup.
 */
export function answerTargets (a: StoredAnswer, out: AnswerTargets = new AnswerTargets()): AnswerTargets {
  return answerTargetsIn(a.body, 0, a.body.length, out)
}

/** answerTargets for an answer body kept at `b[at .. end]` (compression pointers count from `at`). */
export function answerTargetsIn (b: Buffer, at: number, end: number, out: AnswerTargets): AnswerTargets {
  const { names, v4, v6 } = out
  out.nameCount = out.v4Count = out.v6Count = 0
  const ancount = (b[at + 6] << 8) | b[at + 7]
  let p = skipName(b, at + HEADER)
  if (p < 0) return out
  p += 4
  for (let i = 0; i < ancount; i++) {
    p = skipName(b, p)
    if (p < 0 || p + 10 > end) break
    const type = (b[p] << 8) | b[p + 1]
    const rdlen = (b[p + 8] << 8) | b[p + 9]
    const rdata = p + 10
    p = rdata + rdlen
    if (p > end) break
    if (type === QType.A && rdlen === 4) {
      v4[out.v4Count++] = ipv4Value(b, rdata)
    } else if (type === QType.AAAA && rdlen === 16) {
      v6[out.v6Count++] = ipv6Text(b, rdata)
    } else if (type === QType.CNAME || type === 39 /* DNAME */) {
      const n = readName(b, rdata, at, end)
      if (n !== undefined) names[out.nameCount++] = n
    } else if ((type === QType.HTTPS || type === QType.SVCB) && rdlen > 3) {
      // SvcPriority (2), TargetName (uncompressed), then SvcParams: key (2), length (2), value.
      const params = skipName(b, rdata + 2)
      if (params < 0) continue
      const target = readName(b, rdata + 2, at, end)
      if (target !== undefined && target !== '') names[out.nameCount++] = target
      for (let k = params; k + 4 <= p;) {
        const key = (b[k] << 8) | b[k + 1]
        const len = (b[k + 2] << 8) | b[k + 3]
        const v = k + 4
        if (v + len > p) break
        if (key === SVC_IPV4HINT) for (let q = v; q + 4 <= v + len; q += 4) v4[out.v4Count++] = ipv4Value(b, q)
        if (key === SVC_IPV6HINT) for (let q = v; q + 16 <= v + len; q += 16) v6[out.v6Count++] = ipv6Text(b, q)
        k = v + len
      }
    }
  }
  return out
}

/** How a blocked query is answered (BlockAction less `monitor`, which answers normally). */
export type BlockAnswer = 'nxdomain' | 'refused' | 'nodata' | 'null' | 'sinkhole'

export interface BlockAnswerOptions {
  /** TTL of the records, and the negative TTL through the SOA's MINIMUM. */
  readonly ttl: number
  /** Addresses of the `sinkhole` answer: 4 and 16 bytes. */
  readonly sinkhole4: Buffer
  readonly sinkhole6: Buffer
  /** Our EDNS payload size for the OPT. */
  readonly udpSize: number
}

const NULL4 = Buffer.alloc(4)
const NULL6 = Buffer.alloc(16)

/**
 * A block answer built from the query bytes: NXDOMAIN or NODATA with a synthetic SOA (owner = the
 * query name, MINIMUM = ttl, so resolvers cache the block for `ttl`), REFUSED, or an A/AAAA record
 * with the null or sinkhole address (other types get NODATA), plus OPT with the EDE for EDNS clients.
 */
export function blockResponse (msg: Buffer, q: Query, action: BlockAnswer, o: BlockAnswerOptions, ede: Buffer | undefined): Buffer {
  let rcode: number = Rcode.NOERROR
  let address: Buffer | undefined
  let soa = true
  if (action === 'nxdomain') rcode = Rcode.NXDOMAIN
  else if (action === 'refused') { rcode = Rcode.REFUSED; soa = false }
  else if ((action === 'null' || action === 'sinkhole') && q.qclass === 1 && (q.qtype === QType.A || q.qtype === QType.AAAA)) {
    address = q.qtype === QType.A ? (action === 'null' ? NULL4 : o.sinkhole4) : (action === 'null' ? NULL6 : o.sinkhole6)
    soa = false
  }
  const qlen = q.questionEnd - HEADER
  const anLen = address === undefined ? 0 : 12 + address.length
  const nsLen = soa ? 12 + 22 : 0
  // allocUnsafe (pooled) and every byte written below: this runs for every blocked query.
  const out = Buffer.allocUnsafe(HEADER + qlen + anLen + nsLen + (q.edns ? optLength(ede) : 0))
  out[0] = msg[0]
  out[1] = msg[1]
  out[2] = 0x80 | (msg[2] & 0x79)
  out[3] = FLAG_RA | (msg[3] & FLAG_CD) | rcode
  out[4] = 0
  out[5] = 1
  out[6] = 0
  out[7] = address === undefined ? 0 : 1
  out[8] = 0
  out[9] = soa ? 1 : 0
  out[10] = 0
  out[11] = q.edns ? 1 : 0
  for (let i = HEADER; i < q.questionEnd; i++) out[i] = msg[i]
  let p = HEADER + qlen
  if (address !== undefined) {
    put16(out, p, 0xc00c) // owner: pointer to the question name
    put16(out, p + 2, q.qtype)
    put16(out, p + 4, 1)
    put32(out, p + 6, o.ttl)
    put16(out, p + 10, address.length)
    out.set(address, p + 12)
    p += anLen
  }
  if (soa) {
    put16(out, p, 0xc00c)
    put16(out, p + 2, QType.SOA)
    put16(out, p + 4, 1)
    put32(out, p + 6, o.ttl)
    put16(out, p + 10, 22)
    // MNAME and RNAME are the root (one zero byte each), then SERIAL REFRESH RETRY EXPIRE MINIMUM.
    out[p + 12] = 0
    out[p + 13] = 0
    put32(out, p + 14, 1)
    put32(out, p + 18, 3600)
    put32(out, p + 22, 600)
    put32(out, p + 26, 86400)
    put32(out, p + 30, o.ttl)
    p += nsLen
  }
  if (q.edns) writeOpt(out, p, o.udpSize, q.do, ede)
  return out
}
