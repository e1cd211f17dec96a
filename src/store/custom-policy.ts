// The run-time part of the policy: custom rules and category overrides kept in the policy file
// (policy.sqlite, policy-db.ts), with the audit trail of every change, and the rows that file lost to
// damage until an admin acknowledges them. Each change is checked, written and applied to the engine in one
// SQLite transaction: if the engine refuses the new inputs, nothing is stored (and the old engine
// keeps serving). Rules with an expiry drop out on a timer (set to the next expiry).
//
// `apply` is the daemon's updatePolicyInputs: it builds a new engine and swaps it in synchronously,
// so when a call here returns, the next DNS query is decided with the change.

import type { Logger } from 'pino'
import type { BlockAction, CategoryOverride } from '../config/types.js'
import { ConflictError, InputError, NotFoundError, PolicyError } from '../errors.js'
import type { PolicyInputs } from '../policy/build.js'
import { ruleText } from '../policy/engine.js'
import { parseList } from '../policy/parsers.js'
import type { RuleKind } from '../policy/rule.js'
import { compileSafeRegex } from '../policy/safe-regex.js'
import { AuditLog, type AuditEntry } from './audit.js'
import { CategoryOverrideStore } from './category-overrides.js'
import type { Db } from './db.js'
import { LOSSES_KEY, readLosses } from './policy-db.js'
import { RuleStore, type CustomRule, type RuleEffect } from './rules.js'

/** Who asked: the token's name and the client address. */
export interface Actor { readonly name: string, readonly client: string }

const SYSTEM_ACTOR: Actor = { name: 'egressd', client: '' }

/** A rule as the API shows it: the row plus the kind of match. */
export interface RuleView extends CustomRule {
  readonly type: 'domain' | 'exact' | 'wildcard' | 'regex' | 'cidr'
}

export interface NewRuleRequest {
  readonly kind: RuleEffect
  readonly rule: string
  readonly comment: string
  /** Milliseconds since the epoch, or null. */
  readonly expiresAt: number | null
  /** Added although the rule guard refused it (`force: true`): the guard's message, kept in the audit row. */
  readonly forced?: string
}

export interface CustomPolicyDeps {
  /** The policy file (policy.sqlite), not the block log. */
  readonly db: Db
  /** Rebuilds the engine with these inputs and swaps it in; throws PolicyError (changing nothing) if they do not compile. */
  readonly apply: (inputs: PolicyInputs, reason: string) => void
  readonly log: Logger
  readonly now: () => number
}

const TYPE_OF: Record<RuleKind, RuleView['type']> = { suffix: 'domain', exact: 'exact', wildcard: 'wildcard', regex: 'regex', cidr: 'cidr' }

/**
 * Checks one rule line; returns its normalized text (with its `$dnstype=` filter, if any) and type,
 * or throws an InputError naming `rule`.
 */
function parseCustomRule (text: string): { rule: string, type: RuleView['type'] } {
  const bad = (message: string): never => { throw new InputError('rule', message) }
  const s = text.trim()
  if (s.startsWith('@@')) bad('write the rule without "@@" and set "kind": "allow"')
  // A blank may only stand before a `$dnstype=` modifier (`name $dnstype=AAAA`).
  if (/[\s#]/.test(s.replace(/\s+\$/, '$'))) bad('one rule without blanks or comments (put notes in "comment")')
  const parsed = parseList(s, 'plain')
  if (parsed.issues.length > 0) bad(`${JSON.stringify(s)}: ${parsed.issues[0].message}`)
  if (parsed.rules.length !== 1) bad(`${JSON.stringify(s)} is not a rule`)
  const r = parsed.rules[0]
  if (r.kind === 'regex') {
    const re = compileSafeRegex(r.value)
    if ('error' in re) bad(`${JSON.stringify(s)}: ${re.error}`)
  }
  return { rule: ruleText(r.kind, r.value, false, r.types), type: TYPE_OF[r.kind] }
}

export class CustomPolicy {
  readonly rules: RuleStore
  readonly categories: CategoryOverrideStore
  readonly audit: AuditLog
  readonly #db: Db
  readonly #apply: CustomPolicyDeps['apply']
  readonly #log: Logger
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /** Rows lost to damage, as recorded in the file (read once, changed only by acknowledgeLosses). */
  #losses: readonly string[]

  constructor (deps: CustomPolicyDeps) {
    this.#db = deps.db
    this.#apply = deps.apply
    this.#log = deps.log.child({ mod: 'custom-policy' })
    this.#now = deps.now
    this.rules = new RuleStore(deps.db)
    this.categories = new CategoryOverrideStore(deps.db)
    this.audit = new AuditLog(deps.db)
    this.#losses = readLosses(deps.db)
  }

  /** What the policy file lost to damage (or to going missing) and no admin has acknowledged yet. */
  get losses (): readonly string[] { return this.#losses }

  /** An admin has seen the losses: they are cleared (readiness recovers) and the acknowledgement audited. */
  acknowledgeLosses (who: Actor): readonly string[] {
    const problems = this.#losses
    if (problems.length === 0) return problems
    this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM meta WHERE key = ?').run(LOSSES_KEY)
      this.#record(who, 'policy.acknowledge', 'policy.sqlite', { problems }, null)
    })()
    this.#losses = []
    this.#log.warn({ actor: who.name, problems }, 'the policy file\'s losses were acknowledged by an admin')
    return problems
  }

  /** What the engine takes from the store now (expired rules left out). */
  inputs (): PolicyInputs {
    return { rules: this.rules.active(this.#now()), categories: this.categories.all() }
  }

  /** Arms the expiry timer. The daemon's first policy build takes the stored inputs (inputs()) itself, so they are not applied twice. */
  start (): void {
    this.#schedule()
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
  }

  listRules (): RuleView[] {
    return this.rules.list().map(r => this.#view(r))
  }

  addRule (req: NewRuleRequest, who: Actor): RuleView {
    const { rule, type } = parseCustomRule(req.rule)
    const now = this.#now()
    if (req.expiresAt !== null && req.expiresAt <= now) {
      throw new InputError('expiresAt', 'must be in the future')
    }
    if (this.rules.find(req.kind, rule) !== undefined) {
      throw new ConflictError(`a ${req.kind} rule ${JSON.stringify(rule)} exists already`)
    }
    const added = this.#change(() => {
      const r = this.rules.add({ kind: req.kind, rule, comment: req.comment, createdAt: now, createdBy: who.name, expiresAt: req.expiresAt })
      const view = { ...r, type }
      this.#record(who, 'rule.add', `rule ${r.id}`, null, req.forced === undefined ? view : { ...view, forced: req.forced })
      return view
    }, `rule added: ${req.kind} ${rule}`, 'rule')
    this.#schedule()
    return added
  }

  removeRule (id: number, who: Actor): RuleView {
    const r = this.rules.get(id)
    if (r === undefined) throw new NotFoundError(`no rule with id ${id}`)
    const view = this.#view(r)
    this.#change(() => {
      this.rules.remove(id)
      this.#record(who, 'rule.delete', `rule ${id}`, view, null)
    }, `rule removed: ${r.kind} ${r.rule}`)
    this.#schedule()
    return view
  }

  /** Sets `enabled` and/or `action` of a category for a group ('*' = every group). Returns before/after. */
  setCategory (group: string, category: string, patch: { enabled?: boolean, action?: BlockAction }, who: Actor): { before: CategoryOverride, after: CategoryOverride } {
    const before = this.categories.get(group, category) ?? {}
    const after: CategoryOverride = { ...before, ...patch }
    this.#change(() => {
      this.categories.set(group, category, after, this.#now(), who.name)
      this.#record(who, 'category.update', `${category} (group ${group})`, before, after)
    }, `category ${category} changed for group ${group}`)
    return { before, after }
  }

  /** Writes an audit entry for a change made elsewhere (config reload). */
  record (who: Actor, action: string, target: string, before: unknown, after: unknown): AuditEntry {
    return this.#record(who, action, target, before, after)
  }

  #record (who: Actor, action: string, target: string, before: unknown, after: unknown): AuditEntry {
    return this.audit.record({ ts: this.#now(), actor: who.name, client: who.client, action, target, before, after })
  }

  #view (r: CustomRule): RuleView {
    let type: RuleView['type'] = 'domain'
    try { type = parseCustomRule(r.rule).type } catch { /* stored rules were checked when added */ }
    return { ...r, type }
  }

  /** Runs `write` and applies the resulting inputs in one transaction: a refused engine rolls the write back. */
  #change<T> (write: () => T, reason: string, field?: string): T {
    try {
      return this.#db.transaction(() => {
        const out = write()
        this.#apply(this.inputs(), reason)
        return out
      })()
    } catch (err) {
      if (err instanceof PolicyError) {
        throw new InputError(field, `the policy does not compile with this change: ${err.problems.join('; ')}`, { cause: err })
      }
      throw err
    }
  }

  #applyNow (reason: string): void {
    try {
      this.#apply(this.inputs(), reason)
    } catch (err) {
      this.#log.error({ err }, 'stored custom rules or category overrides were not applied; the config\'s policy stays')
    }
  }

  /** Removes expired rules (audited as egressd's own change) and re-applies the policy. */
  expire (): CustomRule[] {
    const gone = this.rules.expired(this.#now())
    if (gone.length === 0) return gone
    this.#db.transaction(() => {
      for (const r of gone) {
        this.rules.remove(r.id)
        this.#record(SYSTEM_ACTOR, 'rule.expire', `rule ${r.id}`, this.#view(r), null)
      }
    })()
    this.#log.info({ rules: gone.map(r => `${r.kind} ${r.rule}`) }, 'custom rules expired')
    this.#applyNow(`${gone.length} custom rule(s) expired`)
    return gone
  }

  /** Arms one timer for the next expiry (at most a minute ahead, so a clock change is noticed). */
  #schedule (): void {
    clearTimeout(this.#timer)
    if (this.#closed) return
    const now = this.#now()
    const next = this.rules.nextExpiry()
    if (next === undefined) return
    const wait = Math.min(Math.max(next - now, 0) + 5, 60_000)
    this.#timer = setTimeout(() => {
      try { this.expire() } catch (err) { this.#log.error({ err }, 'expiring custom rules failed') }
      this.#schedule()
    }, wait)
    this.#timer.unref()
  }
}
