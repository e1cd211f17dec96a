// Column batches: every event read back from (nums, strings) equals what was pushed, whatever
// repeats from one event to the next and whichever field a string appears in.

import t from 'tap'
import type { BlockEvent } from '../../src/store/block-event.js'
import { F, STRIDE, toBatch } from '../../src/store/event-batch.js'

const events: BlockEvent[] = []
for (let i = 0; i < 500; i++) {
  events.push({
    ts: 1_700_000_000_000 + i,
    client: i % 7 === 0 ? '10.0.0.2' : '10.0.0.1', // runs of the same client, then a change
    group: 'default',
    qname: i % 3 === 0 ? 'telegram.org' : `x${i}.telegram.org`,
    qtype: i % 2 === 0 ? 1 : 28,
    matched: 'qname',
    // The same string in another field than before: codes are shared, memos are per field.
    value: i % 5 === 0 ? '10.0.0.1' : (i % 3 === 0 ? 'telegram.org' : `x${i}.telegram.org`),
    category: i % 11 === 0 ? 'whatsapp' : 'telegram',
    action: 'nxdomain',
    list: i % 4 === 0 ? undefined : 'telegram/domains.txt',
    line: i % 4 === 0 ? undefined : 3,
    rule: i % 4 === 0 ? undefined : 'telegram.org',
    listHash: i % 4 === 0 ? undefined : 'abcdef0123456789'
  })
}

t.test('a batch reads back as the events pushed', async t => {
  const b = toBatch(events)
  t.equal(b.n, events.length)
  t.equal(b.nums.length, events.length * STRIDE)
  t.equal(new Set(b.strings).size, b.strings.length, 'each distinct string once')
  const str = (c: number): string | undefined => c < 0 ? undefined : b.strings[c]
  let mismatches = 0
  events.forEach((e, i) => {
    const o = i * STRIDE
    const back = {
      ts: b.nums[o + F.ts],
      client: str(b.nums[o + F.client]),
      group: str(b.nums[o + F.group]),
      qname: str(b.nums[o + F.qname]),
      qtype: b.nums[o + F.qtype],
      value: str(b.nums[o + F.value]),
      category: str(b.nums[o + F.category]),
      action: str(b.nums[o + F.action]),
      list: str(b.nums[o + F.list]),
      rule: str(b.nums[o + F.rule]),
      listHash: str(b.nums[o + F.listHash])
    }
    const want = { ts: e.ts, client: e.client, group: e.group, qname: e.qname, qtype: e.qtype, value: e.value, category: e.category, action: e.action, list: e.list, rule: e.rule, listHash: e.listHash }
    if (JSON.stringify(back) !== JSON.stringify(want)) mismatches++
  })
  t.equal(mismatches, 0)
})
