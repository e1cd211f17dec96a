// A full filesystem under the data dir. The daemon's data dir is a small tmpfs the test mounts;
// once it is filled to the last byte, every block-log write fails with SQLITE_FULL:
// - blocked queries keep being answered (real `dig`, NXDOMAIN);
// - /readyz says `store` is failing, /api/v1/status shows the state, the SQLite code, the
//   failures in a row, the queue (the failed batch kept for its retry) and its bound, /metrics the
//   same; events beyond the bound are dropped and counted;
// - the tmpfs is grown (`mount -o remount,size=`: it cannot be unmounted with the files open):
//   the retried batches are written, readiness recovers, and every event kept in memory is in the
//   log, the dropped ones are not.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Resolver } from 'node:dns/promises'
import { dig } from '../helpers/dig.js'
import { tempDir } from '../helpers/tmp.js'
import { answeringUpstream, call, sleep, startApiDaemon, TOKENS, type ApiDaemon } from '../api/helpers.js'

const QUEUE_MAX = 100

async function until (what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) { if (await what()) return true; await sleep(50) }
  return await what()
}

/** Writes a file in `dir` until the filesystem says ENOSPC; returns its size. */
function fill (dir: string): number {
  const fd = openSync(join(dir, 'filler'), 'w')
  let size = 0
  try {
    for (const chunk of [Buffer.alloc(1 << 20, 1), Buffer.alloc(4096, 1), Buffer.alloc(1, 1)]) {
      for (;;) {
        try { size += writeSync(fd, chunk) } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
          break
        }
      }
    }
  } finally { closeSync(fd) }
  return size
}

t.test('a full disk: DNS answers, readiness and status say the store fails, kept events are written once space is back', async t => {
  const mnt = tempDir('egressd-full-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', mnt])
  const upstream = await answeringUpstream()
  let d: ApiDaemon | undefined
  t.teardown(async () => {
    await d?.close()
    await upstream.close()
    execFileSync('umount', [mnt])
  })
  d = await startApiDaemon({ upstreams: [upstream.url], log: { level: 'warn' }, store: { batchMs: 50, queueMax: QUEUE_MAX } }, { dataDir: mnt })
  const { base, dnsPort } = d
  const get = async (path: string) => await call(base, 'GET', path, { token: TOKENS.admin })
  const status = async () => (await get('/api/v1/status')).json.blockLog
  const metric = async (line: RegExp): Promise<string | undefined> => (await call(base, 'GET', '/metrics', { token: TOKENS.metrics })).text.split('\n').find(l => line.test(l))
  const resolver = new Resolver({ timeout: 3000, tries: 1 })
  resolver.setServers([`127.0.0.1:${dnsPort}`])
  const blocked = async (name: string): Promise<string> => {
    try { await resolver.resolve4(name); return 'NOERROR' } catch (err) { return (err as { code: string }).code }
  }

  // Healthy first: one event written.
  t.equal((await dig(['@127.0.0.1', '-p', String(dnsPort), 'before.web.telegram.org', 'A'])).status, 'NXDOMAIN')
  t.ok(await until(async () => (await status()).written === 1, 5000), 'the first event is written')
  t.equal((await call(base, 'GET', '/readyz')).status, 200, 'ready while writes succeed')
  t.match(await status(), { state: 'ok', consecutiveFailures: 0, lastError: null, queueMax: QUEUE_MAX })

  const filled = fill(mnt)
  t.ok(filled > 1 << 20, `filled the tmpfs with ${filled} bytes`)

  // 30 blocked queries while the disk is full: answered, queued, their writes fail.
  for (let i = 0; i < 30; i++) {
    const s = i % 10 === 0 ? (await dig(['@127.0.0.1', '-p', String(dnsPort), `k${i}.web.telegram.org`, 'A'])).status : await blocked(`k${i}.web.telegram.org`)
    t.equal(s, i % 10 === 0 ? 'NXDOMAIN' : 'ENOTFOUND', `k${i} answered as blocked`)
  }
  t.ok(await until(async () => (await status()).consecutiveFailures >= 2, 10_000), 'writes fail, and are retried')
  const ready = await call(base, 'GET', '/readyz')
  t.equal(ready.status, 503, 'not ready')
  t.ok(ready.json.failing.includes('store'), `failing: ${JSON.stringify(ready.json.failing)}`)
  const failing = await status()
  t.match(failing, { state: 'failing', queueDepth: 30, dropped: 0, written: 1, lastError: { code: 'SQLITE_FULL', message: /full/ } }, 'status: failing with SQLITE_FULL, the events kept')
  t.ok(failing.failures >= failing.consecutiveFailures && failing.lastOk !== null && Date.parse(failing.lastError.at) >= Date.parse(failing.lastOk), 'the last error is after the last success')
  t.ok((await get('/api/v1/status')).json.notReady.includes('store'), 'status names the store as not ready')
  t.match(await metric(/^egressd_blocklog_writing /), /^egressd_blocklog_writing 0$/)
  t.ok(await metric(/^egressd_blocklog_last_error_timestamp_seconds\{code="SQLITE_FULL"\} /), 'metrics: the last error by code')
  t.match(await metric(/^egressd_blocklog_queue_depth /), /^egressd_blocklog_queue_depth 30$/)

  // 100 more: the queue holds QUEUE_MAX, the rest are dropped and counted; DNS still answers.
  for (let i = 30; i < 130; i++) t.equal(await blocked(`k${i}.web.telegram.org`), 'ENOTFOUND')
  t.equal((await dig(['@127.0.0.1', '-p', String(dnsPort), 'k130.web.telegram.org', 'A'])).status, 'NXDOMAIN', 'dig still answered')
  t.match(await status(), { state: 'failing', queueDepth: QUEUE_MAX, dropped: 31 }, 'beyond the bound: dropped and counted')
  t.match(await metric(/^egressd_blocklog_dropped_total /), /^egressd_blocklog_dropped_total 31$/)

  // Space comes back: the kept events are written, readiness recovers.
  execFileSync('mount', ['-o', 'remount,size=64m', mnt])
  t.ok(await until(async () => (await call(base, 'GET', '/readyz')).status === 200, 15_000), 'ready again after a write succeeded')
  t.ok(await until(async () => (await status()).queueDepth === 0, 10_000), 'the queue drained')
  const after = await status()
  t.match(after, { state: 'ok', consecutiveFailures: 0, written: 1 + QUEUE_MAX, dropped: 31, lastError: { code: 'SQLITE_FULL' } })
  t.ok(Date.parse(after.lastOk) >= Date.parse(after.lastError.at), 'the last success is after the last error')
  t.match(await metric(/^egressd_blocklog_writing /), /^egressd_blocklog_writing 1$/)

  const rows = (await call(base, 'GET', '/api/v1/blocks?domain=web.telegram.org&suffix=true&limit=1000', { token: TOKENS.viewer })).json.rows as Array<{ qname: string }>
  const logged = new Set(rows.map(r => r.qname))
  const kept = Array.from({ length: QUEUE_MAX }, (_, i) => `k${i}.web.telegram.org`)
  t.same(kept.filter(n => !logged.has(n)), [], 'every event kept during the outage is in the log')
  t.same(Array.from({ length: 31 }, (_, i) => `k${QUEUE_MAX + i}.web.telegram.org`).filter(n => logged.has(n)), [], 'the dropped ones are not')
  t.ok(logged.has('before.web.telegram.org'))
  t.equal(rows.length, 1 + QUEUE_MAX, 'each written once')
})
