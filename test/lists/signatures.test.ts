// Signed lists: `egressd lists keygen/sign/verify` as the publishing team runs them (the built
// CLI), and a daemon that fetches a signed list over plain http: a good signature is accepted, a
// list that does not match its signature (or a signature by another key) is rejected and the
// previous version keeps blocking. Also `egressd lists update` against a data dir.

import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { generateKeys, privateKey, signList, verifyList } from '../../src/lists/signature.js'
import { ed25519PublicKeyPem } from '../../src/config/public-key.js'
import { blocked, firstAttempts, listDaemon, startWorld, V1, V2, warnings } from './fixtures.js'
import { startListServer } from './list-server.js'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const dir = tempDir('egressd-sig-')

function run (args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** For commands that talk to servers in this process: spawnSync would block them. */
function runAsync (args: string[]): Promise<{ status: number | null, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

t.test('lists keygen, sign and verify round trip (the built CLI)', async t => {
  const prefix = join(dir, 'publisher')
  const kg = run(['lists', 'keygen', '--out', prefix])
  t.equal(kg.status, 0, kg.stderr)
  const base64 = /for the config: (\S+)/.exec(kg.stdout)?.[1] ?? ''
  t.match(base64, /^[A-Za-z0-9+/]{43}=$/, 'prints the raw public key in base64')
  t.match(readFileSync(`${prefix}.key`, 'utf8'), /BEGIN PRIVATE KEY/)
  t.match(readFileSync(`${prefix}.pub`, 'utf8'), /BEGIN PUBLIC KEY/)
  t.same(ed25519PublicKeyPem(base64), ed25519PublicKeyPem(readFileSync(`${prefix}.pub`, 'utf8')), 'base64 and PEM name the same key')
  t.equal(run(['lists', 'keygen', '--out', prefix]).status, 1, 'never overwrites an existing key')

  const list = join(dir, 'list.txt')
  writeFileSync(list, V1)
  const signed = run(['lists', 'sign', list, '--key', `${prefix}.key`])
  t.equal(signed.status, 0, signed.stderr)
  t.match(readFileSync(`${list}.sig`, 'utf8'), /^[A-Za-z0-9+/]{86}==\n$/, 'FILE.sig holds the base64 signature')

  const ok = run(['lists', 'verify', list, '--pubkey', `${prefix}.pub`])
  t.equal(ok.status, 0, ok.stdout + ok.stderr)
  t.match(ok.stdout, /signature ok/)

  writeFileSync(list, V1 + 'tampered.test\n')
  const bad = run(['lists', 'verify', list, '--pubkey', `${prefix}.pub`])
  t.equal(bad.status, 1)
  t.match(bad.stdout, /does NOT verify/)

  const other = join(dir, 'other')
  t.equal(run(['lists', 'keygen', '--out', other]).status, 0)
  writeFileSync(list, V1)
  t.equal(run(['lists', 'verify', list, '--pubkey', `${other}.pub`]).status, 1, 'another key does not verify it')
  const wrong = run(['lists', 'sign', list, '--key', `${prefix}.pub`])
  t.equal(wrong.status, 1, 'a public key cannot sign')
  t.match(wrong.stderr, /not a usable private key/)
  t.equal(run(['lists', 'sign', list]).status, 2, 'usage error without --key')
})

t.test('verifyList accepts base64 or raw signatures, by any configured key', async t => {
  const a = generateKeys()
  const b = generateKeys()
  const data = Buffer.from(V1)
  const sig = Buffer.from(signList(data, privateKey(a.privatePem)))
  const keys = [{ name: 'b', pem: b.publicPem }, { name: 'a', pem: a.publicPem }]
  t.equal(verifyList(data, sig, keys), 'a')
  t.equal(verifyList(data, Buffer.from(sig.toString().trim(), 'base64'), keys), 'a', 'raw 64-byte signature')
  t.equal(verifyList(Buffer.from(V2), sig, keys), undefined, 'other data')
  t.equal(verifyList(data, sig, [keys[0]]), undefined, 'other key')
  t.equal(verifyList(data, Buffer.from('not a signature'), keys), undefined)
})

t.test('daemon: a signed list over http is verified; a bad signature is rejected, the previous list blocks', async t => {
  const world = await startWorld()
  t.teardown(() => world.close())
  const server = await startListServer()
  t.teardown(() => server.close())
  const keys = generateKeys()
  const priv = privateKey(keys.privatePem)
  server.set('/list.txt', { body: V1 })
  server.set('/list.txt.sig', { body: signList(Buffer.from(V1), priv) })
  const td = await listDaemon(world, {
    source: { url: server.url('/list.txt'), signed: true },
    update: { publicKeys: [{ name: 'central-2026', key: keys.publicBase64 }] }
  })
  t.teardown(() => td.close())
  await firstAttempts(td)
  t.match(td.daemon.lists.status()[0], { signed: true, updates: 1, entries: 21 })
  t.match(JSON.parse(readFileSync(join(td.daemon.config.dataDir, 'lists', 'central.json'), 'utf8')), { signedBy: 'central-2026' })
  t.ok(await blocked(td, 'first.test'))

  // V2 served with V1's signature (tampered in transit, or a half-published update).
  server.set('/list.txt', { body: V2 })
  const [r] = await td.daemon.lists.updateNow()
  t.match(r, { outcome: 'rejected', reason: 'signature', error: /does not verify with central-2026/ })
  t.match(td.daemon.lists.status()[0], { rejected: 1, rejectedByReason: { signature: 1 }, lastError: { reason: 'signature' } })
  t.match(warnings(td).at(-1), { reason: 'signature' })
  t.notOk(await blocked(td, 'h.test'), 'the unverified v2 is not used')
  t.ok(await blocked(td, 'first.test'), 'v1 still blocks')

  // Signed by an unknown key.
  const stranger = generateKeys()
  server.set('/list.txt.sig', { body: signList(Buffer.from(V2), privateKey(stranger.privatePem)) })
  t.match((await td.daemon.lists.updateNow())[0], { outcome: 'rejected', reason: 'signature' })

  // No signature at all.
  server.set('/list.txt.sig', { status: 404 })
  t.match((await td.daemon.lists.updateNow())[0], { outcome: 'rejected', reason: 'http-status', error: /list\.txt\.sig: HTTP 404/ })

  server.set('/list.txt.sig', { body: signList(Buffer.from(V2), priv) })
  t.match((await td.daemon.lists.updateNow())[0], { outcome: 'updated', entries: 22 })
  t.ok(await blocked(td, 'h.test'), 'the properly signed v2 blocks')
})

t.test('egressd lists update stores a checked copy in the data dir; a running daemon reads it on SIGHUP (reload)', async t => {
  const world = await startWorld()
  t.teardown(() => world.close())
  const server = await startListServer(world.cert)
  t.teardown(() => server.close())
  server.set('/list.txt', { body: V1 })
  const dataDir = tempDir('egressd-cli-data-')
  const configFile = join(dir, 'update.yaml')
  const bundled = tempDir('egressd-bundled-')
  writeFileSync(configFile, [
    'dns: { listen: ["127.0.0.1:0"] }', 'api: { listen: "127.0.0.1:0" }',
    `upstreams: ["${world.dns.url}"]`, `dataDir: ${dataDir}`,
    'blocklists:', `  dir: ${bundled}`,
    `  sources: [{ name: central, url: "${server.url('/list.txt')}", caFile: ${world.pki.caFile} }]`,
    '  update: { allowHosts: ["127.0.0.1"] }'
  ].join('\n') + '\n')
  const first = await runAsync(['lists', 'update', '--config', configFile])
  t.equal(first.status, 0, first.stderr)
  t.match(JSON.parse(first.stdout), { source: 'central', outcome: 'updated', entries: 21 })
  t.equal(readFileSync(join(dataDir, 'lists', 'central.txt'), 'utf8'), V1)

  server.set('/list.txt', { body: 'first.test\n' })
  const shrunk = await runAsync(['lists', 'update', '--config', configFile, '--source', 'central'])
  t.equal(shrunk.status, 1)
  t.match(JSON.parse(shrunk.stdout), { outcome: 'rejected', reason: 'shrink' })
  t.match(shrunk.stderr, /list update rejected/)
  t.equal(readFileSync(join(dataDir, 'lists', 'central.txt'), 'utf8'), V1, 'the stored copy is unchanged')

  const unknown = await runAsync(['lists', 'update', '--config', configFile, '--source', 'nope'])
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /no URL source named "nope" \(known: central\)/)

  server.set('/list.txt', { body: V2 })
  const td = await listDaemon(world, { source: { url: server.url('/list.txt'), caFile: world.pki.caFile }, dataDir })
  t.teardown(() => td.close())
  await firstAttempts(td)
  t.ok(await blocked(td, 'h.test'), 'the daemon updated v1 to v2 itself')
  server.set('/list.txt', { body: V1 })
  const forced = await runAsync(['lists', 'update', '--config', configFile])
  t.equal(forced.status, 0, forced.stderr)
  t.ok(await blocked(td, 'h.test'), 'the running daemon still uses its version until reloaded')
  td.daemon.reload(td.daemon.config)
  t.notOk(await blocked(td, 'h.test'), 'after a reload it serves the copy the CLI stored')
  t.equal(td.daemon.lists.status()[0].entries, 21)
})
