// Lowers the CPU priority of the calling thread. On Linux nice is per thread: a thread's id is
// the "pid" setpriority(2) takes, and the calling thread finds its own in /proc/thread-self.
// The block log's threads run below the DNS thread so that, when they share a core, answering
// comes first and logging takes what is left (DESIGN.md: logging never delays an answer).

import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'

export type ThreadPriority =
  | { readonly tid: number, readonly nice: number }
  | { readonly tid: undefined, readonly nice: undefined, readonly error: string }

export function setThreadNice (nice: number): ThreadPriority {
  try {
    // "<pid>/task/<tid>"
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (!Number.isInteger(tid) || tid <= 0) throw new Error('no thread id in /proc/thread-self')
    setPriority(tid, nice)
    return { tid, nice }
  } catch (err) {
    return { tid: undefined, nice: undefined, error: (err as Error).message }
  }
}
