// Bearer tokens and roles. The config holds only each token's SHA-256 (never the token); a request's
// token is hashed and compared with every configured hash in constant time (crypto.timingSafeEqual,
// no early exit), so neither the answer nor its timing tells which tokens exist.
//
// Roles: admin may do everything; viewer may read (GET routes of role viewer or metrics); metrics
// may only scrape /metrics. Every route declares the least role it needs in `config.role`; a route
// without one needs admin (a forgotten declaration fails closed).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { ApiToken } from '../config/types.js'

export type TokenRole = ApiToken['role']
export type RouteRole = 'public' | TokenRole

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least role that may call the route (default admin). */
    role?: RouteRole
    /** Content-Security-Policy flavour of the responses: json (default) or docs (the HTML page). */
    csp?: 'json' | 'docs'
  }
  interface FastifyRequest {
    /** The token that authenticated the request (undefined on public routes). */
    principal?: { readonly name: string, readonly role: TokenRole }
  }
}

const GRANTS: Record<TokenRole, ReadonlySet<RouteRole>> = {
  admin: new Set(['public', 'metrics', 'viewer', 'admin']),
  viewer: new Set(['public', 'metrics', 'viewer']),
  metrics: new Set(['public', 'metrics'])
}

/** Whether a token of role `has` may call a route that needs `needs`. */
export function mayCall (has: TokenRole, needs: RouteRole): boolean {
  return GRANTS[has].has(needs)
}

/** The token from `Authorization: Bearer <token>`, or undefined. */
export function bearerToken (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const m = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]{1,512})[ \t]*$/i.exec(header)
  return m === null ? undefined : m[1]
}

/** The configured token whose hash matches, or undefined. Every hash is compared, always. */
export function authenticate (token: string | undefined, tokens: readonly ApiToken[]): ApiToken | undefined {
  if (token === undefined) return undefined
  const presented = createHash('sha256').update(token, 'utf8').digest()
  let found: ApiToken | undefined
  for (const t of tokens) {
    const expected = Buffer.from(t.sha256, 'hex')
    // Lengths are always 32 (the config checks the hash is 64 hex characters).
    if (expected.length === presented.length && timingSafeEqual(expected, presented) && found === undefined) found = t
  }
  return found
}

export interface NewToken {
  /** The secret to hand to the client (32 random bytes, base64url). Shown once, stored nowhere. */
  readonly token: string
  readonly sha256: string
  /** The line to add under api.tokens in the config file. */
  readonly configLine: string
}

/** A new random token for `egressd token create`. */
export function createToken (role: TokenRole, name: string): NewToken {
  const token = randomBytes(32).toString('base64url')
  const sha256 = createHash('sha256').update(token, 'utf8').digest('hex')
  return { token, sha256, configLine: `- { name: ${JSON.stringify(name)}, role: ${role}, sha256: "${sha256}" }` }
}
