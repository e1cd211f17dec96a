// What the admin routes that change policy share: who asks (the audit log's actor) and the policy
// file they change (custom rules, category overrides, the audit log), or UnavailableError.

import type { FastifyRequest } from 'fastify'
import { UnavailableError } from '../errors.js'
import type { Actor, CustomPolicy } from '../store/custom-policy.js'
import type { ApiHost } from './host.js'

/** The token's name and the client's address, as the audit log records them. */
export const actorOf = (req: FastifyRequest): Actor => ({ name: req.principal?.name ?? 'unknown', client: req.ip })

/** The policy file, or a 503 (UnavailableError) saying what needs it. */
export function requireStore (host: ApiHost): CustomPolicy {
  const c = host.customPolicy
  if (c === undefined) throw new UnavailableError('the policy file is unavailable (see the log and /api/v1/status); rules, category changes and the audit log need it')
  return c
}
