// The multi-tenant front ends (sources/shared-hosts/*.txt): host name suffixes of CDNs and of the
// edge networks parent companies share across their services. A learned address reached through
// a CNAME or HTTPS/SVCB target under one of them serves many others too: the learner hands it to
// the book as held back (reason shared-host), never into a firewall set.

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const SHARED_HOSTS_DIR = join('sources', 'shared-hosts')

export interface SharedHosts {
  /** The listed suffix `name` is under (on a label boundary), or undefined. */
  match (name: string): string | undefined
  readonly size: number
}

const HOST = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/

/** Parses one list: a suffix a line, `#` comments; bad lines are pushed as `FILE:LINE: message`. */
export function parseSharedHosts (text: string, file: string, problems: string[]): string[] {
  const out: string[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim().toLowerCase().replace(/\.$/, '')
    if (line === '') return
    if (!HOST.test(line)) problems.push(`${file}:${i + 1}: ${JSON.stringify(line)}: expected a host name suffix (two labels at least)`)
    else out.push(line)
  })
  return out
}

export function sharedHostsOf (suffixes: Iterable<string>): SharedHosts {
  const set = new Set(suffixes)
  return {
    size: set.size,
    match (name: string): string | undefined {
      let n = name.toLowerCase().replace(/\.$/, '')
      for (;;) {
        if (set.has(n)) return n
        const dot = n.indexOf('.')
        if (dot < 0) return undefined
        n = n.slice(dot + 1)
      }
    }
  }
}

/** Every `*.txt` under `root`/sources/shared-hosts; problems (unreadable file, bad line) are pushed. */
export function loadSharedHosts (root: string, problems: string[]): SharedHosts {
  const dir = join(root, SHARED_HOSTS_DIR)
  let files: string[] = []
  try {
    files = readdirSync(dir).filter(f => f.endsWith('.txt')).sort()
  } catch (err) {
    problems.push(`${dir}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const all: string[] = []
  for (const f of files) {
    const file = join(dir, f)
    try {
      all.push(...parseSharedHosts(readFileSync(file, 'utf8'), file, problems))
    } catch (err) {
      problems.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  return sharedHostsOf(all)
}
