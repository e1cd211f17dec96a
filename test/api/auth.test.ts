// Unit tests of the API's building blocks: bearer parsing, constant-time token lookup, role grants,
// token creation (and `egressd token create` end to end), and the per-client rate limiter.

import t from 'tap'
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { authenticate, bearerToken, createToken, mayCall, type RouteRole, type TokenRole } from '../../src/api/auth.js'
import { RateLimiter } from '../../src/api/rate-limit.js'
import { parseConfig } from '../../src/config/load.js'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

t.test('bearer tokens are read from the Authorization header only in the Bearer form', async t => {
  t.equal(bearerToken('Bearer abc_DEF-1.2~3+/='), 'abc_DEF-1.2~3+/=')
  t.equal(bearerToken('bearer   xyz  '), 'xyz')
  for (const bad of [undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer a b', 'Token abc', `Bearer ${'x'.repeat(513)}`]) {
    t.equal(bearerToken(bad), undefined, String(bad))
  }
})

t.test('a token is found by its SHA-256 among every configured one', async t => {
  const tokens = [
    { name: 'a', role: 'admin' as const, sha256: sha('alpha') },
    { name: 'v', role: 'viewer' as const, sha256: sha('victor') }
  ]
  t.equal(authenticate('alpha', tokens)?.name, 'a')
  t.equal(authenticate('victor', tokens)?.name, 'v')
  t.equal(authenticate('Victor', tokens), undefined)
  t.equal(authenticate('', tokens), undefined)
  t.equal(authenticate(undefined, tokens), undefined)
  t.equal(authenticate('alpha', []), undefined)
  // The hash itself is no token.
  t.equal(authenticate(sha('alpha'), tokens), undefined)
})

t.test('roles: admin everything, viewer reads, metrics only scrapes', async t => {
  const table: Array<[TokenRole, RouteRole, boolean]> = [
    ['admin', 'admin', true], ['admin', 'viewer', true], ['admin', 'metrics', true], ['admin', 'public', true],
    ['viewer', 'admin', false], ['viewer', 'viewer', true], ['viewer', 'metrics', true], ['viewer', 'public', true],
    ['metrics', 'admin', false], ['metrics', 'viewer', false], ['metrics', 'metrics', true], ['metrics', 'public', true]
  ]
  for (const [has, needs, ok] of table) t.equal(mayCall(has, needs), ok, `${has} -> ${needs}`)
})

t.test('createToken: 32 random bytes, and a config line that the config loader accepts', async t => {
  const a = createToken('viewer', 'soc')
  const b = createToken('viewer', 'soc')
  t.not(a.token, b.token)
  t.equal(Buffer.from(a.token, 'base64url').length, 32)
  t.equal(a.sha256, sha(a.token))
  const config = parseConfig(`api:\n  tokens:\n    ${a.configLine}\n`, { resolvConf: 'nameserver 192.0.2.1' })
  t.same(config.api.tokens, [{ name: 'soc', role: 'viewer', sha256: a.sha256 }])
  t.equal(authenticate(a.token, config.api.tokens)?.role, 'viewer')
})

t.test('egressd token create prints a token and its config line; bad roles are usage errors', async t => {
  const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
  const r = spawnSync(process.execPath, [CLI, 'token', 'create', '--role', 'metrics', '--name', 'prometheus'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(r.status, 0, r.stderr)
  const token = /^token: (\S+)$/m.exec(r.stdout)?.[1]
  t.ok(token, r.stdout)
  const line = /^- \{ name: "prometheus", role: metrics, sha256: "([0-9a-f]{64})" \}$/m.exec(r.stdout)
  t.ok(line, r.stdout)
  t.equal(line?.[1], sha(token ?? ''))
  const bad = spawnSync(process.execPath, [CLI, 'token', 'create', '--role', 'root'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--role must be one of admin, viewer, metrics/)
})

t.test('rate limit: a burst, then perSecond, per client address, with the wait until the next token', async t => {
  let now = 1_000_000
  const rl = new RateLimiter({ perSecond: 2, burst: 3, now: () => now })
  for (let i = 0; i < 3; i++) t.ok(rl.take('10.0.0.1').ok, `burst ${i}`)
  const refused = rl.take('10.0.0.1')
  t.same(refused, { ok: false, retryAfterS: 1 })
  t.ok(rl.take('10.0.0.2').ok, 'another client has its own bucket')
  now += 500 // one token back at 2/s
  t.ok(rl.take('10.0.0.1').ok)
  t.notOk(rl.take('10.0.0.1').ok)
  now += 60_000 // refills to the burst, not beyond
  for (let i = 0; i < 3; i++) t.ok(rl.take('10.0.0.1').ok)
  t.notOk(rl.take('10.0.0.1').ok)
  t.equal(rl.refused, 3)
})

t.test('rate limit: the table of clients stays bounded', async t => {
  let now = 0
  const rl = new RateLimiter({ perSecond: 1, burst: 1, now: () => now, maxClients: 100 })
  for (let i = 0; i < 1000; i++) { now += 1; rl.take(`10.0.${i >> 8}.${i & 255}`) }
  // Every address got its first request through (the table pruned instead of refusing).
  t.equal(rl.refused, 0)
  // A client that just spent its token is still limited (not pruned while its bucket is empty).
  t.notOk(rl.take('10.0.3.231').ok)
})
