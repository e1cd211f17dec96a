// The rule guard: refuses block rules that would block far more than anyone means to, and says what
// they would block. A block rule is too broad when it
// - names a top-level domain or a public suffix (`com`, `co.uk`, `github.io`, `*.com`, `=com`), by
//   the Public Suffix List (tldts, ICANN and private sections);
// - is a regex that matches most of a fixed set of unrelated probe names (`/.*/`, `/a/`);
// - would block a name of the collateral corpus (packs/collateral.ts: our own list of everyday
//   services in sources/collateral/, plus every category's mustNotBlock): `google.com`, `*.gosuslugi.ru`;
// - is an address range wider than blocklists.guard.maxPrefix (default /16 for IPv4, /32 for IPv6).
// Allow rules are never refused. A rule listed in blocklists.guard.force (config) or sent with
// `force: true` (API) is accepted anyway. Fast enough for a 100k-line list: a name rule costs one
// suffix-list lookup and one map lookup per label; only regex rules are tested against the corpus.

import { createRequire } from 'node:module'
import type * as Tldts from 'tldts'
import type { BlocklistsConfig, RuleGuardConfig } from '../config/types.js'
import type { ConfigIssue } from '../errors.js'
import { parseList } from './parsers.js'
import type { ParseIssue, Rule, RuleKind } from './rule.js'
import { compileSafeRegex } from './safe-regex.js'

/**
 * The Public Suffix List (tldts), loaded the first time a rule is checked: loading it takes ~40 ms,
 * which a daemon or check-config without rules to guard should not pay at start-up.
 */
let tldts: typeof Tldts | undefined
const publicSuffixOf = (name: string, options: Parameters<typeof Tldts.getPublicSuffix>[1]): string | null => {
  tldts ??= createRequire(import.meta.url)('tldts') as typeof Tldts
  return tldts.getPublicSuffix(name, options)
}

export type { RuleGuardConfig }

/** blocklists.guard when the config says nothing. */
export const DEFAULT_RULE_GUARD: RuleGuardConfig = Object.freeze({ maxPrefix: Object.freeze({ v4: 16, v6: 32 }), force: Object.freeze([]) })

/**
 * Unrelated names that no deliberate rule should catch most of: reserved and example names of every
 * shape (one label, many labels, IDN A-labels, a 63-character label, reverse-DNS names, service
 * labels). A regex matching more than half of them would block nearly every name.
 */
export const PROBE_NAMES: readonly string[] = Object.freeze([
  'example.org',
  'a.b.c.d.example',
  'xn--e1afmkfd.xn--p1ai',
  'xn--fsqu00a.xn--0zwm56d',
  `${'q'.repeat(63)}.invalid`,
  '4.3.2.1.in-addr.arpa',
  '8.b.d.0.1.0.0.2.ip6.arpa',
  'intranet',
  '_ldap._tcp.dc.lan',
  'host-42.lan',
  'printer.local',
  'wpad.home.arpa',
  's1.s2.s3.s4.s5.s6.s7.s8.test',
  'x.yz',
  '0-0.invalid',
  'zzzz9999.localhost',
  'expyuzz4wqqyqhjn.onion',
  'sub_domain.example.net',
  'mx1.relay.example.com',
  'b2b-portal.shop.test'
])

/** More than this many probe names matched: the regex would block nearly every name. */
const PROBE_LIMIT = Math.floor(PROBE_NAMES.length / 2)

/** How many corpus names a message names. */
const SHOWN = 5

export type GuardReason = 'public-suffix' | 'every-name' | 'collateral' | 'wide-cidr'

/** Why a block rule is too broad. */
export interface GuardFinding {
  readonly reason: GuardReason
  /** What the rule would block, e.g. `'com' would block the public suffix com (every name under it)`. */
  readonly message: string
  /** The names it would block that show why (at most 5: corpus names, or probe names), and how many in all. */
  readonly names: readonly string[]
  readonly count: number
}

/** What the guard reads of a rule (a parsed list line). */
export type GuardedRule = Pick<Rule, 'kind' | 'value' | 'allow'>

/** A rule as a plain list line writes it (`=a.b`, `*.a.b`, `/re/`). */
export function ruleLine (r: GuardedRule): string {
  const body = r.kind === 'exact' ? `=${r.value}` : r.kind === 'wildcard' ? `*.${r.value}` : r.kind === 'regex' ? `/${r.value}/` : r.value
  return r.allow ? `@@${body}` : body
}

const keyOf = (kind: RuleKind, value: string): string => `${kind} ${value}`

const TLDTS_OPTIONS = { allowPrivateDomains: true, extractHostname: false, validateHostname: false } as const

export class RuleGuard {
  /** The corpus, in its order (sources/collateral/ names, then mustNotBlock). */
  readonly #names: readonly string[]
  /** Corpus name -> its index. */
  readonly #index = new Map<string, number>()
  /** A name or any of its parent names -> indices of the corpus names at or under it, ascending. */
  readonly #under = new Map<string, number[]>()
  readonly #maxPrefix: RuleGuardConfig['maxPrefix']
  readonly #forced = new Set<string>()
  /** blocklists.guard.force entries that are not block rules (`blocklists.guard.force.N`). */
  readonly forceIssues: readonly ConfigIssue[]

  constructor (corpus: readonly string[], config: RuleGuardConfig = DEFAULT_RULE_GUARD) {
    this.#names = corpus
    this.#maxPrefix = config.maxPrefix
    corpus.forEach((name, i) => {
      if (this.#index.has(name)) return
      this.#index.set(name, i)
      for (let at = 0; ;) {
        const suffix = at === 0 ? name : name.slice(at)
        const list = this.#under.get(suffix)
        if (list === undefined) this.#under.set(suffix, [i])
        else list.push(i)
        const dot = name.indexOf('.', at)
        if (dot < 0) break
        at = dot + 1
      }
    })
    const issues: ConfigIssue[] = []
    config.force.forEach((text, i) => {
      const path = `blocklists.guard.force.${i}`
      const parsed = parseList(text, 'plain')
      if (parsed.issues.length > 0) issues.push({ path, message: `${JSON.stringify(text)}: ${parsed.issues[0].message}` })
      else if (parsed.rules.length !== 1) issues.push({ path, message: `${JSON.stringify(text)} is not a rule` })
      else if (parsed.rules[0].allow) issues.push({ path, message: `${JSON.stringify(text)}: allow rules are never refused; list block rules only` })
      else this.#forced.add(keyOf(parsed.rules[0].kind, parsed.rules[0].value))
    })
    this.forceIssues = issues
  }

  /** Names in the collateral corpus. */
  get corpusSize (): number { return this.#names.length }

  /** Whether blocklists.guard.force lists this rule. */
  forced (r: GuardedRule): boolean {
    return this.#forced.has(keyOf(r.kind, r.value))
  }

  /** Why this block rule is too broad, unless blocklists.guard.force lists it; undefined: fine. */
  refuse (r: GuardedRule): GuardFinding | undefined {
    if (r.allow) return undefined
    const f = this.check(r)
    return f === undefined || this.forced(r) ? undefined : f
  }

  /** Why this block rule is too broad (force not considered); undefined for allow rules and fine ones. */
  check (r: GuardedRule): GuardFinding | undefined {
    if (r.allow) return undefined
    switch (r.kind) {
      case 'cidr': return this.#cidr(r.value)
      case 'regex': return this.#regex(r)
      default: return this.#suffix(r) ?? this.#collateral(r)
    }
  }

  #suffix (r: GuardedRule): GuardFinding | undefined {
    const v = r.value
    if (publicSuffixOf(v, TLDTS_OPTIONS) !== v) return undefined
    const what = v.includes('.') ? `the public suffix ${v}` : `the top-level domain ${v}`
    const reach = r.kind === 'exact' ? `${what} itself` : `every name under ${what}`
    const message = `'${ruleLine(r)}' would block ${reach}: names under a public suffix belong to unrelated owners`
    return { reason: 'public-suffix', message, names: [v], count: 1 }
  }

  #collateral (r: GuardedRule): GuardFinding | undefined {
    let hits: readonly number[]
    if (r.kind === 'exact') {
      const i = this.#index.get(r.value)
      hits = i === undefined ? [] : [i]
    } else {
      hits = this.#under.get(r.value) ?? []
      if (r.kind === 'wildcard') {
        const self = this.#index.get(r.value)
        if (self !== undefined) hits = hits.filter(i => i !== self)
      }
    }
    if (hits.length === 0) return undefined
    return this.#collateralFinding(r, hits.slice(0, SHOWN).map(i => this.#names[i]), hits.length)
  }

  #collateralFinding (r: GuardedRule, shown: readonly string[], count: number): GuardFinding {
    const more = count > shown.length ? ` and ${count - shown.length} more` : ''
    const message = `'${ruleLine(r)}' would block ${count} name${count === 1 ? '' : 's'} that must keep working ` +
      `(everyday services and the categories' mustNotBlock): ${shown.join(', ')}${more}`
    return { reason: 'collateral', message, names: shown, count }
  }

  #regex (r: GuardedRule): GuardFinding | undefined {
    const compiled = compileSafeRegex(r.value)
    if ('error' in compiled) return undefined // the parser reports it
    const re = compiled.re
    const probes = PROBE_NAMES.filter(n => re.test(n))
    if (probes.length > PROBE_LIMIT) {
      const message = `'${ruleLine(r)}' would block nearly every name: it matches ${probes.length} of ${PROBE_NAMES.length} unrelated ` +
        `test names (${probes.slice(0, SHOWN).join(', ')}${probes.length > SHOWN ? ', ...' : ''})`
      return { reason: 'every-name', message, names: probes.slice(0, SHOWN), count: probes.length }
    }
    const shown: string[] = []
    let count = 0
    for (const name of this.#names) {
      if (!re.test(name)) continue
      if (count < SHOWN) shown.push(name)
      count++
    }
    return count === 0 ? undefined : this.#collateralFinding(r, shown, count)
  }

  #cidr (value: string): GuardFinding | undefined {
    const slash = value.lastIndexOf('/')
    const prefix = slash < 0 ? undefined : Number(value.slice(slash + 1))
    if (prefix === undefined || !Number.isInteger(prefix)) return undefined
    const v6 = value.includes(':')
    const max = v6 ? this.#maxPrefix.v6 : this.#maxPrefix.v4
    if (prefix >= max) return undefined
    const bits = (v6 ? 128 : 32) - prefix
    const size = bits <= 52 ? (2 ** bits).toLocaleString('en-US') : `2^${bits}`
    const message = `'${value}' would block ${size} IPv${v6 ? 6 : 4} addresses: wider than /${max}, the widest block range allowed ` +
      `(blocklists.guard.maxPrefix.${v6 ? 'v6' : 'v4'})`
    return { reason: 'wide-cidr', message, names: [value], count: 1 }
  }
}

/** The corpus names (e.g. Collateral.names from packs/collateral.ts) and the config's blocklists.guard. */
export function createRuleGuard (corpus: readonly string[], config: RuleGuardConfig | undefined): RuleGuard {
  return new RuleGuard(corpus, config ?? DEFAULT_RULE_GUARD)
}

/** What the config says to do with a too-broad rule it means to keep. */
export const CONFIG_FORCE_HINT = 'to keep it anyway, list it under blocklists.guard.force'

/**
 * The config's block rules (blocklists.rules.block and each group's) that the guard refuses, as
 * config issues naming the rule (`blocklists.rules.block.0: 'com' would block ...`), plus bad
 * blocklists.guard.force entries. Lines that do not parse are left to the policy build.
 */
export function guardConfigRules (cfg: Pick<BlocklistsConfig, 'rules' | 'groups'>, guard: RuleGuard): ConfigIssue[] {
  const issues: ConfigIssue[] = [...guard.forceIssues]
  const walk = (texts: readonly string[], where: string): void => {
    texts.forEach((text, i) => {
      for (const r of parseList(text, 'plain').rules) {
        const f = guard.refuse(r)
        if (f !== undefined) issues.push({ path: `${where}.${i}`, message: `${f.message}; ${CONFIG_FORCE_HINT}` })
      }
    })
  }
  walk(cfg.rules.block, 'blocklists.rules.block')
  cfg.groups.forEach((g, gi) => walk(g.rules.block, `blocklists.groups.${gi}.rules.block`))
  return issues
}

/**
 * For a line of an extra list (a third party's): the issue to report instead of adding it when the
 * guard refuses it (the build reports it as FILE:LINE: message, like a line that does not parse).
 */
export function guardListRule (guard: RuleGuard, r: Rule): ParseIssue | undefined {
  const f = guard.refuse(r)
  return f === undefined ? undefined : { line: r.line, message: `skipped: ${f.message}`, text: r.text }
}
