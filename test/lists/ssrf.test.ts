// SSRF defences of list downloads: the address connected to is checked (IP literals, names resolved
// through the configured upstreams, redirects), other schemes are refused, and only exactly the
// allow-listed hosts may be private or loopback.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { refusedRange } from '../../src/lists/addresses.js'
import { fetchList, type FetchOptions } from '../../src/lists/fetcher.js'
import { ListUpdateError } from '../../src/errors.js'
import { firstAttempts, listDaemon, startWorld, V1, warnings } from './fixtures.js'
import { startListServer } from './list-server.js'

const world = await startWorld()
t.teardown(() => world.close())

t.test('refusedRange: loopback, link-local, private, ULA, CGNAT, unspecified, multicast', async t => {
  const refused: Array<[string, RegExp]> = [
    ['127.0.0.1', /loopback/], ['127.255.0.9', /loopback/], ['::1', /loopback/],
    ['169.254.169.254', /link-local/], ['fe80::1', /link-local/], ['febf::1', /link-local/],
    ['10.1.2.3', /private/], ['172.16.0.1', /private/], ['172.31.255.255', /private/], ['192.168.1.1', /private/],
    ['fc00::1', /unique local/], ['fd12:3456::1', /unique local/],
    ['100.64.0.1', /CGNAT/], ['100.127.255.255', /CGNAT/],
    ['0.0.0.0', /unspecified/], ['::', /unspecified/],
    ['224.0.0.251', /multicast/], ['ff02::1', /multicast/], ['255.255.255.255', /broadcast/],
    ['::ffff:127.0.0.1', /loopback/], ['::ffff:10.0.0.1', /private/], ['fe80::1%eth0', /link-local/]
  ]
  for (const [ip, what] of refused) t.match(refusedRange(ip), what, `${ip} refused`)
  for (const ip of ['192.0.2.80', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2001:db8::1', '2606:4700::1111', '::ffff:8.8.8.8']) {
    t.equal(refusedRange(ip), undefined, `${ip} allowed`)
  }
})

async function rejection (p: Promise<unknown>): Promise<ListUpdateError> {
  try {
    await p
  } catch (err) {
    if (err instanceof ListUpdateError) return err
    throw err
  }
  throw new Error('expected a rejection')
}

t.test('fetcher: schemes, literals, redirects', async t => {
  const http = await startListServer()
  const https = await startListServer(world.cert)
  t.teardown(async () => { await http.close(); await https.close() })
  https.set('/list.txt', { body: V1 })
  https.set('/to-http', { redirect: http.url('/list.txt') })
  https.set('/hop', { redirect: '/list.txt', status: 301 })
  for (let i = 0; i < 4; i++) https.set(`/loop${i}`, { redirect: `/loop${i + 1}` })
  http.set('/list.txt', { body: V1 })
  const lookups: string[] = []
  const base: Omit<FetchOptions, 'url'> = {
    source: 'x', timeoutMs: 2000, maxBytes: 100_000, ca: readFileSync(world.pki.caFile),
    resolveHost: async h => { lookups.push(h); return ['127.0.0.1'] },
    allowHosts: new Set(['127.0.0.1']),
    allowHttp: false
  }

  const ok = await fetchList({ ...base, url: https.url('/list.txt') })
  t.match(ok, { status: 'ok', url: https.url('/list.txt') })
  t.equal(ok.status === 'ok' && ok.body.toString(), V1)

  const viaHop = await fetchList({ ...base, url: https.url('/hop') })
  t.match(viaHop, { status: 'ok', url: https.url('/list.txt') }, 'a same-scheme redirect is followed')

  const e1 = await rejection(fetchList({ ...base, url: https.url('/to-http') }))
  t.match(e1, { code: 'EGRESSD_ERR_LIST_ADDRESS_REFUSED', reason: 'scheme', message: /redirect to another scheme refused/ })
  t.equal(http.requests.length, 0, 'the http server was never asked')

  const e2 = await rejection(fetchList({ ...base, url: https.url('/loop0') }))
  t.match(e2, { reason: 'redirect', message: /more than 3 redirects/ })

  const e3 = await rejection(fetchList({ ...base, url: 'file:///etc/passwd' }))
  t.match(e3, { reason: 'scheme', message: /file: URLs are refused/ })

  const e4 = await rejection(fetchList({ ...base, url: http.url('/list.txt') }))
  t.match(e4, { reason: 'scheme', message: /plain http:\/\/ is refused/ })
  const signedHttp = await fetchList({ ...base, url: http.url('/list.txt'), allowHttp: true })
  t.equal(signedHttp.status, 'ok', 'http:// is fetched when the list is signed')

  const e5 = await rejection(fetchList({ ...base, url: https.url('/list.txt'), allowHosts: new Set() }))
  t.match(e5, { reason: 'address', message: /127\.0\.0\.1 is a loopback address/ })
  const e6 = await rejection(fetchList({ ...base, url: 'https://[::1]:1/list.txt', allowHosts: new Set() }))
  t.match(e6, { reason: 'address', message: /loopback/ })
  const e7 = await rejection(fetchList({ ...base, url: 'https://169.254.169.254/latest/meta-data/', allowHosts: new Set(['127.0.0.1']) }))
  t.match(e7, { reason: 'address', message: /link-local/ })
  t.same(lookups, [], 'IP literals are never looked up')

  // A name whose resolution includes a private address: only the permitted one is connected to.
  const before = https.requests.length
  const e8 = await rejection(fetchList({ ...base, url: https.url('/list.txt', 'lists.test'), allowHosts: new Set(), resolveHost: async () => ['10.0.0.7', '127.0.0.1'] }))
  t.match(e8, { reason: 'address', message: /lists\.test is 10\.0\.0\.7, a private/ })
  t.equal(https.requests.length, before, 'nothing was sent')

  // TLS is verified: without the test CA the certificate is refused.
  const e9 = await rejection(fetchList({ ...base, url: https.url('/list.txt'), ca: undefined }))
  t.match(e9, { reason: 'tls' })
})

t.test('daemon: a loopback URL that is not allow-listed is refused before connecting', async t => {
  const server = await startListServer(world.cert)
  t.teardown(() => server.close())
  server.set('/list.txt', { body: V1 })
  const td = await listDaemon(world, { source: { url: server.url('/list.txt'), caFile: world.pki.caFile }, update: { allowHosts: [] } })
  t.teardown(() => td.close())
  await firstAttempts(td)
  const s = td.daemon.lists.status()[0]
  t.match(s, { entries: undefined, rejected: 1, lastError: { reason: 'address', message: /127\.0\.0\.1 is a loopback address/ } })
  t.equal(server.requests.length, 0, 'the server never saw a request')
  t.equal(warnings(td).length, 1)
})

t.test('daemon: a name resolving (through the upstream) to 127.0.0.1 is refused unless that host is allow-listed', async t => {
  const server = await startListServer(world.cert)
  t.teardown(() => server.close())
  server.set('/list.txt', { body: V1 })
  // lists.test exists only in the test's dnsmasq upstream: the system resolver cannot know it.
  const url = server.url('/list.txt', 'lists.test')
  const refused = await listDaemon(world, { source: { url, caFile: world.pki.caFile }, update: { allowHosts: ['127.0.0.1'] } })
  await firstAttempts(refused)
  t.match(refused.daemon.lists.status()[0], { rejected: 1, lastError: { reason: 'address', message: /lists\.test is 127\.0\.0\.1, a loopback address/ } },
    'allow-listing the address does not allow a name resolving to it')
  t.equal(server.requests.length, 0)
  t.match(world.dns.log(), /auth\[A\] lists\.test from 127\.0\.0\.1/, 'the name was asked of the upstream')
  await refused.close()

  const allowed = await listDaemon(world, { source: { url, caFile: world.pki.caFile }, update: { allowHosts: ['LISTS.test'] } })
  t.teardown(() => allowed.close())
  await firstAttempts(allowed)
  t.match(allowed.daemon.lists.status()[0], { updates: 1, entries: 21, lastError: undefined }, 'allowed when that exact host is listed')
  t.equal(server.requests.at(-1)?.headers.host, `lists.test:${server.port}`)
})
