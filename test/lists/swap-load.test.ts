// DNS load during list swaps: a bounded loop of queries (at most 2000, at most 10 s) runs while the
// list is replaced several times. Every query must get an answer, every listed name must be blocked
// and every unlisted one answered by the upstream: no failed and no unfiltered answer at any swap.

import t from 'tap'
import dgram from 'node:dgram'
import dnsPacket from 'dns-packet'
import { firstAttempts, listDaemon, startWorld, V1, V2 } from './fixtures.js'
import { startListServer } from './list-server.js'

/** A decoded reply (dns-packet's Packet type leaves out rcode). */
type Reply = dnsPacket.Packet & { rcode?: string }

t.test('no failed or unfiltered answer while the list is swapped', async t => {
  const world = await startWorld()
  t.teardown(() => world.close())
  const server = await startListServer(world.cert)
  t.teardown(() => server.close())
  server.set('/list.txt', { body: V1 })
  const td = await listDaemon(world, { source: { url: server.url('/list.txt'), caFile: world.pki.caFile } })
  t.teardown(() => td.close())
  await firstAttempts(td)
  const firstGeneration = td.daemon.policy.engine.generation

  const sock = dgram.createSocket('udp4')
  t.teardown(() => sock.close())
  const pending = new Map<number, { name: string, resolve: (r: Reply | undefined) => void }>()
  sock.on('message', msg => {
    const p = dnsPacket.decode(msg) as Reply
    const q = pending.get(p.id ?? -1)
    if (q !== undefined) { pending.delete(p.id ?? -1); q.resolve(p) }
  })
  let nextId = 1
  const ask = (name: string): Promise<Reply | undefined> => new Promise(resolve => {
    const id = nextId++ & 0xffff
    const timer = setTimeout(() => { pending.delete(id); resolve(undefined) }, 2000)
    pending.set(id, { name, resolve: p => { clearTimeout(timer); resolve(p) } })
    sock.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }] }), td.port, td.host)
  })

  const problems: string[] = []
  let queries = 0
  let blockedSeen = 0
  let answeredSeen = 0
  let swapping = true
  const deadline = Date.now() + 10_000
  // Four clients in parallel, each alternating a listed and an unlisted name.
  const client = async (n: number): Promise<void> => {
    for (let i = 0; swapping && queries < 2000 && Date.now() < deadline; i++) {
      queries++
      const listed = (i + n) % 2 === 0
      const name = listed ? `filler-${i % 20}.test` : 'other.test'
      const p = await ask(name)
      if (p === undefined) { problems.push(`${name}: no answer`); continue }
      if (listed) {
        if (p.rcode !== 'NXDOMAIN' || (p.answers ?? []).length > 0) problems.push(`${name}: not blocked (${p.rcode ?? '?'})`)
        else blockedSeen++
      } else {
        const a = (p.answers ?? []).find(r => r.type === 'A')
        if (p.rcode !== 'NOERROR' || (a as { data?: unknown } | undefined)?.data !== '192.0.2.12') problems.push(`${name}: ${p.rcode ?? '?'} instead of the upstream answer`)
        else answeredSeen++
      }
    }
  }
  const load = Promise.all([0, 1, 2, 3].map(client))

  const outcomes: string[] = []
  for (let swap = 0; swap < 6 && Date.now() < deadline - 1000; swap++) {
    server.set('/list.txt', { body: swap % 2 === 0 ? V2 : V1 })
    const [r] = await td.daemon.lists.updateNow()
    outcomes.push(r.outcome)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  swapping = false
  await load

  t.same(outcomes, ['updated', 'updated', 'updated', 'updated', 'updated', 'updated'], 'six swaps happened')
  t.equal(td.daemon.policy.engine.generation, firstGeneration + 6, 'six new engines')
  t.same(problems, [], 'no failed and no unfiltered answer')
  t.ok(queries > 50 && queries <= 2000 + 4, `a real load ran (${queries} queries)`)
  t.ok(blockedSeen > 0 && answeredSeen > 0, `both kinds answered (${blockedSeen} blocked, ${answeredSeen} from upstream)`)
})
