// The ListUpdater on its own, with injected timers, clock and randomness: when attempts are
// scheduled (at once on start, then every interval ±10%, a failure retried after at most 15
// minutes), that a failed compile puts the previous copy back, and the config checks of URL sources.

import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { testConfig } from '../helpers/daemon.js'
import { createLogger } from '../../src/log.js'
import { ListUpdater, type Timers } from '../../src/lists/updater.js'
import { ConfigError, PolicyError } from '../../src/errors.js'
import { parseConfig } from '../../src/config/load.js'
import { generateKeys, privateKey, signList } from '../../src/lists/signature.js'
import { startListServer } from './list-server.js'
import { V1, V2 } from './fixtures.js'
import { tempDir } from '../helpers/tmp.js'

const quiet = () => createLogger('warn', new Writable({ write (_c, _e, cb) { cb() } }))

class FakeTimers implements Timers {
  pending: Array<{ fn: () => void, ms: number, id: number }> = []
  #id = 0
  setTimeout (fn: () => void, ms: number): unknown { const id = ++this.#id; this.pending.push({ fn, ms, id }); return id }
  clearTimeout (h: unknown): void { this.pending = this.pending.filter(p => p.id !== h) }
  fire (): number {
    const p = this.pending.shift()
    if (p === undefined) throw new Error('no timer pending')
    p.fn()
    return p.ms
  }
}

t.test('scheduling: at once on start, then interval ±10%; failures retried after at most 15 min', async t => {
  const server = await startListServer()
  t.teardown(() => server.close())
  server.set('/list.txt', { body: V1 })
  const timers = new FakeTimers()
  const applied: Array<Map<string, string>> = []
  const randoms = [0, 0.999, 0.5]
  const config = testConfig({
    blocklists: { sources: [{ name: 'central', url: server.url('/list.txt'), signed: true, interval: '2h' }], update: { allowHosts: ['127.0.0.1'], publicKeys: [{ name: 'k', key: generateKeys().publicBase64 }] } }
  })
  const u = new ListUpdater({
    config, log: quiet(), timers, random: () => randoms.shift() ?? 0.5,
    resolveHost: async () => { throw new Error('no lookups for IP literals') },
    apply: files => { applied.push(new Map(files)) }
  })
  t.same(u.status()[0].nextAttempt, undefined, 'nothing scheduled before start')
  u.start()
  t.equal(timers.pending.length, 1)
  t.equal(timers.fire(), 0, 'the first attempt runs at once')
  await u.settled()
  // No signature is served: rejected, retried after 15 minutes (less than the 2 h interval).
  t.match(u.status()[0], { attempts: 1, rejected: 1, lastError: { reason: 'http-status' } })
  t.equal(applied.length, 0)
  t.equal(timers.pending[0].ms, Math.round(15 * 60_000 * 0.9), 'retry after 15 min, jittered (random 0 -> -10%)')
  server.set('/list.txt.sig', { status: 500 })
  timers.fire()
  await u.settled()
  t.equal(timers.pending[0].ms, Math.round(15 * 60_000 * (0.9 + 0.2 * 0.999)), 'jitter up to +10%')
  await u.close()
  t.equal(timers.pending.length, 0, 'close cancels the timers')
})

t.test('interval after a success; a failed compile puts the previous copy back', async t => {
  const server = await startListServer()
  t.teardown(() => server.close())
  const keys = generateKeys()
  const priv = privateKey(keys.privatePem)
  const serve = (body: string): void => {
    server.set('/list.txt', { body })
    server.set('/list.txt.sig', { body: signList(Buffer.from(body), priv) })
  }
  serve(V1)
  const timers = new FakeTimers()
  let failBuild = false
  const applied: string[] = []
  const config = testConfig({
    blocklists: {
      sources: [{ name: 'central', url: server.url('/list.txt'), signed: true, interval: '30m' }],
      update: { allowHosts: ['127.0.0.1'], publicKeys: [{ name: 'k', key: keys.publicPem }] }
    }
  })
  const u = new ListUpdater({
    config, log: quiet(), timers, random: () => 0.5,
    resolveHost: async () => { throw new Error('no lookups for IP literals') },
    apply: files => {
      const text = readFileSync(files.get('central') ?? '', 'utf8')
      if (failBuild) throw new PolicyError([`central.txt: no valid entry (simulated, ${text.length} bytes)`])
      applied.push(text)
    }
  })
  u.start()
  timers.fire()
  await u.settled()
  t.match(u.status()[0], { updates: 1, entries: 21, lastError: undefined })
  t.same(applied, [V1], 'the engine was built from v1')
  t.equal(timers.pending[0].ms, 30 * 60_000, 'next attempt after the interval (random 0.5: no jitter)')

  const file = join(config.dataDir, 'lists', 'central.txt')
  const meta = readFileSync(join(config.dataDir, 'lists', 'central.json'), 'utf8')
  serve(V2)
  failBuild = true
  const [r] = await u.updateNow({ source: 'central' })
  t.match(r, { outcome: 'rejected', reason: 'build', error: /do not compile with this version: central\.txt: no valid entry/ })
  t.equal(readFileSync(file, 'utf8'), V1, 'the previous copy is back in place')
  t.equal(readFileSync(join(config.dataDir, 'lists', 'central.json'), 'utf8'), meta, 'meta unchanged')
  t.same(u.files(), new Map([['central', file]]))
  t.same(existsSync(`${file.slice(0, -4)}.prev.txt`), false, 'no previous copy left over')

  failBuild = false
  t.match((await u.updateNow())[0], { outcome: 'updated', entries: 22 })
  t.same(applied, [V1, V2])
  await t.rejects(u.updateNow({ source: 'other' }), { code: 'EGRESSD_ERR_USAGE', message: /no URL source named "other"/ })

  // A new updater on the same data dir (a restart) starts from the stored copy.
  const again = new ListUpdater({ config, log: quiet(), timers: new FakeTimers(), resolveHost: async () => [], apply: () => {} })
  t.same(again.files(), new Map([['central', file]]))
  t.match(again.status()[0], { entries: 22, attempts: 0 })
  await u.close()
})

t.test('URL source config: defaults, and errors that name the field', async t => {
  const keys = generateKeys()
  const ok = parseConfig(JSON.stringify({
    upstreams: ['udp://127.0.0.1:53'],
    blocklists: {
      sources: [
        { name: 'a', url: 'https://lists.example.net/a.txt' },
        { name: 'b', url: 'http://lists.example.net/b.txt', signed: true, interval: '90m', timeoutMs: 5000, maxBytes: 1000, minEntries: 10, maxBadLineShare: 0.1, maxShrink: 0.2, keys: ['k1'] },
        { name: 'c', url: 'https://lists.example.net/c.txt', signatureUrl: 'https://sigs.example.net/c.sig' }
      ],
      update: { publicKeys: [{ name: 'k1', key: keys.publicBase64 }, { name: 'k2', key: keys.publicPem }], allowHosts: ['Lists.Internal', '[fd00::5]'] }
    }
  }))
  const [a, b, c] = ok.blocklists.sources
  t.same(a.update, { intervalMs: 6 * 3_600_000, timeoutMs: 30_000, maxBytes: 50 * 1024 * 1024, keys: [], minEntries: 1, maxBadLineShare: 0.01, maxShrink: 0.5 })
  t.same(b.update, { intervalMs: 90 * 60_000, timeoutMs: 5000, maxBytes: 1000, signatureUrl: 'http://lists.example.net/b.txt.sig', keys: ['k1'], minEntries: 10, maxBadLineShare: 0.1, maxShrink: 0.2 })
  t.equal(c.update?.signatureUrl, 'https://sigs.example.net/c.sig')
  t.same(ok.blocklists.update.allowHosts, ['lists.internal', 'fd00::5'])
  t.equal(ok.blocklists.update.publicKeys[0].pem, ok.blocklists.update.publicKeys[1].pem, 'base64 and PEM keys read the same')

  const pubFile = join(tempDir('egressd-keys-'), 'k.pub')
  writeFileSync(pubFile, keys.publicPem)
  const privFile = `${pubFile}.key`
  writeFileSync(privFile, keys.privatePem)
  const cases: Array<{ name: string, blocklists: Record<string, unknown>, path: string, message: RegExp }> = [
    { name: 'http without a signature', blocklists: { sources: [{ name: 'a', url: 'http://x.example/l.txt' }] }, path: 'blocklists.sources.0.url', message: /plain http:\/\/ is refused unless the list is signed/ },
    { name: 'requireSignature', blocklists: { sources: [{ name: 'a', url: 'https://x.example/l.txt' }], update: { requireSignature: true } }, path: 'blocklists.sources.0.signed', message: /requireSignature is on/ },
    { name: 'signed without keys', blocklists: { sources: [{ name: 'a', url: 'https://x.example/l.txt', signed: true }] }, path: 'blocklists.sources.0.signed', message: /needs at least one key/ },
    { name: 'unknown key name', blocklists: { sources: [{ name: 'a', url: 'https://x.example/l.txt', signed: true, keys: ['nope'] }], update: { publicKeys: [{ name: 'k', file: pubFile }] } }, path: 'blocklists.sources.0.keys.0', message: /no key named "nope"/ },
    { name: 'url keys on a path source', blocklists: { sources: [{ name: 'a', path: '/x', interval: '1h' }] }, path: 'blocklists.sources.0.interval', message: /only applies to sources with a "url"/ },
    { name: 'bad interval', blocklists: { sources: [{ name: 'a', url: 'https://x.example/l.txt', interval: 'often' }] }, path: 'blocklists.sources.0.interval', message: /a duration such as 90s/ },
    { name: 'too short interval', blocklists: { sources: [{ name: 'a', url: 'https://x.example/l.txt', interval: '5s' }] }, path: 'blocklists.sources.0.interval', message: /at least 10s/ },
    { name: 'share over 1', blocklists: { sources: [{ name: 'a', url: 'https://x.example/l.txt', maxBadLineShare: 2 }] }, path: 'blocklists.sources.0.maxBadLineShare', message: /between 0 and 1/ },
    { name: 'file: url', blocklists: { sources: [{ name: 'a', url: 'file:///etc/hosts' }] }, path: 'blocklists.sources.0.url', message: /expected an http:\/\/ or https:\/\/ URL/ },
    { name: 'caFile on http', blocklists: { sources: [{ name: 'a', url: 'http://x.example/l.txt', signed: true, caFile: '/ca.pem' }], update: { publicKeys: [{ name: 'k', file: pubFile }] } }, path: 'blocklists.sources.0.caFile', message: /only applies to https/ },
    { name: 'name with a slash', blocklists: { sources: [{ name: '../x', url: 'https://x.example/l.txt' }] }, path: 'blocklists.sources.0.name', message: /cannot contain "\/"/ },
    { name: 'bad key', blocklists: { update: { publicKeys: [{ name: 'k', key: 'bm90IGEga2V5' }] } }, path: 'blocklists.update.publicKeys.0.key', message: /not a usable public key/ },
    { name: 'private key as public', blocklists: { update: { publicKeys: [{ name: 'k', file: privFile }] } }, path: 'blocklists.update.publicKeys.0.file', message: /this is a private key/ },
    { name: 'missing key file', blocklists: { update: { publicKeys: [{ name: 'k', file: '/nonexistent/k.pub' }] } }, path: 'blocklists.update.publicKeys.0.file', message: /cannot read/ },
    { name: 'key and file', blocklists: { update: { publicKeys: [{ name: 'k', key: keys.publicBase64, file: pubFile }] } }, path: 'blocklists.update.publicKeys.0', message: /exactly one of "key"/ },
    { name: 'unknown update key', blocklists: { update: { allowHost: ['x'] } }, path: 'blocklists.update.allowHost', message: /unknown key "allowHost"/ }
  ]
  for (const c of cases) {
    try {
      parseConfig(JSON.stringify({ upstreams: ['udp://127.0.0.1:53'], blocklists: c.blocklists }))
      t.fail(`${c.name}: accepted`)
    } catch (err) {
      t.ok(err instanceof ConfigError, c.name)
      const issue = (err as ConfigError).issues.find(i => i.path === c.path)
      t.match(issue?.message, c.message, `${c.name}: ${c.path}`)
    }
  }
})
