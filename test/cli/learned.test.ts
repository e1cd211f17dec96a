// `egressd learned` reading the policy file of a real daemon that learned from a real dnsmasq
// upstream (test/api/learning-daemon.ts): a table on a terminal, JSON (the API's shape) with --json
// or in a pipe, --held, --category; with no policy file yet it prints empty sets; and the built
// command (dist/cli.js, `npx tsc -p tsconfig.json` first) wired into `egressd`.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { learnedCommand } from '../../src/cli/learned.js'
import type { CliIo } from '../../src/cli/io.js'
import { call, TOKENS } from '../api/helpers.js'
import { A, ALLOWED_B, B, BANNED_A, BANNED_B, lookUp, startLearningDaemon, until, waitLearned } from '../api/learning-daemon.js'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')

function run (args: string[], isTTY = false): { out: string, err: string } {
  let out = ''
  let err = ''
  const io: CliIo = { out: s => { out += s }, err: s => { err += s }, isTTY, env: {}, now: Date.now, bundledBlocklistsDir: resolve('blocklists') }
  const code = learnedCommand(args, io)
  if (code !== 0) throw new Error(`exit ${code}: ${err}`)
  return { out, err }
}

t.test('from the policy file of a daemon that learned', async t => {
  const d = await startLearningDaemon(t)
  await lookUp(t, d)
  await waitLearned(d)
  const cfg = ['--config', d.configFile]
  // The book writes its rows within a second: poll the file (bounded).
  const j = await until('A and B in the policy file', () => JSON.parse(run([...cfg, '--json']).out),
    (v: { learned: Array<{ address: string }>, held: Array<{ address: string }> }) => v.learned.some(l => l.address === A) && v.held.some(h => h.address === B), 10_000)
  const api = (await call(d.base, 'GET', '/api/v1/learned', { token: TOKENS.viewer })).json
  t.same(j, { learned: api.learned, held: api.held }, 'the same rows, in the same shape, as GET /api/v1/learned')
  t.match(j.learned.find((l: { address: string }) => l.address === A), { category: 'whatsapp', name: BANNED_A, via: 'query', expiresAt: /Z$/ })
  t.match(j.held.find((h: { address: string }) => h.address === B), { category: 'whatsapp', name: BANNED_B, reason: 'allowed-name', sharedWith: [ALLOWED_B] })
  t.same(JSON.parse(run(cfg).out), j, 'a pipe gets JSON')

  const table = run(cfg, true).out.split('\n')
  t.equal(table[0], `Learned (in the firewall's learned sets): ${j.learned.length}`)
  t.match(table[1], /^CATEGORY +ADDRESS +NAME +VIA +LAST SEEN +EXPIRES$/)
  t.ok(table.some(l => new RegExp(`^whatsapp +${A.replace(/\./g, '\\.')} +www\\.whatsapp\\.com +query +\\S+Z +\\S+Z$`).test(l)), `A in the table:\n${table.join('\n')}`)
  const heldAt = table.findIndex(l => l.startsWith('Held back by the collateral guard: '))
  t.ok(heldAt > 1)
  t.match(table[heldAt + 1], /^CATEGORY +ADDRESS +NAME +VIA +LAST SEEN +WHY$/)
  t.ok(table.slice(heldAt).some(l => new RegExp(`^whatsapp +${B.replace(/\./g, '\\.')} +media\\.whatsapp\\.net +query +\\S+Z +shared with .*portal\\.example\\.com`).test(l)), 'B held, with the allowed name')

  const held = run([...cfg, '--held'], true).out
  t.notMatch(held, /^Learned/m, '--held: only the held part')
  t.match(held, /^Held back by the collateral guard: \d+\n/)
  t.notMatch(held, A)
  t.same(JSON.parse(run([...cfg, '--held', '--json']).out), { held: j.held })

  t.same(JSON.parse(run([...cfg, '--category', 'telegram']).out), { learned: [], held: [] }, '--category: another category has none')
  t.same(JSON.parse(run([...cfg, '--category', 'whatsapp']).out).learned.map((l: { address: string }) => l.address), j.learned.map((l: { address: string }) => l.address))

  const built = spawnSync(process.execPath, [CLI, 'learned', '--json', ...cfg], { encoding: 'utf8', timeout: 60_000 })
  t.equal(built.status, 0, built.stderr)
  t.same(JSON.parse(built.stdout).held.map((h: { address: string }) => h.address), j.held.map((h: { address: string }) => h.address), 'dist/cli.js learned')
  const help = spawnSync(process.execPath, [CLI, 'help'], { encoding: 'utf8', timeout: 60_000 })
  t.match(help.stdout, /egressd learned \[--category C\] \[--held\]/)
})

t.test('with no policy file yet: empty sets', async t => {
  const dir = tempDir('egressd-cli-learned-')
  const file = join(dir, 'egressd.yaml')
  writeFileSync(file, `upstreams: ["udp://127.0.0.1:9"]\ndataDir: ${join(dir, 'never-started')}\n`)
  t.same(JSON.parse(run(['--config', file]).out), { learned: [], held: [] })
  t.equal(run(['--config', file], true).out, "Learned (in the firewall's learned sets): 0\n(none)\nHeld back by the collateral guard: 0\n(none)\n")
  const off = join(dir, 'off.yaml')
  writeFileSync(off, `upstreams: ["udp://127.0.0.1:9"]\ndataDir: ${join(dir, 'never-started')}\nlearning: { enabled: false }\n`)
  t.match(run(['--config', off]).err, /learning\.enabled is off/)
  t.throws(() => run(['--config', file, '--json', '--table']), { code: 'EGRESSD_ERR_USAGE' })
})
