// `egressd query` and `egressd export nftables` decide as the daemon on the same data dir does: with
// the store's custom rules (management API) and the last accepted copies of URL sources.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { sha256 } from '../src/lists/last-good.js'
import { openDatabase } from '../src/store/db.js'
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
  const db = openDatabase(join(dataDir, 'egressd.sqlite'))
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
