// The block event: what the DNS thread hands to the block log for one policy match (or, with
// store.logQueries: all, one allowed query; or a connection the firewall rejected, see
// firewall-event.ts), and the row shape searches return. Plain data only, so events cross to the
// writer worker by structured clone.

import type { BlockAction } from '../config/types.js'
import type { MatchedPart } from '../policy/engine.js'

/** 'block': a connection the firewall rejected (matched 'firewall'). */
export type EventAction = BlockAction | 'allow' | 'block'
/** 'firewall': a rejected connection attempt to a banned service's address, not a query. */
export type EventMatch = MatchedPart | 'none' | 'firewall'

export interface BlockEvent {
  /** Milliseconds since the epoch. */
  readonly ts: number
  readonly client: string
  readonly group: string
  /** Normalized query name (lower case, no trailing dot). */
  readonly qname: string
  readonly qtype: number
  /** What matched: the query name, a CNAME target, an answer address; `none` for an allowed query. */
  readonly matched: EventMatch
  /** The name or address that matched ('' for an allowed query). */
  readonly value: string
  /** '' for an allowed query. */
  readonly category: string
  readonly action: EventAction
  readonly list?: string
  readonly line?: number
  readonly rule?: string
  /** Version of the list the rule came from (first 16 hex digits of the SHA-256 of its text). */
  readonly listHash?: string
  /** Allowed queries: the upstream's rcode and the time to answer. */
  readonly rcode?: number
  readonly latencyMs?: number
  /** Firewall events: the destination port (0 for protocols without ports). */
  readonly port?: number
  /** Firewall events: the protocol ('tcp', 'udp', or another as nft names it). */
  readonly proto?: string
  /** Firewall events: rejected packets this event stands for (absent, read as 1, for DNS events). */
  readonly attempts?: number
}

/** One stored event as searches return it (API, CLI, exports). */
export interface BlockRow {
  readonly id: number
  /** ISO 8601, UTC, milliseconds. */
  readonly time: string
  readonly ts: number
  readonly client: string
  readonly group: string
  readonly qname: string
  /** Type mnemonic ('A', 'HTTPS') or 'TYPE<n>'. */
  readonly qtype: string
  readonly matched: EventMatch
  readonly value: string
  readonly category: string
  readonly action: string
  readonly list: string | null
  readonly line: number | null
  readonly rule: string | null
  readonly listHash: string | null
  readonly rcode: number | null
  readonly latencyMs: number | null
  /** Firewall events: destination port, protocol, rejected packets; null for DNS events. */
  readonly port: number | null
  readonly proto: string | null
  readonly attempts: number | null
}

/** Column order of CSV exports (and of BlockRow). */
export const ROW_COLUMNS: ReadonlyArray<keyof BlockRow> = [
  'id', 'time', 'ts', 'client', 'group', 'qname', 'qtype', 'matched', 'value', 'category', 'action',
  'list', 'line', 'rule', 'listHash', 'rcode', 'latencyMs', 'port', 'proto', 'attempts'
]

/** How `matched` is stored (events.matched); never renumber. */
export const MATCH_CODES: Readonly<Record<EventMatch, number>> = { none: 0, qname: 1, cname: 2, address: 3, firewall: 4 }
export const MATCH_NAMES: readonly EventMatch[] = ['none', 'qname', 'cname', 'address', 'firewall']

/** 'www.example.org' → 'org.example.www.' (the form suffix searches run on). */
export function reverseName (name: string): string {
  return name.split('.').reverse().join('.') + '.'
}
