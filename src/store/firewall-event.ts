// Evidence from the firewall as block-log events: a connection attempt the firewall rejected
// (a FirewallHit, read back from nft's evidence sets and already rate-limited per client and
// destination) becomes one BlockEvent with matched 'firewall', so it is stored, searched, exported
// and tailed like a blocked query, and a device whose app uses hard-coded addresses shows up in the
// block log and the discovery report although it never asked DNS.
//
// The fields a SIEM needs to rebuild the discovery report are on every row (API JSON, CSV, the
// live tail, and the info log line of firewallLogFields): matched, category, client, value (the
// destination), port, proto, attempts.

import type { FirewallHit } from '../learn/types.js'
import type { BlockEvent } from './block-event.js'

/** What the daemon knows about a hit beyond the packet: the policy's view of its destination and client. */
export interface FirewallEventInfo {
  /** The category whose set the destination is in. */
  readonly category: string
  /** The nft set that rejected it ('learned_whatsapp_v4', 'telegram_v4'). */
  readonly set: string
  /** The name egressd learned the destination from; undefined for a published range or an unknown name. */
  readonly name?: string
  /** The client's group. */
  readonly group: string
}

/**
 * The block event for a rejected connection: qname is the name the destination was learned from
 * (else the destination address), qtype 0, value the destination, action 'block', list the nft set.
 */
export function firewallEvent (hit: FirewallHit, info: FirewallEventInfo): BlockEvent {
  const name = info.name?.trim().toLowerCase().replace(/\.$/, '')
  return {
    ts: hit.ts,
    client: hit.client,
    group: info.group,
    qname: name === undefined || name === '' ? hit.destination : name,
    qtype: 0,
    matched: 'firewall',
    value: hit.destination,
    category: info.category,
    action: 'block',
    list: info.set,
    port: Number.isInteger(hit.port) && hit.port >= 0 ? hit.port : 0,
    proto: hit.proto,
    attempts: Number.isInteger(hit.attempts) && hit.attempts >= 1 ? hit.attempts : 1
  }
}

/** The fields of the info log line for a firewall event (`log.info(firewallLogFields(e), 'blocked at the firewall')`). */
export function firewallLogFields (e: BlockEvent): Record<string, unknown> {
  return {
    client: e.client, group: e.group, qname: e.qname, action: e.action, category: e.category, matched: e.matched,
    value: e.value, port: e.port, proto: e.proto, attempts: e.attempts, list: e.list
  }
}
