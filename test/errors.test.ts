// The error catalog (src/errors.ts): its classes, and a walk over every code.

import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyRequest } from 'fastify'
import { describeError } from '../src/api/errors.js'
import {
  ConfigError, ConflictError, DNS_RCODE, EgressdError, HTTP_STATUS, httpStatusOf, InputError, NotFoundError, QueryError, rcodeOf,
  StoreError, UnavailableError, UpstreamError, type ErrorCode
} from '../src/errors.js'

t.test('ConfigError lists every issue with its dotted path', async t => {
  const e = new ConfigError([{ path: 'dns.listen.0', message: 'bad address' }, { path: 'log.level', message: 'unknown level' }], 'x.yaml')
  t.equal(e.code, 'EGRESSD_ERR_CONFIG_INVALID')
  t.match(e.message, /x\.yaml: 2 error/)
  t.match(e.message, /dns\.listen\.0: bad address/)
  t.match(e.message, /log\.level: unknown level/)
})

t.test('UpstreamError names the upstream and keeps the cause', async t => {
  const cause = new Error('ECONNREFUSED')
  const e = new UpstreamError('EGRESSD_ERR_UPSTREAM_NETWORK', 'udp://127.0.0.1:53', 'refused', { cause })
  t.equal(e.upstream, 'udp://127.0.0.1:53')
  t.equal(e.cause, cause)
  t.match(e.message, /^udp:\/\/127\.0\.0\.1:53: refused/)
})

// The catalog walk: every code in ErrorCode is thrown somewhere in src/ (as a literal, or by the
// class in errors.ts that carries it), and has an HTTP status and a DNS rcode, or says why not.
const SRC = fileURLToPath(new URL('../src/', import.meta.url))
const ERRORS_TS = join(SRC, 'errors.ts')
function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
}
const catalog = readFileSync(ERRORS_TS, 'utf8')
const others = sources(SRC).filter(f => f !== ERRORS_TS).map(f => ({ file: relative(SRC, f), text: readFileSync(f, 'utf8') }))
const CODES = Object.keys(HTTP_STATUS) as ErrorCode[]
/** The classes of errors.ts that pass a fixed code to super(): code -> class name. */
const classOf = new Map<string, string>()
for (const chunk of catalog.split(/^export class /m).slice(1)) {
  const code = /super\('(EGRESSD_ERR_[A-Z0-9_]+)'/.exec(chunk)?.[1]
  if (code !== undefined) classOf.set(code, /^\w+/.exec(chunk)![0])
}

t.test('ErrorCode, HTTP_STATUS and DNS_RCODE name the same codes', async t => {
  const union = [...(/export type ErrorCode =([^]*?)\n\n/.exec(catalog)?.[1] ?? '').matchAll(/'(EGRESSD_ERR_[A-Z0-9_]+)'/g)].map(m => m[1])
  t.ok(union.length > 10, `${union.length} codes in the union`)
  t.same([...union].sort(), [...CODES].sort(), 'HTTP_STATUS has exactly the codes of ErrorCode')
  t.same(Object.keys(DNS_RCODE).sort(), [...CODES].sort(), 'DNS_RCODE too')
  t.equal(new Set(union).size, union.length, 'no code twice')
})

t.test('every code is used in src/', async t => {
  for (const code of CODES) {
    const literal = others.filter(o => o.text.includes(`'${code}'`)).map(o => o.file)
    const cls = classOf.get(code)
    const constructed = cls === undefined ? [] : others.filter(o => new RegExp(`new ${cls}\\(`).test(o.text)).map(o => o.file)
    t.ok(literal.length + constructed.length > 0, `${code}: ${[...literal, ...constructed.map(f => `${f} (new ${cls})`)].join(', ') || 'used nowhere'}`)
  }
})

t.test('every code has an HTTP status and a DNS rcode, or says why not', async t => {
  for (const code of CODES) {
    for (const [what, map, ok] of [['HTTP status', HTTP_STATUS, (n: number) => n >= 400 && n <= 599], ['DNS rcode', DNS_RCODE, (n: number) => n >= 1 && n <= 23]] as const) {
      const v = map[code]
      if (typeof v === 'number') t.ok(ok(v), `${code}: ${what} ${v}`)
      else t.ok(typeof v?.notApplicable === 'string' && v.notApplicable.length > 10, `${code}: no ${what}, because ${v?.notApplicable}`)
    }
  }
})

t.test('the API answers each code with its HTTP status, and the DNS path with its rcode', async t => {
  for (const code of CODES) {
    const err = new EgressdError(code, 'what went wrong')
    const status = HTTP_STATUS[code]
    const body = describeError(err, 1024)
    if (typeof status === 'number') {
      t.equal(body.statusCode, status, `${code} -> HTTP ${status}`)
      t.equal(body.message, status === 500 ? 'internal error (logged)' : 'what went wrong', `${code}: message`)
    } else {
      t.equal(body.statusCode, 500, `${code} has no status: an internal error`)
      t.equal(body.message, 'internal error (logged)')
    }
    const rcode = DNS_RCODE[code]
    t.equal(rcodeOf(err), typeof rcode === 'number' ? rcode : 2, `${code} -> rcode`)
  }
  t.equal(rcodeOf(new Error('a fault')), 2, 'an uncoded fault is SERVFAIL')
  t.equal(httpStatusOf(new Error('a fault')), undefined)
})

t.test('domain errors: the store names its field, the API says where in the request it came', async t => {
  const e = new InputError('rule', 'not a domain')
  t.match(e, { code: 'EGRESSD_ERR_INPUT_INVALID', field: 'rule', detail: 'not a domain', message: 'rule: not a domain' })
  const req = { body: { rule: 'x' }, params: {}, query: {} } as unknown as FastifyRequest
  t.same(describeError(e, 1024, req), { error: 'Bad Request', message: 'body.rule: not a domain', statusCode: 400 })
  t.same(describeError(new InputError('querystring.client', 'must be an IP address'), 1024, req).message, 'querystring.client: must be an IP address', 'an API field keeps its name')
  t.same(describeError(new InputError(undefined, 'the policy does not compile'), 1024, req).message, 'the policy does not compile')
  t.same(describeError(new QueryError('from', 'must be before to'), 1024), { error: 'Bad Request', message: 'from: must be before to', statusCode: 400, parameter: 'from' })
  t.match(describeError(new NotFoundError('no rule with id 7'), 1024), { statusCode: 404, message: 'no rule with id 7' })
  t.match(describeError(new ConflictError('a block rule "a.org" exists already'), 1024), { statusCode: 409 })
  t.match(describeError(new UnavailableError('the policy file is unavailable'), 1024), { statusCode: 503, message: 'the policy file is unavailable' })
  t.match(describeError(new StoreError('EGRESSD_ERR_STORE', 'SQLITE_CORRUPT: /var/lib/egressd/blocks.sqlite'), 1024), { statusCode: 500, message: 'internal error (logged)' }, 'store internals stay in the log')
})
