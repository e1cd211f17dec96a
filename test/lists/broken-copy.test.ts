// A stored copy that matches its hash but no longer compiles (edited on disk together with its meta)
// must not stop the gateway from filtering with everything else: it is left out, loudly.

import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sha256 } from '../../src/lists/last-good.js'
import { startTestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { tempDir } from '../helpers/tmp.js'

t.test('a stored copy without a single valid entry is skipped at start; bundled lists still block', async t => {
  const dataDir = tempDir('egressd-broken-copy-')
  mkdirSync(join(dataDir, 'lists'))
  const body = Buffer.from('# this list lost all its entries\n')
  writeFileSync(join(dataDir, 'lists', 'central.txt'), body)
  writeFileSync(join(dataDir, 'lists', 'central.json'), JSON.stringify({
    source: 'central', url: 'https://127.0.0.1:1/list.txt', sha256: sha256(body), fetchedAt: new Date().toISOString(), entries: 0, bytes: body.length
  }))
  const td = await startTestDaemon({
    dataDir,
    blocklists: {
      sources: [{ name: 'central', url: 'https://127.0.0.1:1/list.txt', format: 'plain', timeoutMs: 500 }],
      update: { allowHosts: ['127.0.0.1'] }
    }
  })
  t.teardown(() => td.close())
  const loud = td.logs().find(l => typeof l.msg === 'string' && l.msg.startsWith('STORED LIST COPIES DO NOT COMPILE'))
  t.ok(loud, 'a loud error names the problem')
  t.same(loud?.sources, ['central'])
  const r = await dig([`@${td.host}`, '-p', String(td.port), 'telegram.org', 'A', '+tries=1', '+time=3'])
  t.equal(r.status, 'NXDOMAIN', 'the bundled telegram list blocks')
})
