// `egressd query` and `egressd export nftables` decide as the daemon on the same data dir does: with
// the custom rules of the policy file (management API) and the last accepted copies of URL sources;
// from the block log's old tables before the daemon moved them; and from what can still be read of
// a damaged policy file.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { sha256 } from '../src/lists/last-good.js'
import { openDatabase } from '../src/store/db.js'
import { MIGRATIONS, POLICY_MIGRATIONS } from '../src/store/migrations.js'
import { RuleStore } from '../src/store/rules.js'
import { tempDir } from './helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', 'dist', 'cli.js')
const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 })

t.test('query and export see stored custom rules and downloaded list copies', async t => {
  const dataDir = tempDir('egressd-cli-stored-')
  const config = join(dataDir, 'egressd.json')
  writeFileSync(config, JSON.stringify({
    upstreams: ['udp://127.0.0.1:9'],
    dataDir,
    blocklists: { sources: [{ name: 'central', url: 'https://127.0.0.1:1/list.txt', format: 'plain' }], update: { allowHosts: ['127.0.0.1'] } }
  }))
  const db = openDatabase(join(dataDir, 'policy.sqlite'), { migrations: POLICY_MIGRATIONS })
  new RuleStore(db).add({ kind: 'block', rule: 'api-rule.example', comment: 'from the API', createdAt: Date.now(), createdBy: 'admin', expiresAt: null })
  db.close()
  mkdirSync(join(dataDir, 'lists'))
  const body = Buffer.from('downloaded.example\n198.51.100.0/24\n')
  writeFileSync(join(dataDir, 'lists', 'central.txt'), body)
  writeFileSync(join(dataDir, 'lists', 'central.json'), JSON.stringify({
    source: 'central', url: 'https://127.0.0.1:1/list.txt', sha256: sha256(body), fetchedAt: new Date().toISOString(), entries: 2, bytes: body.length
  }))

  const custom = run(['query', 'www.api-rule.example', '--config', config])
  t.equal(custom.status, 3, `blocked by the stored rule (${custom.stderr})`)
  t.match(JSON.parse(custom.stdout), { verdict: 'block', category: 'custom', rule: 'api-rule.example' })
  const downloaded = run(['query', 'downloaded.example', '--config', config])
  t.equal(downloaded.status, 3, 'blocked by the downloaded copy')
  t.match(JSON.parse(downloaded.stdout), { verdict: 'block', category: 'central' })
  t.equal(run(['query', 'allowed.example', '--config', config]).status, 0)

  const nft = run(['export', 'nftables', '--config', config])
  t.equal(nft.status, 0, nft.stderr)
  t.match(nft.stdout, /198\.51\.100\.0\/24/, 'the downloaded address range is in the nftables sets')
})

t.test('before the daemon moved them, query reads the custom rules from the block log\'s old tables', async t => {
  const dataDir = tempDir('egressd-cli-old-')
  const config = join(dataDir, 'egressd.json')
  writeFileSync(config, JSON.stringify({ upstreams: ['udp://127.0.0.1:9'], dataDir }))
  const db = openDatabase(join(dataDir, 'egressd.sqlite'), { migrations: MIGRATIONS.filter(m => m.version <= 4) })
  new RuleStore(db).add({ kind: 'block', rule: 'old-rule.example', comment: '', createdAt: Date.now(), createdBy: 'admin', expiresAt: null })
  db.close()
  const r = run(['query', 'old-rule.example', '--config', config])
  t.equal(r.status, 3, r.stderr)
  t.match(JSON.parse(r.stdout), { verdict: 'block', category: 'custom', rule: 'old-rule.example' })
})

t.test('a damaged policy file: query decides with the rules that can still be read, and says so', async t => {
  const dataDir = tempDir('egressd-cli-damaged-')
  const config = join(dataDir, 'egressd.json')
  writeFileSync(config, JSON.stringify({ upstreams: ['udp://127.0.0.1:9'], dataDir }))
  const file = join(dataDir, 'policy.sqlite')
  const db = openDatabase(file, { migrations: POLICY_MIGRATIONS })
  new RuleStore(db).add({ kind: 'block', rule: 'kept.example', comment: '', createdAt: Date.now(), createdBy: 'admin', expiresAt: null })
  const index = (db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'rules_expires_at'").get() as { rootpage: number }).rootpage
  const pageSize = db.pragma('page_size', { simple: true }) as number
  db.close()
  const fd = openSync(file, 'r+')
  writeSync(fd, randomBytes(pageSize), 0, pageSize, (index - 1) * pageSize)
  closeSync(fd)
  const r = run(['query', 'kept.example', '--config', config])
  t.equal(r.status, 3, r.stderr)
  t.match(JSON.parse(r.stdout), { verdict: 'block', rule: 'kept.example' })
  t.match(r.stderr, /policy\.sqlite: damaged/)
})
