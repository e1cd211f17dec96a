// The block-log writer with a real SQLite file: batches written off the DNS thread, a full queue
// drops and counts, a write lock held by another connection keeps events queued until released,
// retention deletes exactly the old rows, and the store's open rules (corrupt file moved aside,
// newer schema refused, migrations recorded).

import t from 'tap'
import Database from 'better-sqlite3'
import { writeFileSync, readdirSync } from 'node:fs'
import { execFileSync, spawn } from 'node:child_process'
import { dirname } from 'node:path'
import { setPriority } from 'node:os'
import { BlockLog, type BlockLogOptions } from '../../src/store/block-log.js'
import { EventWriter, DAY_MS, HOUR_MS, runRetention, usedBytes } from '../../src/store/block-writer.js'
import { openDatabase, schemaVersion } from '../../src/store/db.js'
import { MIGRATIONS } from '../../src/store/migrations.js'
import { event, freshDb, memoryLog, tempDbPath } from './helpers.js'

const T0 = Date.UTC(2030, 0, 1)
const count = (db: Database.Database): number => (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
const oldestTs = (db: Database.Database): number => (db.prepare('SELECT min(ts) AS m FROM events').get() as { m: number }).m

/** A fresh store holding one event at each of `times`, written the way the daemon writes them. */
function storeWithEventsAt (times: number[]): Database.Database {
  const { db } = freshDb()
  new EventWriter(db).write(times.map(ts => event({ ts })))
  return db
}

/** `n` consecutive milliseconds from `from`. */
const msFrom = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i)

async function until (what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) { if (what()) return true; await new Promise(resolve => setTimeout(resolve, 20)) }
  return what()
}

function options (path: string, o: Partial<BlockLogOptions> = {}): BlockLogOptions {
  return { path, synchronous: 'NORMAL', busyTimeoutMs: 100, queueMax: 1000, batchMs: 50, retention: { days: 90, maxRows: 0, maxBytes: 0 }, log: memoryLog().log, ...o }
}

t.test('events are written in batches and close flushes what is queued', async t => {
  const { path, db } = freshDb()
  const bl = await BlockLog.open(options(path, { batchMs: 60_000 }))
  for (let i = 0; i < 250; i++) bl.push(event({ ts: T0 + i }))
  t.equal(bl.stats.depth, 250, 'queued, not written yet (one batch interval)')
  t.equal(count(db), 0)
  await bl.close()
  t.equal(count(db), 250, 'close wrote the queue')
  t.equal(bl.stats.written, 250)
  db.close()
})

t.test('a full queue drops and counts instead of waiting', async t => {
  const { path, db } = freshDb()
  const { log, lines } = memoryLog()
  const bl = await BlockLog.open(options(path, { queueMax: 100, batchMs: 60_000, log }))
  const started = performance.now()
  let accepted = 0
  for (let i = 0; i < 5000; i++) if (bl.push(event({ ts: T0 + i }))) accepted++
  const ms = performance.now() - started
  t.equal(accepted, 100)
  t.equal(bl.stats.dropped, 4900)
  t.ok(ms < 500, `5000 pushes took ${ms.toFixed(1)} ms`)
  t.ok(lines().some(l => l.msg === 'block log queue full: events dropped' && l.total !== undefined && typeof l.cause === 'string'), 'warned')
  await bl.close()
  t.equal(count(db), 100)
  t.ok(lines().some(l => l.msg === 'block log closed; events were dropped while the queue was full' && l.written === 100 && l.dropped === 4900), 'totals logged at close')
  db.close()
})

t.test('a batch is at most a quarter of the queue: it goes to the writer at once, and the queue keeps taking events while it is written', async t => {
  const { path, db } = freshDb()
  // No timer sends within the test (batchMs 60 s): only a full batch goes to the writer.
  const bl = await BlockLog.open(options(path, { queueMax: 400, batchMs: 60_000, busyTimeoutMs: 2000 }))
  const other = new Database(path)
  other.exec('BEGIN IMMEDIATE') // the first write waits on this lock (busy timeout), in flight
  for (let i = 0; i < 100; i++) bl.push(event({ ts: T0 + i }))
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(bl.stats.inflightMs > 0, true, 'a batch of queueMax / 4 events went to the writer without waiting for the timer')
  let accepted = 0
  for (let i = 100; i < 500; i++) if (bl.push(event({ ts: T0 + i }))) accepted++
  t.equal(accepted, 300, 'while it is in flight, the rest of the bound still takes events')
  t.equal(bl.stats.dropped, 100)
  other.exec('COMMIT')
  t.ok(await until(() => bl.stats.written >= 100, 5000), 'the batch in flight was written once the lock went')
  other.close()
  await bl.close()
  t.equal(count(db), 400, 'everything accepted is written')
  db.close()
})

t.test('a writer starved of CPU: drops are counted, and the warning and the figures say the CPU was saturated', async t => {
  const { path, db } = freshDb()
  const { log, lines } = memoryLog()
  const bl = await BlockLog.open(options(path, { queueMax: 4000, batchMs: 20, threadNice: 19, dropWarnEveryMs: 300, log }))
  const tid = bl.priority?.tid
  if (tid === undefined) throw new Error(`no writer thread id: ${JSON.stringify(bl.priority)}`)
  // The writer thread (nice 19) and a busy process (nice 0) share CPU 0 for at most 8 s.
  const busy = spawn('taskset', ['-c', '0', process.execPath, '-e', 'const end = Date.now() + 8000; while (Date.now() < end) {}'], { stdio: 'ignore' })
  t.teardown(() => { busy.kill() })
  execFileSync('taskset', ['-p', '-c', '0', String(tid)], { stdio: 'ignore' })
  await new Promise(resolve => setTimeout(resolve, 300))
  // 10,000 events/s for 3 s, far above what a writer gets next to a busy loop at nice 19.
  let ts = T0
  for (let round = 0; round < 300; round++) {
    for (let i = 0; i < 100; i++) bl.push(event({ ts: ts++, qname: `n${ts}.example` }))
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  const s = bl.stats
  t.ok(s.dropped > 0, `dropped ${s.dropped} of ${ts - T0}`)
  t.equal(s.state, 'ok', 'the store itself is fine')
  t.ok(s.writer.busyMs > 0 && s.writer.cpuWaitMs / s.writer.busyMs >= 0.5,
    `the writer's write time was mostly spent waiting for a CPU (${Math.round(s.writer.cpuWaitMs)} of ${Math.round(s.writer.busyMs)} ms)`)
  t.ok(lines().some(l => l.msg === 'block log queue full: events dropped' && l.cause === 'CPU saturated: the writer waits for a core' && (l.writerCpuWaitShare as number) >= 0.5),
    'a drop warning names CPU saturation')
  busy.kill()
  await bl.close()
  t.equal(count(db) + bl.stats.dropped, ts - T0, 'every event written or counted as dropped')
  db.close()
})

t.test('SQLITE_BUSY: a write lock held elsewhere keeps events queued; they are written after release', async t => {
  const { path, db } = freshDb()
  const bl = await BlockLog.open(options(path, { batchMs: 30, busyTimeoutMs: 50 }))
  const other = new Database(path)
  other.pragma('busy_timeout = 0')
  other.exec('BEGIN IMMEDIATE') // an admin's sqlite3 shell in a write transaction
  for (let i = 0; i < 40; i++) bl.push(event({ ts: T0 + i }))
  t.ok(await until(() => bl.stats.failures >= 2, 5000), 'writes failed while locked')
  const failing = bl.stats
  t.match(failing, { state: 'failing', depth: 40, queueMax: 1000, dropped: 0, lastOkAt: undefined, lastError: { code: 'SQLITE_BUSY', message: /locked/ } }, 'reported as failing, events kept')
  t.ok(failing.consecutiveFailures >= 2 && failing.consecutiveFailures === failing.failures, 'failures in a row counted')
  t.ok(Math.abs(failing.lastError!.at - Date.now()) < 5000, 'with the time of the failure')
  other.exec('COMMIT')
  t.ok(await until(() => bl.stats.written === 40, 10_000), 'written after the lock was released')
  t.equal(count(db), 40)
  const ok = bl.stats
  t.match(ok, { state: 'ok', consecutiveFailures: 0, depth: 0, lastError: { code: 'SQLITE_BUSY' } }, 'recovered; the last error stays for the record')
  t.ok(ok.lastOkAt !== undefined && ok.lastOkAt >= ok.lastError!.at, 'the last success is after the last error')
  other.close()
  await bl.close()
  db.close()
})

t.test('SQLITE_FULL: events queue, then drop and count; writing resumes when space returns', async t => {
  const { path, db } = freshDb()
  const pages = db.pragma('page_count', { simple: true }) as number
  const bl = await BlockLog.open(options(path, { batchMs: 30, queueMax: 3000, maxPageCount: pages + 2 }))
  const big = (i: number) => event({ ts: T0 + i, qname: `n${i}-${'x'.repeat(50)}.example`, rule: `r${i}-${'y'.repeat(100)}` })
  for (let i = 0; i < 2000; i++) bl.push(big(i))
  t.ok(await until(() => bl.stats.failures >= 1, 5000), 'the write failed')
  t.match(bl.stats, { state: 'failing', lastError: { code: 'SQLITE_FULL' } })
  for (let i = 2000; i < 4000; i++) bl.push(big(i))
  t.match(bl.stats, { dropped: 1000, depth: 3000, queueMax: 3000 }, 'beyond queueMax: dropped and counted; the failed batch and the rest are kept')
  bl.pragma('max_page_count = 1000000')
  t.ok(await until(() => bl.stats.depth === 0, 10_000), 'resumed by itself')
  t.equal(count(db), 3000, 'every kept event written, the failed batch included')
  t.match(bl.stats, { state: 'ok', consecutiveFailures: 0, written: 3000 })
  await bl.close()
  db.close()
})

t.test('a writer thread that dies is replaced: what was queued before and during its death is written', async t => {
  const { path, db } = freshDb()
  const { log, lines } = memoryLog()
  const bl = await BlockLog.open(options(path, { batchMs: 30, log }))
  for (let i = 0; i < 200; i++) bl.push(event({ ts: T0 + i }))
  t.ok(await bl.flush(5000), 'the first writer wrote')
  bl.crashWriter()
  t.ok(await until(() => lines().some(l => l.msg === 'block log writer thread died; events stay queued and a new writer starts'), 5000), 'the death is logged')
  for (let i = 200; i < 500; i++) bl.push(event({ ts: T0 + i }))
  t.ok(await bl.flush(10_000), 'the queue drained through a new writer')
  t.equal(count(db), 500, 'every event written once')
  t.equal(bl.stats.written, 500)
  t.equal(bl.stats.dropped, 0)
  t.ok(bl.stats.failures >= 1, 'the death counts as a failure')
  t.match(bl.stats, { state: 'ok', consecutiveFailures: 0, lastError: { code: 'WRITER_DIED' } }, 'and was reported')
  t.ok(lines().some(l => l.msg === 'block log writer thread restarted'), 'the restart is logged')
  await bl.close()
  db.close()
})

t.test('a batch that three writer threads in a row died on is dropped and counted; the log goes on', async t => {
  const { path, db } = freshDb()
  const { log, lines } = memoryLog()
  const bl = await BlockLog.open(options(path, { batchMs: 30, log, testCrashOnWrite: true }))
  for (let i = 0; i < 10; i++) bl.push(event({ ts: T0 + i }))
  t.ok(await until(() => bl.stats.dropped === 10, 10_000), 'dropped after the third death')
  t.ok(lines().some(l => l.msg === 'block log batch dropped: writer threads kept dying on it' && l.events === 10 && l.deaths === 3), 'logged with its size')
  t.equal(lines().filter(l => l.msg === 'block log writer thread died; events stay queued and a new writer starts').length, 3, 'three deaths, then no retry of that batch')
  t.equal(bl.stats.depth, 0)
  t.equal(count(db), 0)
  await bl.close()
  db.close()
})

t.test('retention deletes exactly the rows older than the limit (injected clock), in small steps', async t => {
  const now = T0 + 100 * DAY_MS
  const cutoff = now - 90 * DAY_MS
  const db = storeWithEventsAt(msFrom(cutoff - 2500, 5000)) // half before the cutoff
  let pauses = 0
  const { events: deleted } = await runRetention(db, { days: 90, maxRows: 0, maxBytes: 0 }, now, async () => { pauses++ }, 300)
  t.equal(deleted, 2500)
  t.ok(pauses >= 8, `ran in steps (${pauses} pauses)`)
  t.equal(oldestTs(db), cutoff, 'the oldest row left is at the cutoff')
  t.equal(count(db), 2500)
  // By row count: the oldest go first.
  t.equal((await runRetention(db, { days: 90, maxRows: 1000, maxBytes: 0 }, now, async () => {}, 300)).events, 1500)
  t.equal(count(db), 1000)
  t.equal(oldestTs(db), cutoff + 1500)
  db.close()
})

t.test('rows deleted for age count toward the row limit within one step', async t => {
  const now = T0 + 100 * DAY_MS
  const cutoff = now - 90 * DAY_MS
  const db = storeWithEventsAt([...msFrom(cutoff - 1000, 500), ...msFrom(cutoff, 1500)]) // 500 past the age limit
  const r = await runRetention(db, { days: 90, maxRows: 1000, maxBytes: 0 }, now, async () => {}, 2000)
  t.equal(r.events, 1000, '500 for age, then 500 more for rows')
  t.equal(count(db), 1000, 'exactly the row limit left')
  t.equal(oldestTs(db), cutoff + 500)
  db.close()
})

t.test('age retention deletes the names nothing refers to any more, and the writer interns them anew', async t => {
  const { db } = freshDb()
  const w = new EventWriter(db)
  const now = T0 + 100 * DAY_MS + 12 * HOUR_MS // the age limit cuts day 10 at noon
  const cutoff = now - 90 * DAY_MS
  w.write([
    event({ ts: cutoff - 5 * DAY_MS, qname: 'gone.example' }),
    event({ ts: cutoff - 5 * DAY_MS, qname: 'both.example' }),
    event({ ts: cutoff + DAY_MS, qname: 'both.example' }),
    event({ ts: cutoff - 2 * HOUR_MS, qname: 'morning.example' }), // before the cutoff, on its day
    event({ ts: cutoff + 2 * DAY_MS, qname: 'kept.example' })
  ])
  const names = (): string[] => db.prepare('SELECT name FROM names ORDER BY name').pluck().all() as string[]
  t.same(names(), ['both.example', 'gone.example', 'kept.example', 'morning.example'])
  const r = await runRetention(db, { days: 90, maxRows: 0, maxBytes: 0 }, now, async () => {}, 300, () => w.forgetNames())
  t.same(r, { events: 3, names: 1, overBytes: 0 })
  t.same(names(), ['both.example', 'kept.example', 'morning.example'],
    'morning.example stays: its event is gone, but the day it was counted in is still in the roll-ups')
  t.equal(db.prepare('SELECT count(*) FROM day_qname WHERE qname = (SELECT id FROM names WHERE name = ?)').pluck().get('morning.example'), 1)
  // The writer had gone.example's id in its cache: it must intern the name anew, not reuse the id.
  w.write([event({ ts: now, qname: 'gone.example' })])
  t.equal(db.prepare('SELECT n.name FROM events e JOIN names n ON n.id = e.qname WHERE e.ts = ?').pluck().get(now), 'gone.example')
  // A day later the cut reaches morning.example's day.
  const later = await runRetention(db, { days: 90, maxRows: 0, maxBytes: 0 }, now + DAY_MS, async () => {}, 300, () => w.forgetNames())
  t.equal(later.names, 1)
  t.same(names(), ['both.example', 'gone.example', 'kept.example'])
  db.close()
})

t.test('the size limit cuts roll-ups older than every event before any event, and never the last hour', async t => {
  const { db } = freshDb()
  const w = new EventWriter(db)
  const now = T0 + 100 * DAY_MS
  const evs = []
  for (let i = 0; i < 200; i++) evs.push(event({ ts: now - 2 * DAY_MS + i * 60_000, qname: `n${i}.example` }))
  w.write(evs)
  const withEvents = usedBytes(db)
  // Roll-ups outliving their events (as after a row limit): 60 days of top names, thousands a day.
  const add = db.prepare('INSERT INTO day_qname (day, category, qname, n) VALUES (?, 1, ?, 1)')
  db.transaction(() => { for (let d = 3; d < 63; d++) for (let q = 0; q < 2000; q++) add.run(Math.floor(now / DAY_MS) - d, q) })()
  t.ok(usedBytes(db) > 3 * withEvents, `roll-ups now fill most of the file (${usedBytes(db)} bytes, ${withEvents} with events only)`)
  const r = await runRetention(db, { days: 90, maxRows: 0, maxBytes: withEvents + 64 * 1024 }, now, async () => {}, 50)
  t.equal(r.events, 0, 'no event deleted: the roll-ups older than every event went first')
  t.equal(r.overBytes, 0)
  t.equal(count(db), 200)
  t.equal(db.prepare('SELECT count(*) FROM day_qname WHERE day < ?').pluck().get(Math.floor((now - 2 * DAY_MS) / DAY_MS)), 0)

  // Over the limit with events only: the oldest go, with their roll-ups; the last hour stays whatever its size.
  const recent = []
  for (let i = 0; i < 300; i++) recent.push(event({ ts: now - 30 * 60_000 + i, qname: `r${i}.example` }))
  w.write(recent)
  const tight = await runRetention(db, { days: 90, maxRows: 0, maxBytes: 4096 }, now, async () => {}, 50)
  t.equal(tight.events, 200, 'every event older than an hour deleted')
  t.equal(count(db), 300, 'the last hour kept')
  t.ok(tight.overBytes > 0, `and reported as over the limit (${tight.overBytes} bytes)`)
  t.equal(db.prepare('SELECT min(day) FROM day_qname').pluck().get(), Math.floor((now - 30 * 60_000) / DAY_MS), 'roll-ups as old as the oldest event left')
  db.close()
})

t.test('retention through the writer uses the injected clock', async t => {
  const { path, db } = freshDb()
  let now = T0
  const bl = await BlockLog.open(options(path, { now: () => now, retention: { days: 1, maxRows: 0, maxBytes: 0 }, retentionEveryMs: 3_600_000 }))
  for (let i = 0; i < 10; i++) bl.push(event({ ts: T0 + i * 3_600_000 }))  // 0..9 h
  await bl.flush()
  now = T0 + DAY_MS + 5 * 3_600_000 + 1   // rows at 0..5 h are now older than a day
  bl.runRetention()
  t.ok(await until(() => bl.stats.retentionDeleted === 6, 5000))
  t.equal(count(db), 4)
  await bl.close()
  db.close()
})

t.test('retention through the writer warns when the last hour alone is over maxBytes, and keeps it', async t => {
  const { path, db } = freshDb()
  const { log, lines } = memoryLog()
  const bl = await BlockLog.open(options(path, { log, now: () => T0, retention: { days: 90, maxRows: 0, maxBytes: 4096 }, retentionEveryMs: 3_600_000 }))
  for (let i = 0; i < 10; i++) bl.push(event({ ts: T0 - i * 60_000 }))
  await bl.flush()
  bl.runRetention()
  t.ok(await until(() => lines().some(l => String(l.msg).startsWith('block log over store.retention.maxBytes') && Number(l.overBytes) > 0 && l.maxBytes === 4096), 5000), 'warned, with the bytes over')
  t.equal(count(db), 10, 'the last hour kept')
  t.equal(bl.stats.retentionDeleted, 0)
  await bl.close()
  db.close()
})

t.test('a corrupt file is moved aside and a fresh one created', async t => {
  const path = tempDbPath()
  writeFileSync(path, 'this is not a database '.repeat(500))
  const moved: string[] = []
  const db = openDatabase(path, { onMovedAside: (_from, to) => moved.push(to) })
  t.equal(moved.length, 1)
  t.ok(readdirSync(dirname(path)).some(f => f.startsWith('egressd.sqlite.corrupt-')))
  t.equal(schemaVersion(db), MIGRATIONS[MIGRATIONS.length - 1].version)
  db.close()
})

t.test('a newer schema is refused with a clear message; migrations are recorded', async t => {
  const { path, db } = freshDb()
  const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all()
  t.same(rows, MIGRATIONS.map(m => ({ version: m.version, name: m.name })))
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('from the future')
  db.close()
  t.throws(() => openDatabase(path), { code: 'EGRESSD_ERR_STORE_NEWER_SCHEMA', message: /schema version 999 is newer than this egressd understands/ })
})

t.test('DNS first: while the DNS thread needs its whole core and the writer shares it, batches are held; they go once DNS has room', async t => {
  const { path, db } = freshDb()
  const { log, lines } = memoryLog()
  const bl = await BlockLog.open(options(path, { queueMax: 2000, batchMs: 50, threadNice: 19, dropWarnEveryMs: 200, log }))
  const tid = bl.priority?.tid
  if (tid === undefined) throw new Error(`no writer thread id: ${JSON.stringify(bl.priority)}`)
  // This thread plays DNS: it and the writer share CPU 0 (this file's process only; put back below).
  const cpus = execFileSync('taskset', ['-p', '-c', String(process.pid)], { encoding: 'utf8' }).trim().split(': ').pop() as string
  t.teardown(() => { execFileSync('taskset', ['-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' }) })
  for (const id of [process.pid, tid]) execFileSync('taskset', ['-p', '-c', '0', String(id)], { stdio: 'ignore' })
  let ts = T0
  const push = (n: number): void => { for (let i = 0; i < n; i++) bl.push(event({ ts: ts++, qname: `d${ts}.example` })) }
  // A saturated DNS thread: busy 45 ms of every ~46, pushing events as it goes; 3 s, or until held
  // and warned of drops (at most 10 s: the writer's first writes next to it are slow).
  let heldSeen = false
  const start = Date.now()
  const warned = (): boolean => lines().some(l => l.msg === 'block log queue full: events dropped' && l.cause === 'DNS saturated: the writer is held while DNS needs its core')
  while (Date.now() < start + 3000 || (!(heldSeen && warned()) && Date.now() < start + 10_000)) {
    const until = performance.now() + 45
    while (performance.now() < until) push(1)
    heldSeen ||= bl.stats.heldForDns
    await new Promise(resolve => setImmediate(resolve))
  }
  const during = bl.stats
  t.ok(heldSeen, 'batches were held while DNS needed its core')
  t.ok(during.dropped > 0, `beyond the bound, dropped: ${during.dropped}`)
  t.ok(warned(), 'the warning says DNS was saturated')
  // DNS idle again: the held events are written.
  t.ok(await until(() => !bl.stats.heldForDns && bl.stats.depth === 0, 10_000), 'released and drained once DNS had room')
  await bl.close()
  t.equal(count(db) + bl.stats.dropped, ts - T0, 'every event written or counted as dropped')
  db.close()
})

t.test('DNS first: a held writer that no longer shares the busy DNS thread\'s core is found out and released within seconds, while DNS stays busy', async t => {
  const { path, db } = freshDb()
  const { log } = memoryLog()
  const bl = await BlockLog.open(options(path, { queueMax: 2000, batchMs: 50, threadNice: 19, dropWarnEveryMs: 200, log }))
  const tid = bl.priority?.tid
  if (tid === undefined) throw new Error(`no writer thread id: ${JSON.stringify(bl.priority)}`)
  // This thread plays DNS on CPU 0; the writer starts next to it (this file's process only; put back below).
  const cpus = execFileSync('taskset', ['-p', '-c', String(process.pid)], { encoding: 'utf8' }).trim().split(': ').pop() as string
  t.teardown(() => { execFileSync('taskset', ['-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' }) })
  for (const id of [process.pid, tid]) execFileSync('taskset', ['-p', '-c', '0', String(id)], { stdio: 'ignore' })
  let ts = T0
  // A saturated DNS thread: busy 45 ms of every ~46, pushing one event every 0.5 ms as it goes
  // (~2,000 events/s: a rate the writer keeps up with on a core of its own). Spins for at most `ms`,
  // until `stop()` holds (checked between slices); says whether it did.
  const spin = async (ms: number, stop: () => boolean = () => false): Promise<boolean> => {
    const end = Date.now() + ms
    while (Date.now() < end) {
      const start = performance.now()
      let pushed = 0
      for (let now = start; now < start + 45; now = performance.now()) {
        while (pushed < (now - start) / 0.5) { bl.push(event({ ts: ts++, qname: `r${ts}.example` })); pushed++ }
      }
      await new Promise(resolve => setImmediate(resolve))
      if (stop()) return true
    }
    return stop()
  }
  // Held, with no write in flight (one in flight when the writer moves would end on the new core and
  // measure it: the frozen estimate is the case where nothing is written any more).
  t.ok(await spin(10_000, () => bl.stats.heldForDns && bl.stats.dropped > 0 && bl.stats.inflightMs === 0),
    'held while the writer shares the busy DNS thread\'s core; beyond queueMax, drops')
  const before = bl.stats
  // The competition ends: the scheduler moves the writer to CPU 1. DNS stays busy on CPU 0. (Other
  // tests share this machine: at nice 0 their work on CPU 1 does not starve the writer there.)
  execFileSync('taskset', ['-p', '-c', '1', String(tid)], { stdio: 'ignore' })
  setPriority(tid, 0)
  const moved = performance.now()
  const released = await spin(5000, () => !bl.stats.heldForDns)
  const atRelease = bl.stats
  t.ok(released, `released ${Math.round(performance.now() - moved)} ms after the writer got a core of its own (dropped before: ${before.dropped}, by the release: ${atRelease.dropped})`)
  // DNS still busy: the writer keeps up, not held again, nothing more dropped.
  await spin(2000)
  const after = bl.stats
  t.notOk(after.heldForDns, 'not held again while the writer has its own core')
  t.equal(after.dropped, atRelease.dropped, `no drops after the release (the writer since: ${Math.round(after.writer.busyMs - atRelease.writer.busyMs)} ms in writes, ` +
    `${Math.round(after.writer.cpuWaitMs - atRelease.writer.cpuWaitMs)} ms of it waiting for a CPU)`)
  t.ok(after.written >= atRelease.written + 2000, `written while DNS stayed busy: ${after.written - atRelease.written} (depth now ${after.depth})`)
  await bl.close()
  t.equal(count(db) + bl.stats.dropped, ts - T0, 'every event written or counted as dropped')
  db.close()
})
