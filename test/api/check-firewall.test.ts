// GET /api/v1/check with an IP address: how the firewall's table treats traffic to it, through a
// real daemon that learned from a real dnsmasq upstream (learning-daemon.ts): an address in
// Telegram's published ranges (telegram_v4, with the list line), a learned address (its learned
// set and the name it came from), one the guard holds back (with the allowed name sharing it), an
// unrelated one (not covered), a never-block one, a bad one (400 naming the field); firewall.sync
// off said in the notes; a blocked name with the learned addresses it left in the sets. `egressd
// query` (dist/cli.js, reading the daemon's policy file) says the same. Needs dist/.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { call, TOKENS } from './helpers.js'
import { A, ALLOWED_B, B, BANNED_A, BANNED_B, lookUp, startLearningDaemon, until, waitLearned } from './learning-daemon.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const EXPORT_HINT = /^firewall\.sync is off: .*export it with `egressd export nftables`/

t.test('the firewall coverage of addresses and of a blocked name', async t => {
  const d = await startLearningDaemon(t)
  await lookUp(t, d)
  await waitLearned(d)
  const check = async (query: string): Promise<{ status: number, json: any }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await call(d.base, 'GET', `/api/v1/check?${query}`, { token: TOKENS.viewer })
    return { status: r.status, json: r.json }
  }

  const telegram = await check('address=149.154.167.51')
  t.equal(telegram.status, 200)
  t.match(telegram.json, {
    address: '149.154.167.51', family: 4, client: '127.0.0.1', group: 'default', verdict: 'block',
    firewall: { sync: false, table: 'egressd', learning: true, covered: true, shared: [], learned: [], held: [] }
  })
  t.same(telegram.json.firewall.ranges, [{ category: 'telegram', set: 'telegram_v4', range: '149.154.160.0/20', list: resolve('blocklists/telegram/cidrs.txt'), line: 13, rule: '149.154.160.0/20' }],
    'in Telegram\'s published ranges: the set, the range and its list line')
  t.match(telegram.json.firewall.notes, [EXPORT_HINT], 'sync off: how to get the table')
  t.same((await check('name=149.154.167.51')).json, telegram.json, 'an address in name= is read as address=')

  const a = await check(`address=${A}`)
  t.match(a.json, { address: A, verdict: 'block', firewall: { covered: true, ranges: [], held: [] } })
  t.match(a.json.firewall.learned, [{ address: A, category: 'whatsapp', set: 'learned_whatsapp_v4', name: BANNED_A, via: 'query', expiresAt: /Z$/ }], 'A: in whatsapp\'s learned set, from the blocked name')
  t.equal(a.json.firewall.learned.length, 1)
  t.notOk('guard' in a.json.firewall, 'the guard does not hold A')

  const b = await check(`address=${B}`)
  t.match(b.json, { address: B, verdict: 'allow', firewall: { covered: false, ranges: [], learned: [] } })
  t.match(b.json.firewall.held, [{ address: B, category: 'whatsapp', name: BANNED_B, reason: 'allowed-name', range: null }])
  t.ok(b.json.firewall.held[0].sharedWith.includes(ALLOWED_B), 'B: held back, with the allowed name that shares it')
  t.match(b.json.firewall.guard, { reason: 'allowed-name', sharedWith: [ALLOWED_B], range: null }, 'and the guard would hold it now')

  const other = await check('address=11.0.0.99')
  t.match(other.json, { verdict: 'allow', firewall: { covered: false, ranges: [], shared: [], learned: [], held: [] } }, 'an unrelated address: not covered')
  t.notOk('guard' in other.json.firewall)
  const lan = await check('address=10.1.2.3')
  t.match(lan.json, { verdict: 'allow', firewall: { covered: false, guard: { reason: 'never-block', range: '10.0.0.0/8 (special-purpose)' } } }, 'a never-block address')
  const v6 = await check(`address=${encodeURIComponent('2001:67C:4E8:0::a')}`)
  t.match(v6.json, { address: '2001:67c:4e8::a', family: 6, verdict: 'block', firewall: { ranges: [{ category: 'telegram', set: 'telegram_v6' }] } }, 'IPv6, written any way, in canonical form')

  for (const [query, field] of [['address=nope', 'address'], ['address=1.2.3.4.5', 'address'], ['address=1.2.3.4&name=a.org', 'address']] as const) {
    const bad = await check(query)
    t.equal(bad.status, 400, query)
    t.match(bad.json.message, new RegExp(`^querystring\\.${field}: `), `${query}: names querystring.${field}`)
  }
  t.equal((await check('client=10.0.0.1')).json.message, 'querystring.name: required', 'neither name nor address')

  // A blocked name: the learned addresses it left in the sets.
  const name = await check(`name=${BANNED_A}`)
  t.match(name.json, { name: BANNED_A, verdict: 'block', category: 'whatsapp', firewall: { sync: false, learning: true, notes: [EXPORT_HINT], held: [] } })
  t.match(name.json.firewall.learned, [{ address: A, set: 'learned_whatsapp_v4', name: BANNED_A }])
  t.notOk('covered' in name.json.firewall, 'no address fields for a name')
  t.match((await check(`name=${BANNED_B}`)).json.firewall, { learned: [], held: [{ address: B, reason: 'allowed-name' }] }, 'the second banned name: its address held')
  t.notOk('firewall' in (await check(`name=${ALLOWED_B}`)).json, 'an allowed name has no firewall part')

  // `egressd query` reads the same daemon's policy file (read-only) once the book has written it.
  const query = (arg: string): { status: number | null, json: any } => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = spawnSync(process.execPath, [CLI, 'query', arg, '--config', d.configFile], { encoding: 'utf8', timeout: 60_000 })
    return { status: r.status, json: r.stdout === '' ? r.stderr : JSON.parse(r.stdout) }
  }
  const cliA = await until('A in the policy file', () => query(A), r => r.json.firewall?.learned?.length === 1, 10_000)
  t.equal(cliA.status, 3, 'query ADDRESS exits 3 when the table rejects it')
  t.same(cliA.json, a.json, 'egressd query A says what the API says')
  t.same(query('149.154.167.51').json, telegram.json)
  const cliOther = query('11.0.0.99')
  t.equal(cliOther.status, 0)
  t.same(cliOther.json, other.json)
  const cliB = query(B)
  t.same(cliB.json.firewall.held, b.json.firewall.held, 'B held, from the file')
  t.notOk('guard' in cliB.json.firewall, 'the CLI has no memory of allowed answers: the held row says it')
  t.same(query(BANNED_A).json, name.json, 'and the blocked name')
})
