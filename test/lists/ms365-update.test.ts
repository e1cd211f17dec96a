// Telegram's cidr.txt and Microsoft's 365 endpoints through the list-update path, end to end: the
// config snippet of docs/list-updates.md (its URLs pointed at a local HTTPS server serving our
// fixtures, test/fixtures/telegram/cidr.txt and test/fixtures/ms365/{worldwide,version}.json), a
// real daemon with a dnsmasq upstream, dig for what is blocked, and the server's request log for
// what was downloaded.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { makeTestPki } from '../helpers/tls-fronts.js'
import { tempDir } from '../helpers/tmp.js'
import { EMPTY_BLOCKLISTS, firstAttempts } from './fixtures.js'
import { startListServer, type ListServer } from './list-server.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const FIXTURES = join(ROOT, 'test', 'fixtures')
const CIDR_TXT = readFileSync(join(FIXTURES, 'telegram', 'cidr.txt'))
const WORLDWIDE = readFileSync(join(FIXTURES, 'ms365', 'worldwide.json'))
/** The version answer that goes with WORLDWIDE: {"instance":"Worldwide","latest":"2026120100"}. */
const VERSION_JSON = readFileSync(join(FIXTURES, 'ms365', 'version.json'))
const ENDPOINTS = '/endpoints/worldwide?clientrequestid=00000000-0000-4000-8000-000000000000'
const VERSION = '/version/Worldwide?clientrequestid=00000000-0000-4000-8000-000000000000'
const version = (latest: string): string => JSON.stringify({ instance: 'Worldwide', latest })

/** The yaml block of docs/list-updates.md's section on these two sources: the documented config. */
function documentedSources (): Array<Record<string, unknown>> {
  const doc = readFileSync(join(ROOT, 'docs', 'list-updates.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## Telegram ranges and Microsoft 365 endpoints'))
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
  if (block === undefined) throw new Error('no yaml block in the docs section')
  return (parseYaml(block) as { blocklists: { sources: Array<Record<string, unknown>> } }).blocklists.sources
}

const dns = await startDnsmasq({
  auth: false,
  lines: [
    'host-record=tg-dc.test,149.154.167.51',
    'host-record=teams.microsoft.com,192.0.2.90',
    'host-record=web.teams.microsoft.com,192.0.2.91',
    'host-record=x.broadcast.skype.com,192.0.2.92',
    'host-record=outlook.office.com,192.0.2.93',
    'host-record=config.edge.skype.com,192.0.2.94',
    'host-record=aka.ms,192.0.2.95',
    'host-record=teams-media.test,52.112.1.1',
    'host-record=teams-media-18.test,13.107.64.5'
  ]
})
t.teardown(() => dns.stop())
const pki = makeTestPki()
t.teardown(() => pki.remove())
const cert = pki.issue('lists.test', ['DNS:lists.test', 'IP:127.0.0.1'])

/** The documented sources with their URLs on `server`, the test CA, and a short timeout. */
function sourcesFor (server: ListServer): Array<Record<string, unknown>> {
  const local = (u: unknown): string => { const x = new URL(String(u)); return server.url(x.pathname + x.search) }
  return documentedSources().map(s => ({
    ...s,
    url: local(s.url),
    caFile: pki.caFile,
    timeoutMs: 3000,
    ...(s.ms365 !== undefined && { ms365: { ...(s.ms365 as object), versionUrl: local((s.ms365 as { versionUrl: string }).versionUrl) } })
  }))
}

async function daemon (server: ListServer, dataDir: string): Promise<TestDaemon> {
  return startTestDaemon({
    upstreams: [dns.url],
    dataDir,
    blocklists: { dir: EMPTY_BLOCKLISTS, sources: sourcesFor(server), update: { allowHosts: ['127.0.0.1'] } }
  })
}

const ask = (td: TestDaemon, name: string) => dig([`@${td.host}`, '-p', String(td.port), name, 'A', '+tries=1', '+time=3'])
const blocked = async (td: TestDaemon, name: string): Promise<boolean> => {
  const r = await ask(td, name)
  return r.status === 'NXDOMAIN' && /15 \(Blocked\)/.test(r.ede ?? '')
}
const answered = async (td: TestDaemon, name: string): Promise<boolean> => {
  const r = await ask(td, name)
  return r.status === 'NOERROR' && r.answers.some(a => a.type === 'A') && r.ede === undefined
}
const paths = (server: ListServer, from: number): string[] => server.requests.slice(from).map(r => r.path)
const status = (td: TestDaemon, name: string) => {
  const s = td.daemon.lists.status().find(x => x.name === name)
  if (s === undefined) throw new Error(`no source ${name}`)
  return s
}
const meta = (dataDir: string, name: string): Record<string, unknown> => JSON.parse(readFileSync(join(dataDir, 'lists', `${name}.json`), 'utf8')) as Record<string, unknown>

/** The fixture JSON with some endpoint sets left out (a "shrunken" answer). */
function without (ids: number[]): string {
  const sets = JSON.parse(WORLDWIDE.toString('utf8')) as Array<{ id: number }>
  return JSON.stringify(sets.filter(s => !ids.includes(s.id)), null, 2)
}

t.test('the documented snippet validates and names both services', async t => {
  const s = documentedSources()
  t.match(s, [
    { name: 'telegram-ranges', url: 'https://core.telegram.org/resources/cidr.txt', format: 'cidr', category: 'telegram' },
    { name: 'ms365-teams', url: /^https:\/\/endpoints\.office\.com\/endpoints\/worldwide\?clientrequestid=/, format: 'ms365', category: 'teams', ms365: { ids: [12, 13, 14, 15, 22], ips: false, versionUrl: /^https:\/\/endpoints\.office\.com\/version\/Worldwide\?clientrequestid=/ } }
  ])
})

t.test('Telegram ranges and the Microsoft Teams sets update their categories; the version decides whether the endpoints are downloaded; bad answers keep the last good copy', async t => {
  const server = await startListServer(cert)
  t.teardown(() => server.close())
  // Nothing to serve yet: the start-up attempts fail, so the names below are answered at first.
  const dataDir = tempDir('egressd-ms365-')
  let td = await daemon(server, dataDir)
  t.teardown(() => td.close())
  await firstAttempts(td)
  t.ok(await answered(td, 'tg-dc.test'), 'before any update: a Telegram address is answered')
  t.ok(await answered(td, 'teams.microsoft.com'), 'before any update: teams.microsoft.com is answered')

  server.set('/resources/cidr.txt', { body: CIDR_TXT })
  server.set(VERSION, { body: VERSION_JSON, etag: false })
  server.set(ENDPOINTS, { body: WORLDWIDE, etag: false })
  let from = server.requests.length
  const first = await td.daemon.lists.updateNow()
  t.match(first, [
    { source: 'telegram-ranges', outcome: 'updated', entries: 14 },
    { source: 'ms365-teams', outcome: 'updated', entries: 10 }
  ])
  t.same(paths(server, from), ['/resources/cidr.txt', VERSION, ENDPOINTS], 'version asked before the endpoints')
  t.match(status(td, 'telegram-ranges'), { category: 'telegram', format: 'cidr', entries: 14 })
  t.match(status(td, 'ms365-teams'), { category: 'teams', format: 'ms365', entries: 10, updates: 1 })
  t.equal(meta(dataDir, 'ms365-teams').version, '2026120100', 'the accepted copy records its version')
  t.equal(readFileSync(join(dataDir, 'lists', 'ms365-teams.txt')).compare(WORLDWIDE), 0, 'stored byte for byte')

  t.ok(await blocked(td, 'tg-dc.test'), 'an answer inside Telegram\'s ranges is blocked')
  t.ok(await blocked(td, 'teams.microsoft.com'), 'set 12 teams.microsoft.com (exact)')
  t.ok(await blocked(td, 'web.teams.microsoft.com'), 'set 12 *.teams.microsoft.com')
  t.ok(await blocked(td, 'x.broadcast.skype.com'), 'set 13 *.broadcast.skype.com')
  t.ok(await answered(td, 'outlook.office.com'), 'Exchange (not selected) is answered')
  t.ok(await answered(td, 'config.edge.skype.com'), 'set 127 *.skype.com (not selected) is not blocked')
  t.ok(await answered(td, 'aka.ms'), 'set 17 aka.ms (not selected) is not blocked')
  t.ok(await answered(td, 'teams-media.test'), 'ips: false: an answer inside 52.112.0.0/14 is not blocked')

  // Same published version: only the version is asked; the endpoints are not downloaded.
  from = server.requests.length
  const generation = td.daemon.policy.engine.generation
  const [same] = await td.daemon.lists.updateNow({ source: 'ms365-teams' })
  t.match(same, { outcome: 'unchanged', entries: 10 })
  t.same(paths(server, from), [VERSION], 'no request for the endpoints')
  t.match(status(td, 'ms365-teams'), { unchanged: 1, updates: 1, rejected: 1 }) // rejected: the start-up attempt, before anything was served
  t.equal(td.daemon.policy.engine.generation, generation, 'no new engine')
  t.ok(td.logs().some(l => l.msg === 'list unchanged (same published version; not downloaded)' && l.version === '2026120100'), 'logged as unchanged')

  // A new version is downloaded (here the same bytes: unchanged, new version recorded) ...
  server.set(VERSION, { body: version('2026120101'), etag: false })
  from = server.requests.length
  t.match((await td.daemon.lists.updateNow({ source: 'ms365-teams' }))[0], { outcome: 'unchanged' })
  t.same(paths(server, from), [VERSION, ENDPOINTS], 'a new version: the endpoints are downloaded')
  t.equal(meta(dataDir, 'ms365-teams').version, '2026120101')
  from = server.requests.length
  await td.daemon.lists.updateNow({ source: 'ms365-teams' })
  t.same(paths(server, from), [VERSION], 'and then not again')

  // ... and a new version with other sets applies: set 14 left out, 9 entries.
  server.set(VERSION, { body: version('2026120102'), etag: false })
  server.set(ENDPOINTS, { body: without([14]), etag: false })
  t.match((await td.daemon.lists.updateNow({ source: 'ms365-teams' }))[0], { outcome: 'updated', entries: 9, previousEntries: 10 })
  const good = readFileSync(join(dataDir, 'lists', 'ms365-teams.txt'))

  // Shrunk by more than maxShrink (sets 12, 13 and 15 gone: 9 -> 1): refused, the last copy stays.
  server.set(VERSION, { body: version('2026120103'), etag: false })
  server.set(ENDPOINTS, { body: without([12, 13, 14, 15]), etag: false })
  t.match((await td.daemon.lists.updateNow({ source: 'ms365-teams' }))[0], { outcome: 'rejected', reason: 'shrink', entries: 9 })
  // Broken JSON (cut in half): refused.
  server.set(VERSION, { body: version('2026120104'), etag: false })
  server.set(ENDPOINTS, { body: WORLDWIDE.subarray(0, WORLDWIDE.length >> 1), etag: false })
  t.match((await td.daemon.lists.updateNow({ source: 'ms365-teams' }))[0], { outcome: 'rejected', reason: 'bad-lines', error: /cannot be parsed as ms365.*not JSON/ })
  // A version answer that is not Microsoft's: refused before any download.
  server.set(VERSION, { body: '<html>maintenance</html>', etag: false })
  from = server.requests.length
  t.match((await td.daemon.lists.updateNow({ source: 'ms365-teams' }))[0], { outcome: 'rejected', reason: 'version' })
  t.same(paths(server, from), [VERSION])
  t.same(status(td, 'ms365-teams').rejectedByReason, { 'http-status': 1, shrink: 1, 'bad-lines': 1, version: 1 })
  t.equal(status(td, 'ms365-teams').entries, 9)
  t.equal(readFileSync(join(dataDir, 'lists', 'ms365-teams.txt')).compare(good), 0, 'the last good copy is kept')
  t.equal(meta(dataDir, 'ms365-teams').version, '2026120102', 'with its version')
  t.ok(await blocked(td, 'teams.microsoft.com'), 'and keeps blocking')
  t.ok(await blocked(td, 'tg-dc.test'))

  // A restart with both services down filters from the last good copies.
  await td.close()
  await server.close()
  td = await daemon(server, dataDir)
  t.ok(await blocked(td, 'teams.microsoft.com'), 'after a restart without the services: still blocked')
  t.ok(await blocked(td, 'tg-dc.test'))
  t.ok(await answered(td, 'outlook.office.com'))
})

t.test('config: format ms365 needs a selection; its keys only go with it', async t => {
  const { ConfigError } = await import('../../src/errors.js')
  const { testConfig } = await import('../helpers/daemon.js')
  const src = (s: Record<string, unknown>) => () => testConfig({ blocklists: { dir: EMPTY_BLOCKLISTS, sources: [{ name: 'm', url: 'https://127.0.0.1:1/e', ...s }] } })
  t.throws(src({ format: 'ms365' }), ConfigError, 'no ms365 key')
  t.throws(src({ format: 'ms365', ms365: { ips: false } }), /needs ms365\.serviceAreas and\/or ms365\.ids/)
  t.throws(src({ format: 'plain', ms365: { ids: [12] } }), /only applies to sources with format: ms365/)
  t.throws(src({ format: 'ms365', ms365: { ids: [12], versionUrl: 'http://127.0.0.1:1/v' } }), /expected an https:\/\/ URL/)
  t.throws(() => testConfig({ blocklists: { dir: EMPTY_BLOCKLISTS, sources: [{ name: 'm', path: '/x.json', format: 'ms365', ms365: { ids: [12], versionUrl: 'https://x/v' } }] } }), /only applies to sources with a "url"/)
  t.throws(src({ format: 'ms365', ms365: { ids: ['twelve'] } }), ConfigError)
  t.doesNotThrow(src({ format: 'ms365', ms365: { serviceAreas: ['Skype'], ids: [11] } }))
})

t.test('a path source in format ms365 reads a file in the service\'s format', async t => {
  const td = await startTestDaemon({
    upstreams: [dns.url],
    blocklists: { dir: EMPTY_BLOCKLISTS, sources: [{ name: 'snapshot', path: join(FIXTURES, 'ms365', 'worldwide.json'), format: 'ms365', category: 'teams', ms365: { ids: [11, 12] } }] }
  })
  t.teardown(() => td.close())
  t.ok(await blocked(td, 'web.teams.microsoft.com'))
  t.ok(await blocked(td, 'teams-media-18.test'), 'ips of sets 11/12 (13.107.64.0/18) block answers inside them')
  // 52.112.0.0/14 is wider than the rule guard's default /16 (blocklists.guard.maxPrefix): the list
  // line is skipped, so an answer inside it stays answered.
  t.ok(await answered(td, 'teams-media.test'), 'a /14 of the list is skipped by the rule guard')
  t.ok(await answered(td, 'outlook.office.com'))
})
