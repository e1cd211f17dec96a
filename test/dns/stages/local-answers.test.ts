// The local-answers stage: BADVERS, CHAOS and zone transfers answered here; everything else goes
// on to `next` (other classes than IN and CH too).

import t, { type Test } from 'tap'
import type { DnsConfig } from '../../../src/config/types.js'
import { DnsMetrics, type LocalAnswerKind } from '../../../src/dns/metrics.js'
import { localAnswersStage } from '../../../src/dns/stages/local-answers.js'
import { cfg, context, decoded, fakeNext } from './helpers.js'

const NEXT = { kind: 'refused', reason: 'from next' } as const

interface Row {
  readonly label: string
  readonly name: string
  readonly type?: string
  readonly class?: string
  readonly edns?: number
  /** undefined: next is called. */
  readonly rcode?: number
  readonly result?: 'refused' | 'badvers' | 'local'
  readonly counted?: LocalAnswerKind
  readonly ede?: number[]
  readonly txt?: string
}

const rows: Row[] = [
  { label: 'IN A, no EDNS', name: 'innocent.example' },
  { label: 'IN A, EDNS 0', name: 'innocent.example', edns: 0 },
  { label: 'IN TXT version.bind', name: 'version.bind', type: 'TXT' },
  { label: 'HS class', name: 'x.example', class: 'HS', edns: 0 },
  { label: 'EDNS version 1', name: 'innocent.example', edns: 1, rcode: 16, result: 'badvers', counted: 'badvers' },
  { label: 'EDNS version 1, CHAOS', name: 'version.bind', type: 'TXT', class: 'CH', edns: 1, rcode: 16, result: 'badvers', counted: 'badvers' },
  { label: 'EDNS version 1, AXFR', name: 'example', type: 'AXFR', edns: 1, rcode: 16, result: 'badvers', counted: 'badvers' },
  { label: 'CH TXT version.bind', name: 'version.bind', type: 'TXT', class: 'CH', rcode: 0, result: 'local', counted: 'chaos', txt: 'egressd test' },
  { label: 'CH ANY id.server', name: 'id.server', type: 'ANY', class: 'CH', edns: 0, rcode: 0, result: 'local', counted: 'chaos', txt: 'egressd test' },
  { label: 'CH TXT of another name', name: 'version.example', type: 'TXT', class: 'CH', rcode: 5, result: 'refused', counted: 'chaos' },
  { label: 'CH A version.bind', name: 'version.bind', type: 'A', class: 'CH', rcode: 5, result: 'refused', counted: 'chaos' },
  { label: 'AXFR', name: 'example', type: 'AXFR', edns: 0, rcode: 5, result: 'refused', counted: 'zone-transfer', ede: [21] },
  { label: 'IXFR, no EDNS', name: 'example', type: 'IXFR', rcode: 5, result: 'refused', counted: 'zone-transfer', ede: [] }
]

function run (t: Test, dns: DnsConfig, chaos: string | undefined): void {
  const metrics = new DnsMetrics()
  const stage = localAnswersStage(dns, metrics)
  for (const row of rows) {
    const next = fakeNext(NEXT)
    const before = { ...metrics.localAnswers }
    const o = stage(next)(context({ name: row.name, type: row.type, class: row.class, edns: row.edns }))
    if (row.rcode === undefined) {
      t.equal(next.calls, 1, `${row.label}: next called`)
      t.equal(o, NEXT, `${row.label}: next's outcome`)
      t.same(metrics.localAnswers, before, `${row.label}: not counted`)
      continue
    }
    // Without dns.chaos.answer, the CHAOS names egressd would answer are REFUSED.
    const answered = row.txt !== undefined && chaos !== undefined
    const rcode = row.txt !== undefined && !answered ? 5 : row.rcode
    t.equal(next.calls, 0, `${row.label}: next not called`)
    if (o === 0 || o.kind !== 'local') { t.fail(`${row.label}: a local answer`); continue }
    t.equal(o.result, row.txt !== undefined && !answered ? 'refused' : row.result, `${row.label}: result`)
    const a = decoded(o.answer)
    t.equal(a.rcode, rcode, `${row.label}: rcode ${rcode}`)
    if (row.ede !== undefined) t.same(a.ede, row.ede, `${row.label}: EDE`)
    if (answered) t.same((a.answers[0] as { data: Buffer[] }).data.map(String), [chaos], `${row.label}: the configured text`)
    t.equal(metrics.localAnswers[row.counted!], before[row.counted!] + 1, `${row.label}: counted as ${row.counted}`)
  }
}

t.test('rows of query -> answered here (rcode, result, counted) or next called, with dns.chaos.answer', async t => {
  run(t, { ...cfg.dns, chaos: { answer: 'egressd test' } }, 'egressd test')
})

t.test('the same rows without dns.chaos.answer: CHAOS names are REFUSED too', async t => {
  run(t, { ...cfg.dns, chaos: { answer: undefined } }, undefined)
})
