import t from 'tap'
import { ConfigError, UpstreamError } from '../src/errors.js'

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
