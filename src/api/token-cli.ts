// `egressd token create --role ROLE [--name NAME]`: prints a new random API token and the config
// line holding its SHA-256. The token itself is shown once and stored nowhere.

import { parseCliArgs } from '../cli-args.js'
import { EgressdError } from '../errors.js'
import { createToken, type TokenRole } from './auth.js'

export const TOKEN_USAGE = `  egressd token create --role admin|viewer|metrics [--name NAME]
      Prints a new random API token (32 bytes, base64url) and the line to add under api.tokens
      (it holds only the token's SHA-256). Give the token to its user; it is not stored anywhere.`

const ROLES: readonly TokenRole[] = ['admin', 'viewer', 'metrics']

export function tokenCommand (argv: string[], out: (text: string) => void): number {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { role: { type: 'string' }, name: { type: 'string' } },
    allowPositionals: true,
    strict: true
  })
  const usage = (m: string): never => { throw new EgressdError('EGRESSD_ERR_USAGE', `${m}\nusage:\n${TOKEN_USAGE}`) }
  if (positionals.length !== 1 || positionals[0] !== 'create') usage('token needs the word create')
  const role = values.role as TokenRole | undefined
  if (role === undefined || !ROLES.includes(role)) usage(`--role must be one of ${ROLES.join(', ')}`)
  const name = values.name ?? `${role}-${new Date().toISOString().slice(0, 10)}`
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(name)) usage('--name: letters, digits, and _ . @ - (at most 64)')
  const t = createToken(role as TokenRole, name)
  out(`token: ${t.token}\n` +
    '# Keep it secret: it is shown only now. Send it as: Authorization: Bearer <token>\n' +
    '# Add this line under api.tokens in the config, then reload (SIGHUP or POST /api/v1/reload):\n' +
    `${t.configLine}\n`)
  return 0
}
