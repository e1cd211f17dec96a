// The block log's writer and search threads run at a lower CPU priority than the DNS thread
// (store.threadNice, default 19), so on a shared core answering comes first. Read back from the
// kernel: /proc/<pid>/task/<tid>/stat, field 19 is the thread's nice value.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { startTestDaemon } from '../helpers/daemon.js'

function niceOf (tid: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start at "state", field 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(rest[19 - 3])
}

t.test('default: writer and search threads at nice 19, the DNS thread untouched', async t => {
  const mainBefore = niceOf(process.pid)
  const d = await startTestDaemon({ upstreams: ['udp://127.0.0.1:9'] })
  t.teardown(() => d.close())
  const writer = d.daemon.blockLog?.priority
  const search = d.daemon.blockSearch?.priority
  t.ok(writer?.tid !== undefined && search?.tid !== undefined, 'both threads report their thread id')
  t.not(writer?.tid, search?.tid)
  t.equal(niceOf(writer?.tid as number), 19, 'writer thread')
  t.equal(niceOf(search?.tid as number), 19, 'search thread')
  t.equal(niceOf(process.pid), mainBefore, 'the main (DNS) thread keeps its priority')
})

t.test('store.threadNice: 5 is what the kernel shows', async t => {
  const d = await startTestDaemon({ upstreams: ['udp://127.0.0.1:9'], store: { threadNice: 5 } })
  t.teardown(() => d.close())
  t.equal(niceOf(d.daemon.blockLog?.priority?.tid as number), 5)
  t.equal(niceOf(d.daemon.blockSearch?.priority?.tid as number), 5)
})
