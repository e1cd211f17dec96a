// Which CPU the calling thread last ran on (Linux /proc/thread-self/stat, field 39 "processor"):
// the block log's DNS-first hold compares the writer's with the DNS thread's, so that a writer
// that waits for a CPU on another core (other work there, not DNS) is not held for DNS.

import { readFileSync } from 'node:fs'

/** The CPU the calling thread last ran on; -1 where the kernel does not tell. */
export function threadCpu (): number {
  try {
    const s = readFileSync('/proc/thread-self/stat', 'latin1')
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields after it start at 3.
    const cpu = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[39 - 3])
    return Number.isInteger(cpu) && cpu >= 0 ? cpu : -1
  } catch {
    return -1
  }
}
