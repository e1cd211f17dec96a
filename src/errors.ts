// One catalog of coded errors (STYLE.md: fastify's lib/errors.js, undici's UND_ERR_*).
// Codes are stable and never reused; tests assert on `code`. Every error can carry a `cause`.

export type ErrorCode =
  | 'EGRESSD_ERR_CONFIG_INVALID'
  | 'EGRESSD_ERR_UPSTREAM_TIMEOUT'
  | 'EGRESSD_ERR_UPSTREAM_NETWORK'
  | 'EGRESSD_ERR_UPSTREAM_BAD_ANSWER'
  | 'EGRESSD_ERR_UPSTREAM_HTTP'
  | 'EGRESSD_ERR_UPSTREAM_CLOSED'
  | 'EGRESSD_ERR_UPSTREAM_SERVFAIL'
  | 'EGRESSD_ERR_ALL_UPSTREAMS_FAILED'
  | 'EGRESSD_ERR_LISTEN'
  | 'EGRESSD_ERR_USAGE'
  | 'EGRESSD_ERR_POLICY_INVALID'
  | 'EGRESSD_ERR_STORE_NEWER_SCHEMA'
  | 'EGRESSD_ERR_STORE'
  | 'EGRESSD_ERR_QUERY_INVALID'
  | 'EGRESSD_ERR_API_TLS'
  | 'EGRESSD_ERR_INPUT_INVALID'
  | 'EGRESSD_ERR_NOT_FOUND'
  | 'EGRESSD_ERR_CONFLICT'
  | 'EGRESSD_ERR_UNAVAILABLE'
  | 'EGRESSD_ERR_LIST_FETCH'
  | 'EGRESSD_ERR_LIST_ADDRESS_REFUSED'
  | 'EGRESSD_ERR_LIST_SIGNATURE'
  | 'EGRESSD_ERR_LIST_REJECTED'
  | 'EGRESSD_ERR_LIST_KEY'
  | 'EGRESSD_ERR_CLI_API'
  | 'EGRESSD_ERR_RULE_TOO_BROAD'

export class EgressdError extends Error {
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'EgressdError'
  }
}

/** One problem in a config file: `path` is dotted (`dns.listen.0`), `message` says what is wrong. */
export interface ConfigIssue { path: string, message: string }

export class ConfigError extends EgressdError {
  readonly issues: readonly ConfigIssue[]
  readonly file: string | undefined
  constructor (issues: ConfigIssue[], file?: string, options?: { cause?: unknown }) {
    const where = file ?? '<config>'
    super('EGRESSD_ERR_CONFIG_INVALID',
      `${where}: ${issues.length} error(s)\n` + issues.map(i => `  ${i.path || '(root)'}: ${i.message}`).join('\n'), options)
    this.issues = issues
    this.file = file
    this.name = 'ConfigError'
  }
}

export class UpstreamError extends EgressdError {
  readonly upstream: string
  constructor (code: ErrorCode, upstream: string, message: string, options?: { cause?: unknown }) {
    super(code, `${upstream}: ${message}`, options)
    this.upstream = upstream
    this.name = 'UpstreamError'
  }
}

/** Lists or rules that cannot be compiled: every problem as `FILE:LINE: message` or `config PATH: message`. */
export class PolicyError extends EgressdError {
  readonly problems: readonly string[]
  /** Skipped lines and other warnings of the files that did load (check-config prints them too). */
  readonly warnings: readonly string[]
  constructor (problems: string[], warnings: readonly string[] = []) {
    super('EGRESSD_ERR_POLICY_INVALID', `blocklists: ${problems.length} error(s)\n` + problems.map(p => `  ${p}`).join('\n'))
    this.problems = problems
    this.warnings = warnings
    this.name = 'PolicyError'
  }
}

/** The SQLite store refused to open or failed in a way the caller must report. */
export class StoreError extends EgressdError {
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'StoreError'
  }
}

/**
 * Why a list update did not take: `reason` is a short stable tag for status and metrics
 * (`http-status`, `timeout`, `network`, `too-large`, `redirect`, `scheme`, `address`, `signature`,
 * `bad-lines`, `too-few`, `shrink`, `build`, `store`).
 */
export class ListUpdateError extends EgressdError {
  readonly source: string
  readonly reason: string
  constructor (code: ErrorCode, source: string, reason: string, message: string, options?: { cause?: unknown }) {
    super(code, `${source}: ${message}`, options)
    this.source = source
    this.reason = reason
    this.name = 'ListUpdateError'
  }
}

/**
 * Input that does not pass: a rule line, a request field. `field` names it as the thrower knows it:
 * the store says `rule` or `expiresAt` (the API's error handler adds where in the request it came,
 * `body.rule`); the API's own checks say `querystring.client`. The message starts with the field.
 */
export class InputError extends EgressdError {
  readonly field: string | undefined
  /** The message without the field. */
  readonly detail: string
  constructor (field: string | undefined, detail: string, options?: { cause?: unknown }) {
    super('EGRESSD_ERR_INPUT_INVALID', field === undefined ? detail : `${field}: ${detail}`, options)
    this.field = field
    this.detail = detail
    this.name = 'InputError'
  }
}

/** No such object (a rule id, a category, a list source). */
export class NotFoundError extends EgressdError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('EGRESSD_ERR_NOT_FOUND', message, options)
    this.name = 'NotFoundError'
  }
}

/** The change collides with what exists (the same rule twice). */
export class ConflictError extends EgressdError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('EGRESSD_ERR_CONFLICT', message, options)
    this.name = 'ConflictError'
  }
}

/** A component the request needs is not there now (the policy file, list updates, the block log). */
export class UnavailableError extends EgressdError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('EGRESSD_ERR_UNAVAILABLE', message, options)
    this.name = 'UnavailableError'
  }
}

/**
 * A block rule the rule guard refuses (policy/guard.ts): a public suffix, nearly every name, names
 * that must keep working, or too wide an address range. `field` names the rule as the thrower knows
 * it; the message says what the rule would block and how to add it anyway.
 */
export class RuleTooBroadError extends EgressdError {
  readonly field: string
  constructor (field: string, message: string) {
    super('EGRESSD_ERR_RULE_TOO_BROAD', `${field}: ${message}`)
    this.field = field
    this.name = 'RuleTooBroadError'
  }
}

/** A block-log search or statistics parameter that does not parse; `parameter` names it (HTTP 400). */
export class QueryError extends EgressdError {
  readonly parameter: string
  constructor (parameter: string, message: string) {
    super('EGRESSD_ERR_QUERY_INVALID', `${parameter}: ${message}`)
    this.parameter = parameter
    this.name = 'QueryError'
  }
}

/** A code that no client of this kind ever sees, and why (the catalog test asks for a reason). */
export interface NotMapped { readonly notApplicable: string }

const NEVER_ON_API = (why: string): NotMapped => ({ notApplicable: why })
const NOT_ON_QUERY_PATH: NotMapped = { notApplicable: 'not on the DNS query path' }

/**
 * The HTTP status of each code: the API's error handler (api/errors.ts) answers with it. 500s
 * are logged and the client sees only "internal error (logged)"; errors without a code are 500s.
 */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number | NotMapped>> = {
  EGRESSD_ERR_CONFIG_INVALID: 422,
  EGRESSD_ERR_UPSTREAM_TIMEOUT: NEVER_ON_API('the DNS path answers it (no route asks an upstream)'),
  EGRESSD_ERR_UPSTREAM_NETWORK: NEVER_ON_API('the DNS path answers it (no route asks an upstream)'),
  EGRESSD_ERR_UPSTREAM_BAD_ANSWER: NEVER_ON_API('the DNS path answers it (no route asks an upstream)'),
  EGRESSD_ERR_UPSTREAM_HTTP: NEVER_ON_API('the DNS path answers it (no route asks an upstream)'),
  EGRESSD_ERR_UPSTREAM_CLOSED: NEVER_ON_API('the DNS path answers it (no route asks an upstream)'),
  EGRESSD_ERR_UPSTREAM_SERVFAIL: NEVER_ON_API('the DNS path answers it (no route asks an upstream)'),
  EGRESSD_ERR_ALL_UPSTREAMS_FAILED: NEVER_ON_API('the DNS path answers it (no route asks an upstream)'),
  EGRESSD_ERR_LISTEN: NEVER_ON_API('start-up: the daemon does not start'),
  EGRESSD_ERR_USAGE: NEVER_ON_API('the CLI exits 2; the list update route turns the updater\'s unknown source into a NotFoundError'),
  EGRESSD_ERR_POLICY_INVALID: 422,
  EGRESSD_ERR_STORE_NEWER_SCHEMA: NEVER_ON_API('start-up: the store does not open'),
  EGRESSD_ERR_STORE: 500,
  EGRESSD_ERR_QUERY_INVALID: 400,
  EGRESSD_ERR_API_TLS: NEVER_ON_API('start-up: the API does not start'),
  EGRESSD_ERR_INPUT_INVALID: 400,
  EGRESSD_ERR_NOT_FOUND: 404,
  EGRESSD_ERR_CONFLICT: 409,
  EGRESSD_ERR_UNAVAILABLE: 503,
  EGRESSD_ERR_LIST_FETCH: NEVER_ON_API('a list update result (status, /api/v1/lists/update), never thrown to a request'),
  EGRESSD_ERR_LIST_ADDRESS_REFUSED: NEVER_ON_API('a list update result (status, /api/v1/lists/update), never thrown to a request'),
  EGRESSD_ERR_LIST_SIGNATURE: NEVER_ON_API('a list update result (status, /api/v1/lists/update), never thrown to a request'),
  EGRESSD_ERR_LIST_REJECTED: NEVER_ON_API('a list update result (status, /api/v1/lists/update), never thrown to a request'),
  EGRESSD_ERR_LIST_KEY: NEVER_ON_API('egressd lists sign/keygen (CLI)'),
  EGRESSD_ERR_CLI_API: NEVER_ON_API('the CLI\'s admin commands (egressd rules, reload, ...) report what the API answered them'),
  EGRESSD_ERR_RULE_TOO_BROAD: 422
}

/** RFC 1035 SERVFAIL. */
const SERVFAIL = 2

/**
 * The DNS rcode a client gets when a query fails with each code. The DNS path turns every failure
 * (an upstream error, a fault while answering) into a SERVFAIL outcome (dns/pipeline.ts), which is
 * what this says for every code that can reach it.
 */
export const DNS_RCODE: Readonly<Record<ErrorCode, number | NotMapped>> = {
  EGRESSD_ERR_CONFIG_INVALID: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_UPSTREAM_TIMEOUT: SERVFAIL,
  EGRESSD_ERR_UPSTREAM_NETWORK: SERVFAIL,
  EGRESSD_ERR_UPSTREAM_BAD_ANSWER: SERVFAIL,
  EGRESSD_ERR_UPSTREAM_HTTP: SERVFAIL,
  EGRESSD_ERR_UPSTREAM_CLOSED: SERVFAIL,
  EGRESSD_ERR_UPSTREAM_SERVFAIL: SERVFAIL,
  EGRESSD_ERR_ALL_UPSTREAMS_FAILED: SERVFAIL,
  EGRESSD_ERR_LISTEN: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_USAGE: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_POLICY_INVALID: { notApplicable: 'a policy that does not compile is never swapped in: the one in force keeps answering' },
  EGRESSD_ERR_STORE_NEWER_SCHEMA: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_STORE: { notApplicable: 'block events are queued off the query path and dropped (counted) rather than fail a query' },
  EGRESSD_ERR_QUERY_INVALID: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_API_TLS: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_INPUT_INVALID: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_NOT_FOUND: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_CONFLICT: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_UNAVAILABLE: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_LIST_FETCH: { notApplicable: 'list updates run beside DNS; a failed one leaves the previous copy serving' },
  EGRESSD_ERR_LIST_ADDRESS_REFUSED: { notApplicable: 'list updates run beside DNS; a failed one leaves the previous copy serving' },
  EGRESSD_ERR_LIST_SIGNATURE: { notApplicable: 'list updates run beside DNS; a failed one leaves the previous copy serving' },
  EGRESSD_ERR_LIST_REJECTED: { notApplicable: 'list updates run beside DNS; a failed one leaves the previous copy serving' },
  EGRESSD_ERR_LIST_KEY: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_CLI_API: NOT_ON_QUERY_PATH,
  EGRESSD_ERR_RULE_TOO_BROAD: NOT_ON_QUERY_PATH
}

/** The HTTP status for `err`: its code's, or undefined (the API answers 500, or the status fastify set). */
export function httpStatusOf (err: unknown): number | undefined {
  if (!(err instanceof EgressdError)) return undefined
  const s = HTTP_STATUS[err.code]
  return typeof s === 'number' ? s : undefined
}

/** The DNS rcode for a query that failed with `err`: its code's, else SERVFAIL (a fault). */
export function rcodeOf (err: unknown): number {
  if (!(err instanceof EgressdError)) return SERVFAIL
  const r = DNS_RCODE[err.code]
  return typeof r === 'number' ? r : SERVFAIL
}
