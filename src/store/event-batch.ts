// A batch of block events in columns: the numbers of each event in one Float64Array (STRIDE slots
// per event) and each distinct string once. The DNS thread appends events one at a time (a few Map
// lookups and array stores, so handing a batch to the writer thread is one memcpy, not a
// serialization of thousands of objects that would stall the event loop), and the writer thread
// interns each string once per batch instead of once per event.

import { MATCH_CODES, type BlockEvent } from './block-event.js'

/** Slot of each field in an event's STRIDE numbers; -1 stands for "absent" in optional ones. */
export const F = {
  ts: 0, client: 1, group: 2, qname: 3, qtype: 4, matched: 5, value: 6, category: 7, action: 8,
  list: 9, line: 10, rule: 11, listHash: 12, rcode: 13, latencyMs: 14, port: 15, proto: 16, attempts: 17
} as const
export const STRIDE = 18

/** What crosses to the writer thread: plain data (a typed array and a string array). */
export interface EventBatch {
  readonly n: number
  readonly nums: Float64Array
  /** String fields hold indexes into this array. */
  readonly strings: readonly string[]
}

export class EventBatchBuilder {
  #nums = new Float64Array(STRIDE * 256)
  #n = 0
  readonly #strings: string[] = []
  readonly #codes = new Map<string, number>()
  /**
   * Per field, the last string coded and its code: consecutive events mostly share the client,
   * category, list, rule and action, and a string comparison is cheaper than a Map lookup.
   */
  readonly #lastString: string[] = new Array<string>(STRIDE).fill('')
  readonly #lastCode = new Int32Array(STRIDE).fill(-1)

  get length (): number { return this.#n }

  push (e: BlockEvent): void {
    if ((this.#n + 1) * STRIDE > this.#nums.length) {
      const bigger = new Float64Array(this.#nums.length * 2)
      bigger.set(this.#nums)
      this.#nums = bigger
    }
    const a = this.#nums
    const o = this.#n * STRIDE
    a[o + F.ts] = e.ts
    a[o + F.client] = this.#code(F.client, e.client)
    a[o + F.group] = this.#code(F.group, e.group)
    a[o + F.qname] = this.#code(F.qname, e.qname)
    a[o + F.qtype] = e.qtype
    a[o + F.matched] = MATCH_CODES[e.matched] ?? 0
    a[o + F.value] = e.value === '' ? -1 : this.#code(F.value, e.value)
    a[o + F.category] = this.#code(F.category, e.category)
    a[o + F.action] = this.#code(F.action, e.action)
    a[o + F.list] = e.list === undefined ? -1 : this.#code(F.list, e.list)
    a[o + F.line] = e.line ?? -1
    a[o + F.rule] = e.rule === undefined ? -1 : this.#code(F.rule, e.rule)
    a[o + F.listHash] = e.listHash === undefined ? -1 : this.#code(F.listHash, e.listHash)
    a[o + F.rcode] = e.rcode ?? -1
    a[o + F.latencyMs] = e.latencyMs ?? -1
    a[o + F.port] = e.port ?? -1
    a[o + F.proto] = e.proto === undefined ? -1 : this.#code(F.proto, e.proto)
    a[o + F.attempts] = e.attempts ?? -1
    this.#n++
  }

  /** The batch so far, copied to its exact size. */
  done (): EventBatch {
    return { n: this.#n, nums: this.#nums.slice(0, this.#n * STRIDE), strings: this.#strings }
  }

  #code (field: number, s: string): number {
    if (s === this.#lastString[field] && this.#lastCode[field] >= 0) return this.#lastCode[field]
    let c = this.#codes.get(s)
    if (c === undefined) {
      c = this.#strings.length
      this.#strings.push(s)
      this.#codes.set(s, c)
    }
    this.#lastString[field] = s
    this.#lastCode[field] = c
    return c
  }
}

export function toBatch (events: readonly BlockEvent[]): EventBatch {
  const b = new EventBatchBuilder()
  for (const e of events) b.push(e)
  return b.done()
}
