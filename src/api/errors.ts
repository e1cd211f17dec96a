// How the API fails: every error body is `{ error, message, statusCode }` (no stack, no internals;
// a block-log query error adds `parameter`), the status of a coded error is the catalog's
// (HTTP_STATUS in errors.ts), applied here, in the one error handler: routes and the store throw,
// they do not pick statuses. Validation messages name the field (`body.kind: must be one of block,
// allow`). Also the JSON schema compilers: query strings and path parameters are coerced from text
// (`?limit=10`), bodies are not (`"enabled": "true"` is an error); neither removes unknown fields:
// they are rejected.

import { STATUS_CODES } from 'node:http'
import { Ajv, type ErrorObject } from 'ajv'
import addFormatsModule from 'ajv-formats'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { httpStatusOf, InputError, QueryError } from '../errors.js'

/** Messages for fastify's own request errors (by code), where its wording does not name the part. */
const FASTIFY_MESSAGES: Record<string, (e: FastifyError, limit: number) => string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (_e, limit) => `body: larger than the limit of ${limit} bytes (api.bodyLimit)`,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => 'Content-Type: not supported; send application/json',
  FST_ERR_CTP_EMPTY_JSON_BODY: () => 'body: empty, but Content-Type says application/json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => 'Content-Length: does not match the body'
}

export interface ErrorBody {
  readonly error: string
  readonly message: string
  readonly statusCode: number
  /** A block-log query parameter that does not parse (QueryError). */
  readonly parameter?: string
}

export function errorBody (statusCode: number, message: string): ErrorBody {
  return { error: STATUS_CODES[statusCode] ?? 'Error', message, statusCode }
}

/** The request parts an InputError's field may be in, as the API's messages name them. */
const PARTS = ['body', 'params', 'querystring'] as const

/**
 * An InputError's message as the client should read it: a field named by the store (`rule`) gets
 * the part of the request it came in (`body.rule`); a field the API named already keeps its name.
 */
function inputMessage (err: InputError, req: FastifyRequest | undefined): string {
  const field = err.field
  if (field === undefined || req === undefined || PARTS.some(p => field.startsWith(`${p}.`) || field === p)) return err.message
  const parts = { body: req.body, params: req.params, querystring: req.query }
  const part = PARTS.find(p => { const v = parts[p]; return typeof v === 'object' && v !== null && Object.hasOwn(v, field) })
  return part === undefined ? err.message : `${part}.${field}: ${err.detail}`
}

/** The status and the message a client may see for `err` (thrown while answering `req`). */
export function describeError (err: unknown, bodyLimit: number, req?: FastifyRequest): ErrorBody {
  const coded = httpStatusOf(err)
  if (coded !== undefined) {
    if (coded === 500) return errorBody(500, 'internal error (logged)')
    if (err instanceof QueryError) return { ...errorBody(coded, err.message), parameter: err.parameter }
    if (err instanceof InputError) return errorBody(coded, inputMessage(err, req))
    return errorBody(coded, (err as Error).message)
  }
  const e = err as FastifyError
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500
  if (status >= 500) return errorBody(status, status === 503 ? 'unavailable, try again later' : 'internal error (logged)')
  const fixed = e.code === undefined ? undefined : FASTIFY_MESSAGES[e.code]
  return errorBody(status, fixed !== undefined ? fixed(e, bodyLimit) : e.message)
}

/** `/a/0/b` -> `.a.0.b` */
const dotted = (pointer: string): string => pointer.split('/').slice(1).map(s => `.${s.replace(/~1/g, '/').replace(/~0/g, '~')}`).join('')

function describeAjv (e: ErrorObject, part: string): { field: string, message: string } {
  const at = part + dotted(e.instancePath)
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': return { field: `${at}.${String(p.additionalProperty)}`, message: 'unknown field' }
    case 'required': return { field: `${at}.${String(p.missingProperty)}`, message: 'required' }
    case 'enum': return { field: at, message: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}` }
    case 'type': return { field: at, message: `must be ${String(p.type)}` }
    case 'format': return { field: at, message: `must be a ${String(p.format)}${p.format === 'date-time' ? ' (RFC 3339, e.g. 2030-01-31T12:00:00Z)' : ''}` }
    case 'minProperties': return { field: at, message: 'must not be empty' }
    default: return { field: at, message: e.message ?? 'invalid' }
  }
}

/** fastify's schemaErrorFormatter: one InputError naming the first bad field. */
export function schemaErrorFormatter (errors: ErrorObject[], dataVar: string): Error {
  const { field, message } = describeAjv(errors[0], dataVar)
  return new InputError(field, message)
}

/** Two ajv instances: coercing for query strings and params, exact for bodies; both reject unknown fields. */
export function installValidators (app: FastifyInstance): void {
  const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
  const common = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const
  const coercing = addFormats(new Ajv({ ...common, coerceTypes: 'array' }))
  const exact = addFormats(new Ajv({ ...common, coerceTypes: false }))
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? exact : coercing).compile(schema))
}

/** JSON bodies: a parse error names the body and says where it broke. */
export function installJsonParser (app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string
    if (text.length === 0) { done(null, undefined); return }
    try {
      done(null, JSON.parse(text))
    } catch (err) {
      done(new InputError('body', `malformed JSON (${(err as Error).message})`), undefined)
    }
  })
}

/** The error handler and the JSON 404. Server errors are logged with their stack; clients never see it. */
export function installErrorHandlers (app: FastifyInstance, log: Logger, bodyLimit: number): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const body = describeError(err, bodyLimit, req)
    if (body.statusCode >= 500) log.error({ err, method: req.method, url: req.url }, 'API request failed')
    else log.debug({ method: req.method, url: req.url, status: body.statusCode, message: body.message }, 'API request refused')
    if (body.statusCode === 429) void reply.header('Retry-After', (err as { retryAfterS?: number }).retryAfterS ?? 1)
    return reply.code(body.statusCode).send(body)
  })
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody(404, `no route ${req.method} ${req.url.split('?')[0]}`)))
}
