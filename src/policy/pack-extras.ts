// The two optional files of a bundled category beside domains.txt and cidrs.txt:
// - probes.txt: host names of the service's known endpoints, which the learner (learn/) resolves on
//   a schedule through the upstreams. Each must be blocked by its own pack (else the learner would
//   put an allowed name's addresses into a block set) and carry its evidence after '#'.
// - shared-ranges.txt: ranges the service shares with services that stay allowed (Meta's for
//   WhatsApp). Off unless the config names the category in firewall.sharedRanges; then they go into
//   the firewall only, never into DNS answer matching. A `# cuts-off: A, B` header line says what
//   else turning them on cuts off (check, status and the start-up log repeat it).
// Pure functions over text and files; build.ts calls readPackExtras once per policy build.

import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { normalizeName, parseCidr } from './names.js'

export const PROBES_FILE = 'probes.txt'
export const SHARED_RANGES_FILE = 'shared-ranges.txt'

/** One probe name of a pack, where it is written, and its evidence (the text after '#'). */
export interface Probe {
  readonly name: string
  readonly line: number
  readonly evidence: string
}

/** A pack's shared ranges (normalized CIDRs by family) and what turning them on cuts off. */
export interface SharedRanges {
  readonly category: string
  /** The shared-ranges.txt they were read from. */
  readonly file: string
  readonly v4: readonly string[]
  readonly v6: readonly string[]
  /** From the `# cuts-off:` header line: the allowed services these ranges also carry. */
  readonly cutsOff: readonly string[]
}

export interface PackExtras {
  /** Probe names by category, for the categories enabled in the default group or any client group. */
  readonly probes: ReadonlyMap<string, readonly string[]>
  /** Shared ranges turned on (firewall.sharedRanges) for enabled categories: the firewall's extra sets. */
  readonly shared: ReadonlyMap<string, SharedRanges>
  /** Every category that ships shared ranges, on or off (check and docs list what could be turned on). */
  readonly available: ReadonlyMap<string, SharedRanges>
  /**
   * Categories whose meta.yaml says `learnAddresses: false`: their names resolve to front ends the
   * parent company shares with its other services (Gmail: Google's), so their addresses are never
   * learned; DNS blocking and published ranges still apply.
   */
  readonly unlearned: ReadonlySet<string>
}

export const NO_EXTRAS: PackExtras = { probes: new Map(), shared: new Map(), available: new Map(), unlearned: new Set() }

/** Splits `text  # comment` into its parts (the comment trimmed; '' without one). */
function splitComment (raw: string): { text: string, comment: string } {
  const hash = raw.indexOf('#')
  if (hash < 0) return { text: raw.trim(), comment: '' }
  return { text: raw.slice(0, hash).trim(), comment: raw.slice(hash + 1).trim() }
}

/**
 * Parses a probes.txt: one host name a line (lower-case, no wildcard, no `=`), then `#` and its
 * evidence; `#` lines and blank lines are comments. Problems are pushed as `FILE:LINE: message`.
 */
export function parseProbes (text: string, file: string, problems: string[]): Probe[] {
  const out: Probe[] = []
  const seen = new Map<string, number>()
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1
    const { text: entry, comment } = splitComment(raw)
    if (entry === '') return
    const where = `${file}:${line}`
    if (/\s/.test(entry)) { problems.push(`${where}: ${JSON.stringify(entry)}: expected one host name, then '#' and its evidence`); return }
    if (/[*=@$/]/.test(entry)) { problems.push(`${where}: ${JSON.stringify(entry)}: a probe is a plain host name (no *, =, @@, $ or /)`); return }
    const n = normalizeName(entry)
    if ('error' in n) { problems.push(`${where}: ${JSON.stringify(entry)}: ${n.error}`); return }
    if (n.name !== entry) { problems.push(`${where}: ${JSON.stringify(entry)}: write it as ${n.name}`); return }
    if (!n.name.includes('.')) { problems.push(`${where}: ${JSON.stringify(entry)}: a probe is a host name with at least two labels`); return }
    if (comment === '') { problems.push(`${where}: ${entry}: no evidence: write '# ' and where the name is documented (source file with commit, or URL)`); return }
    const first = seen.get(n.name)
    if (first !== undefined) { problems.push(`${where}: ${entry}: already on line ${first}`); return }
    seen.set(n.name, line)
    out.push({ name: n.name, line, evidence: comment })
  })
  return out
}

const CUTS_OFF = /^#\s*cuts-off:\s*(.*)$/i

/**
 * Parses a shared-ranges.txt: one CIDR a line (host bits zero), then `#` and its source; the header
 * must hold one `# cuts-off: A, B, ...` line. Problems are pushed as `FILE:LINE: message` (or `FILE:`).
 */
export function parseSharedRanges (text: string, category: string, file: string, problems: string[]): SharedRanges {
  const v4: string[] = []
  const v6: string[] = []
  let cutsOff: string[] | undefined
  const seen = new Set<string>()
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1
    const where = `${file}:${line}`
    const header = CUTS_OFF.exec(raw.trim())
    if (header !== null) {
      if (cutsOff !== undefined) { problems.push(`${where}: a second '# cuts-off:' line`); return }
      cutsOff = header[1].split(',').map(s => s.trim()).filter(s => s !== '')
      if (cutsOff.length === 0) problems.push(`${where}: '# cuts-off:' names nothing: list the allowed services these ranges also carry`)
      return
    }
    const { text: entry, comment } = splitComment(raw)
    if (entry === '') return
    const c = parseCidr(entry)
    if ('error' in c) { problems.push(`${where}: ${JSON.stringify(entry)}: ${c.error}`); return }
    if (!entry.includes('/')) { problems.push(`${where}: ${entry}: write a range in CIDR notation (${c.value})`); return }
    if (c.value !== entry.toLowerCase()) { problems.push(`${where}: ${entry}: host bits set or not in canonical form: write ${c.value}`); return }
    if (comment === '') { problems.push(`${where}: ${entry}: no source: write '# ' and where the range comes from (file with commit, or URL)`); return }
    if (seen.has(c.value)) { problems.push(`${where}: ${entry}: listed twice`); return }
    seen.add(c.value);
    (c.family === 4 ? v4 : v6).push(c.value)
  })
  if (cutsOff === undefined) problems.push(`${file}: no '# cuts-off: ...' header line: say what else these ranges cut off`)
  if (v4.length + v6.length === 0) problems.push(`${file}: no range`)
  return { category, file, v4, v6, cutsOff: cutsOff ?? [] }
}

/** What readPackExtras needs from the build: the bundled categories and a pack's own block test. */
export interface ExtrasInput {
  /** The blocklists folder. */
  readonly dir: string
  /** The bundled categories in folder order, each with whether any client group has it on. */
  readonly categories: ReadonlyArray<{ readonly name: string, readonly enabled: boolean, readonly learnAddresses?: boolean }>
  /** firewall.sharedRanges: the categories whose shared ranges are turned on. */
  readonly optedIn: readonly string[]
  /** Whether the category's own entries (minus its exceptions) block `name` for A queries. */
  readonly blocks: (category: string, name: string) => boolean
}

/**
 * Reads every bundled category's probes.txt and shared-ranges.txt (both optional). Pushes a problem
 * (the build fails) for a bad line, a probe its own pack does not block, and a firewall.sharedRanges
 * item that names no category or one without shared-ranges.txt; a warning when the opted-in
 * category is off in every group (its ranges then stay off).
 */
export function readPackExtras (input: ExtrasInput, problems: string[], warnings: string[]): PackExtras {
  const probes = new Map<string, readonly string[]>()
  const available = new Map<string, SharedRanges>()
  const enabled = new Set(input.categories.filter(c => c.enabled).map(c => c.name))
  for (const { name: category } of input.categories) {
    const probeFile = join(input.dir, category, PROBES_FILE)
    const probeText = readOptional(probeFile, problems)
    if (probeText !== undefined) {
      const list = parseProbes(probeText, probeFile, problems).filter(p => {
        if (input.blocks(category, p.name)) return true
        problems.push(`${probeFile}:${p.line}: ${p.name} is not blocked by the ${category} pack (domains.txt): a probe must be one of its blocked names`)
        return false
      })
      if (enabled.has(category) && list.length > 0) probes.set(category, list.map(p => p.name))
    }
    const sharedFile = join(input.dir, category, SHARED_RANGES_FILE)
    const sharedText = readOptional(sharedFile, problems)
    if (sharedText !== undefined) available.set(category, parseSharedRanges(sharedText, category, sharedFile, problems))
  }
  const shared = new Map<string, SharedRanges>()
  const known = new Set(input.categories.map(c => c.name))
  input.optedIn.forEach((category, i) => {
    const where = `config firewall.sharedRanges.${i}`
    const s = available.get(category)
    if (!known.has(category)) problems.push(`${where}: no such category "${category}" (known: ${[...known].join(', ')})`)
    else if (s === undefined) problems.push(`${where}: category "${category}" ships no ${SHARED_RANGES_FILE} (categories with shared ranges: ${[...available.keys()].join(', ') || 'none'})`)
    else if (!enabled.has(category)) warnings.push(`${where}: category "${category}" is off in every client group: its shared ranges stay off`)
    else shared.set(category, s)
  })
  const unlearned = new Set(input.categories.filter(c => c.learnAddresses === false).map(c => c.name))
  for (const c of unlearned) probes.delete(c)
  return { probes, shared, available, unlearned }
}

/** The opted-in shared ranges as the status API and `check` show them. */
export function sharedRangesSummary (extras: PackExtras): Array<{ category: string, cutsOff: string[], ranges: number, v4: string[], v6: string[], file: string }> {
  return [...extras.shared.values()].map(s => ({ category: s.category, cutsOff: [...s.cutsOff], ranges: s.v4.length + s.v6.length, v4: [...s.v4], v6: [...s.v6], file: s.file }))
}

/**
 * One line for the start-up log and `check`: which shared ranges are on and what else they cut off;
 * undefined when none is on.
 */
export function sharedRangesNotice (extras: PackExtras): string | undefined {
  if (extras.shared.size === 0) return undefined
  const parts = [...extras.shared.values()].map(s => `${s.category} (${s.v4.length + s.v6.length} ranges) also cuts off ${s.cutsOff.join(', ')}`)
  return `firewall.sharedRanges is on: ${parts.join('; ')}`
}

function readOptional (file: string, problems: string[]): string | undefined {
  try {
    if (!statSync(file).isFile()) return undefined
  } catch {
    return undefined
  }
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    return undefined
  }
}
