// Counters of the DNS path: plain numeric fields, incremented on the hot path without lookups.
// The management API renders them at /metrics; tests read them directly.

import { AnswerTimes } from './answer-time.js'
import { OUTCOME_KINDS, type OutcomeKind } from './outcome-kind.js'
import { MALFORMED_KINDS, type Malformed } from './wire.js'
import type { DropReason } from './upstream/transport.js'

export type { OutcomeKind } from './outcome-kind.js'

/**
 * What became of a query, by protocol: a pipeline outcome, or a malformed packet answered FORMERR/NOTIMP
 * or dropped; `badvers` an EDNS version above 0 (RFC 6891), `local` an answer about egressd itself
 * (dns.chaos.answer for version.bind and the like).
 */
export type QueryResult = OutcomeKind | 'formerr' | 'notimp' | 'dropped' | 'badvers' | 'local'
export const QUERY_RESULTS: readonly QueryResult[] = ['resolved', 'cached', 'blocked', 'servfail', 'refused', 'formerr', 'notimp', 'dropped', 'badvers', 'local']

/**
 * Queries egressd answers itself before cache, policy and upstream: an EDNS version above 0
 * (BADVERS), a CHAOS-class question (version.bind, ...: REFUSED or dns.chaos.answer), a zone
 * transfer (AXFR/IXFR: REFUSED).
 */
export type LocalAnswerKind = 'badvers' | 'chaos' | 'zone-transfer'
export const LOCAL_ANSWER_KINDS: readonly LocalAnswerKind[] = ['badvers', 'chaos', 'zone-transfer']

function zeroes<K extends string> (keys: readonly K[]): Record<K, number> {
  const o = {} as Record<K, number>
  for (const k of keys) o[k] = 0
  return o
}

export class DnsMetrics {
  readonly queries = { udp: 0, tcp: 0 }
  readonly outcomes: Record<OutcomeKind, number> = zeroes(OUTCOME_KINDS)
  /** Every query by the protocol it came in on and what became of it (for /metrics). */
  readonly results: Record<'udp' | 'tcp', Record<QueryResult, number>> = { udp: zeroes(QUERY_RESULTS), tcp: zeroes(QUERY_RESULTS) }
  /** Client packets that were not queries we serve, by kind (FORMERR/NOTIMP answered, or dropped). */
  readonly malformed: Record<Malformed, number> = zeroes(MALFORMED_KINDS)
  /** Packets from (or claiming to be from) upstreams that were thrown away (RFC 5452 checks). */
  readonly upstreamDropped: Record<DropReason, number> = zeroes(['unknown-id', 'wrong-question', 'short'])
  upstreamErrors = 0
  /** SERVFAIL answers from upstreams (each also counts in that upstream's failures). */
  upstreamServfails = 0
  upstreamBadAnswers = 0
  upstreamTcpRetries = 0
  /** Client queries that joined an identical upstream query already in flight. */
  coalesced = 0
  /** Queries refused because too many distinct upstream queries were in flight. */
  overloaded = 0
  /** Queries refused because their client is not in dns.allowClients. */
  refusedClients = 0
  /** Queries answered by egressd itself before cache, policy and upstream, by kind. */
  readonly localAnswers: Record<LocalAnswerKind, number> = zeroes(LOCAL_ANSWER_KINDS)
  /** UDP answers cut to header + question with TC set (the client retries over TCP). */
  truncated = 0
  /** UDP answers that could not be sent (e.g. the socket buffer refused them). */
  udpSendErrors = 0
  /**
   * Client TCP connections by event: accepted; rejected (dns.tcp.maxConnections full); clientLimited
   * (closed at once: its address held dns.tcp.maxConnectionsPerClient); idleClosed; errors;
   * writePaused (reading paused: more than dns.tcp.maxQueuedBytesPerConnection of answers unsent);
   * stuckClosed (closed: its answers did not drain within dns.tcp.stuckTimeoutMs).
   */
  readonly tcp = { accepted: 0, rejected: 0, clientLimited: 0, idleClosed: 0, errors: 0, writePaused: 0, stuckClosed: 0 }
  /** Policy matches by category: blocked, and `monitor` matches that were answered normally. */
  readonly blockedByCategory = new Map<string, number>()
  readonly monitoredByCategory = new Map<string, number>()
  /** Connection attempts rejected at the firewall (evidence), by category. */
  readonly firewallByCategory = new Map<string, number>()
  /** Answer time to clients by outcome (a histogram read at scrape time). */
  readonly answerTimes = new AnswerTimes()
}
