// The parsed form of one blocklist or allowlist entry, shared by the list parsers and the policy
// engine. Pure types: no parsing or matching here (see parsers.ts, names.ts, safe-regex.ts).

/**
 * How a rule matches a query name (lower-case, without the trailing dot):
 * - `suffix`: the name and every name under it, on a label boundary (`telegram.org` matches
 *   `a.telegram.org`, not `nottelegram.org`);
 * - `exact`: only the name itself;
 * - `wildcard` (`*.x`): names strictly under x, not x itself;
 * - `regex`: the pattern is tested against the name;
 * - `cidr`: an answer address inside the range.
 */
export type RuleKind = 'suffix' | 'exact' | 'wildcard' | 'regex' | 'cidr'

export interface Rule {
  readonly kind: RuleKind
  /**
   * suffix/exact/wildcard: lower-case A-label name without trailing dot and without the '*.'
   * (wildcard stores the base); regex: the pattern source; cidr: normalized 'addr/len' (IPv4 dotted,
   * IPv6 compressed lower-case).
   */
  readonly value: string
  /** Allow rules override block rules. */
  readonly allow: boolean
  /** 1-based line in the source. */
  readonly line: number
  /** The original line, trimmed (for Verdicts). */
  readonly text: string
  /** `$dnstype=`: the query types the rule applies to; undefined: every type. Name rules only. */
  readonly types: TypeFilter | undefined
}

/**
 * The query types a rule applies to, after AdGuard's `$dnstype` modifier: `$dnstype=A|AAAA` applies
 * to those types only, `$dnstype=~MX|~TXT` to every type but those (all listed types negated, or none).
 */
export interface TypeFilter {
  /** Type numbers, ascending, no repeats. */
  readonly types: readonly number[]
  /** True: the rule applies to every type except `types`. */
  readonly except: boolean
}

/** Whether a rule with this filter applies to a query of type `qtype`. */
export function typeApplies (f: TypeFilter, qtype: number): boolean {
  return f.types.includes(qtype) !== f.except
}

/** A line that was skipped: `message` says what is wrong with it. */
export interface ParseIssue { readonly line: number, readonly message: string, readonly text: string }

/** The rules of one list, the lines that were skipped, and the number of lines read. */
export interface ParsedList { readonly rules: Rule[], readonly issues: ParseIssue[], readonly lines: number }

export type ListFormat = 'plain' | 'hosts' | 'adblock' | 'dnsmasq' | 'cidr'
