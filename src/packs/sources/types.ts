// What every source parser returns: the entries a maintained public list offers, the entries it
// drops on purpose (counted, with the reason), and the lines it could not read (file:line).
// The pack generator (src/packs/generate.ts) takes entries from these by recipe.

/**
 * - `domain`: the name and every name under it (v2fly `domain:`, AdGuard `||x^`, nextdns domains);
 * - `full`: only the name itself (v2fly `full:`, AdGuard `|x^`);
 * - `wildcard`: names strictly under the name, not the name (Microsoft's `*.x`);
 * - `cidr`: an address range, normalized (IPv4 dotted, IPv6 compressed lower-case, host bits zero).
 */
export type SourceEntryKind = 'domain' | 'full' | 'wildcard' | 'cidr'

export interface SourceEntry {
  readonly kind: SourceEntryKind
  /** Lower-case A-label name without trailing dot, or a normalized CIDR. */
  readonly value: string
  /** The file it was read from, relative to the sources folder (e.g. `v2fly/data/telegram`). */
  readonly file: string
  /** 1-based line in that file (for JSON: the line where the value stands). */
  readonly line: number
  /** Source-specific labels, e.g. v2fly `@cn`, Microsoft `id:11`, `serviceArea:Skype`. */
  readonly attrs: readonly string[]
}

/** An entry the source offers that the parser does not take (v2fly `keyword:`, AdGuard `$` modifiers). */
export interface SourceDrop {
  readonly file: string
  readonly line: number
  readonly text: string
  readonly reason: string
}

/** A line that cannot be read. */
export interface SourceIssue {
  readonly file: string
  readonly line: number
  readonly message: string
}

export interface SourceList {
  readonly entries: SourceEntry[]
  readonly dropped: SourceDrop[]
  readonly issues: SourceIssue[]
}
