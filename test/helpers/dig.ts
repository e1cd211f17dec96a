// Runs the real `dig` and reads what tests need from its output.

import { execFile } from 'node:child_process'
import { requireTool } from './tools.js'

export interface DigRecord { name: string, ttl: number, type: string, data: string }

export interface DigResult {
  readonly status: string
  readonly flags: string[]
  readonly id: number
  readonly answers: DigRecord[]
  readonly authority: DigRecord[]
  /** The question line as dig printed it (case preserved), e.g. 'H.TeSt.' */
  readonly question: string
  readonly edns: boolean
  readonly ede: string | undefined
  readonly raw: string
}

function records (raw: string, section: string): DigRecord[] {
  const m = raw.match(new RegExp(`;; ${section} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`))
  if (m === null) return []
  return m[1].split('\n').filter(l => l.trim() !== '' && !l.startsWith(';')).map(l => {
    const [name, ttl, , type, ...data] = l.split(/\s+/)
    return { name, ttl: Number(ttl), type, data: data.join(' ') }
  })
}

export function dig (args: string[]): Promise<DigResult> {
  const bin = requireTool('dig')
  return new Promise((resolve, reject) => {
    execFile(bin, [...args, '+nocookie'], { timeout: 20_000 }, (err, stdout) => {
      const raw = String(stdout)
      const head = raw.match(/status: (\w+), id: (\d+)/)
      if (head === null) { reject(new Error(`dig ${args.join(' ')}: no answer\n${raw}${err != null ? `\n${err.message}` : ''}`)); return }
      const flags = (raw.match(/;; flags: ([^;]*);/)?.[1] ?? '').trim().split(/\s+/)
      const question = raw.match(/;; QUESTION SECTION:\n;(\S+)/)?.[1] ?? ''
      resolve({
        status: head[1],
        id: Number(head[2]),
        flags,
        answers: records(raw, 'ANSWER'),
        authority: records(raw, 'AUTHORITY'),
        question,
        edns: raw.includes('OPT PSEUDOSECTION'),
        ede: raw.match(/; EDE: ([^\n]*)/)?.[1],
        raw
      })
    })
  })
}
