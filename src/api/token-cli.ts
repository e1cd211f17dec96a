// `egressd token create --role ROLE [--name NAME] [--out FILE]`: prints a new random API token and
// the config line holding its SHA-256. The token itself is shown once and stored nowhere, or only in
// FILE (mode 0600, never overwritten), where the admin commands read it (--token-file, or
// /etc/egressd/cli.token by default).

import { writeFileSync } from 'node:fs'
import { parseCliArgs } from '../cli-args.js'
import { EgressdError } from '../errors.js'
import { createToken, type TokenRole } from './auth.js'

export const TOKEN_USAGE = `  egressd token create --role admin|viewer|metrics [--name NAME] [--out FILE]
      Prints a new random API token (32 bytes, base64url) and the line to add under api.tokens
      (it holds only the token's SHA-256). Give the token to its user; it is not stored anywhere.
      --out FILE writes the token to FILE instead (mode 0600; an existing FILE is an error), e.g.
      /etc/egressd/cli.token, where the admin commands (egressd rules ...) look for it.`

const ROLES: readonly TokenRole[] = ['admin', 'viewer', 'metrics']

export function tokenCommand (argv: string[], out: (text: string) => void): number {
  const { values, positionals } = parseCliArgs({
    args: argv,
    options: { role: { type: 'string' }, name: { type: 'string' }, out: { type: 'string' } },
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
  if (values.out !== undefined) {
    try {
      writeFileSync(values.out, `token: ${t.token}\n`, { mode: 0o600, flag: 'wx' })
    } catch (err) {
      throw new EgressdError('EGRESSD_ERR_USAGE', `cannot write the token to ${values.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    out(`# The token is in ${values.out} (mode 0600). Add this line under api.tokens in the config, then reload:\n${t.configLine}\n`)
    return 0
  }
  out(`token: ${t.token}\n` +
    '# Keep it secret: it is shown only now. Send it as: Authorization: Bearer <token>\n' +
    '# Add this line under api.tokens in the config, then reload (SIGHUP or POST /api/v1/reload):\n' +
    `${t.configLine}\n`)
  return 0
}
