// Lowers the CPU priority of the calling thread. On Linux nice is per thread: a thread's id is
// the "pid" setpriority(2) takes, and the calling thread finds its own in /proc/thread-self.
// The block log's threads run below the DNS thread so that, when they share a core, answering
// comes first and logging takes what is left (DESIGN.md: logging never delays an answer).

import { readFileSync, readlinkSync } from 'node:fs'
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

/**
 * The calling thread's scheduler counters (Linux /proc/thread-self/schedstat): nanoseconds on a
 * CPU, and nanoseconds runnable but waiting for one (the CPU was busy with other work: a thread
 * below DNS waits whenever DNS or anything else wants its core). Undefined where not available.
 */
export interface ThreadTimes { readonly cpuNs: number, readonly waitNs: number }

export function threadTimes (): ThreadTimes | undefined {
  try {
    const [cpu, wait] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')
    const cpuNs = Number(cpu)
    const waitNs = Number(wait)
    return Number.isFinite(cpuNs) && Number.isFinite(waitNs) ? { cpuNs, waitNs } : undefined
  } catch {
    return undefined
  }
}
