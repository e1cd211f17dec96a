// One catalog of coded errors (STYLE.md: fastify's lib/errors.js, undici's UND_ERR_*).
// Codes are stable and never reused; tests assert on `code`. Every error can carry a `cause`.

export type ErrorCode =
  | 'EGRESSD_ERR_CONFIG_INVALID'
  | 'EGRESSD_ERR_CONFIG_READ'
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
  | 'EGRESSD_ERR_API_INVALID'
  | 'EGRESSD_ERR_API_NOT_FOUND'
  | 'EGRESSD_ERR_API_CONFLICT'
  | 'EGRESSD_ERR_API_UNAVAILABLE'
  | 'EGRESSD_ERR_LIST_FETCH'
  | 'EGRESSD_ERR_LIST_ADDRESS_REFUSED'
  | 'EGRESSD_ERR_LIST_SIGNATURE'
  | 'EGRESSD_ERR_LIST_REJECTED'
  | 'EGRESSD_ERR_LIST_KEY'

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
  constructor (problems: string[]) {
    super('EGRESSD_ERR_POLICY_INVALID', `blocklists: ${problems.length} error(s)\n` + problems.map(p => `  ${p}`).join('\n'))
    this.problems = problems
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
 * A management API request that cannot be carried out: invalid input (`field` names it, dotted:
 * `body.rule`), no such object, a conflict, or a component the request needs is unavailable. The
 * HTTP status for each code is chosen in one place (api/errors.ts).
 */
export class ApiError extends EgressdError {
  readonly field: string | undefined
  constructor (code: ErrorCode, message: string, options?: { field?: string, cause?: unknown }) {
    super(code, message, options)
    this.field = options?.field
    this.name = 'ApiError'
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
