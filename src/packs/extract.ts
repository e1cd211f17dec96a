// Source extracts (sources/<source>/<list>.txt): what one maintained public list offers, as
// plain-list rules, each followed by the upstream file and line it came from; the entries the
// source parser did not take kept as `#! dropped` lines with the reason. The packs are generated
// from these (generate.ts), so the repository records where every entry came from without holding
// copies of the upstream files. Written by `egressd lists extract` from an upstream checkout.

import { readFileSync } from 'node:fs'
import { parseList } from '../policy/parsers.js'
import type { Rule } from '../policy/rule.js'
import type { SourceEntry, SourceList } from './sources/types.js'

/** Where an extract's entries came from: its header. */
export interface ExtractOrigin {
  /** The extract's name: `<source>/<list>` (its path under sources/, without `.txt`). */
  readonly name: string
  /** The upstream repository or URL. */
  readonly origin: string
  /** Commit, version or date of the upstream copy read. */
  readonly version: string
  readonly licence: string
}

/** One entry of an extract: the rule, and where upstream it stands. */
export interface ExtractEntry {
  readonly rule: Rule
  /** `file:line` upstream, then its attributes (`data/telegram:12 @cn`). */
  readonly from: string
  /** 1-based line in the extract file. */
  readonly line: number
}

export interface ExtractDrop { readonly text: string, readonly from: string, readonly reason: string }

export interface Extract {
  readonly name: string
  readonly file: string
  /** The header lines, without '# '. */
  readonly header: readonly string[]
  readonly entries: readonly ExtractEntry[]
  readonly dropped: readonly ExtractDrop[]
}

/** An entry as a plain-list rule: `name`, `=name`, `*.name` or a CIDR. */
export function entryRule (e: SourceEntry): string {
  return e.kind === 'full' ? `=${e.value}` : e.kind === 'wildcard' ? `*.${e.value}` : e.value
}

/**
 * The text of an extract. Entries keep the source's order; an entry the source lists twice (two
 * lines, or two included files) is kept once, with its first place. Throws when the source could
 * not be read cleanly (its issues, file:line): an extract is never written from a half-read list.
 */
export function extractText (o: ExtractOrigin, list: SourceList): string {
  if (list.issues.length > 0) throw new Error(`${o.name}: the source has unreadable lines:\n${list.issues.map(i => `  ${i.file}:${i.line}: ${i.message}`).join('\n')}`)
  const lines = [
    `# ${o.name}: entries of ${o.origin} (${o.version}), licence ${o.licence}.`,
    '# Extracted by `egressd lists extract`; each entry: a plain-list rule, then its upstream file:line',
    '# and attributes. `#! dropped` lines: what the source offers that the parser does not take, and why.',
    ''
  ]
  const seen = new Set<string>()
  for (const e of list.entries) {
    const rule = entryRule(e)
    if (seen.has(rule)) continue
    seen.add(rule)
    lines.push(`${rule}  # ${[`${e.file}:${e.line}`, ...e.attrs].join(' ')}`)
  }
  for (const d of list.dropped) lines.push(`#! dropped ${d.file}:${d.line} ${d.text.replace(/\s+/g, ' ')}  ## ${d.reason.replace(/\s+/g, ' ')}`)
  return lines.join('\n') + '\n'
}

/** Reads an extract file; problems (an unreadable line) are pushed as `FILE:LINE: message`. */
export function readExtract (file: string, name: string, problems: string[]): Extract | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    problems.push(`${file}: cannot read the extract ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return undefined
  }
  const header: string[] = []
  const entries: ExtractEntry[] = []
  const dropped: ExtractDrop[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '') return
    if (line.startsWith('#! dropped ')) {
      const m = /^#! dropped (\S+) (.*?) {2}## (.*)$/.exec(line)
      if (m === null) problems.push(`${file}:${i + 1}: expected '#! dropped FILE:LINE TEXT  ## REASON'`)
      else dropped.push({ from: m[1], text: m[2], reason: m[3] })
      return
    }
    if (line.startsWith('#')) { if (entries.length === 0) header.push(line.replace(/^#\s?/, '')); return }
    const hash = line.indexOf('  # ')
    const body = hash < 0 ? line : line.slice(0, hash)
    const parsed = parseList(body, 'plain')
    if (parsed.issues.length > 0 || parsed.rules.length !== 1 || parsed.rules[0].allow) {
      problems.push(`${file}:${i + 1}: ${parsed.issues[0]?.message ?? 'expected one block rule'}`)
      return
    }
    entries.push({ rule: { ...parsed.rules[0], line: i + 1 }, from: hash < 0 ? '' : line.slice(hash + 4), line: i + 1 })
  })
  return { name, file, header, entries, dropped }
}
