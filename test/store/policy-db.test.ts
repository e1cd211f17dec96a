// The policy's own file (src/store/policy-db.ts, salvage.ts): rows of the block log's old tables
// move over on the first start, ids kept, and the block log drops its copies only once they are
// moved; a damaged policy file is read row by row around its unreadable pages, and what is lost is
// recorded (not forgotten at the next start); a policy file gone missing after the move is a loss.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { AuditLog } from '../../src/store/audit.js'
import { CategoryOverrideStore } from '../../src/store/category-overrides.js'
import { migrate, openDatabase, schemaVersion, type Db } from '../../src/store/db.js'
import { MIGRATIONS, POLICY_MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js'
import { openPolicyStore, readLosses } from '../../src/store/policy-db.js'
import { RuleStore } from '../../src/store/rules.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLog } from './helpers.js'

/** better-sqlite3 read-only opens (named, so the house check for focused tests, which looks for "only" followed by a colon and true, does not mistake them for one). */
const READ_ONLY = true

const rule = (r: string, at = 1_000) => ({ kind: 'block' as const, rule: r, comment: '', createdAt: at, createdBy: 'admin', expiresAt: null })
const entry = (action: string, target: string, ts = 1_000) => ({ ts, actor: 'admin', client: '10.0.0.9', action, target, before: null, after: { n: 1 } })

/** A block log as egressd wrote it before the policy had its own file (schema version 4). */
function oldBlockLog (dir: string): string {
  const path = join(dir, 'egressd.sqlite')
  const db = openDatabase(path, { migrations: MIGRATIONS.filter(m => m.version <= 4) })
  const rules = new RuleStore(db)
  rules.add(rule('one.example'))
  const two = rules.add(rule('two.example'))
  const three = rules.add(rule('three.example'))
  rules.remove(three.id) // the highest id, deleted: reused by the old schema, named by the audit
  new CategoryOverrideStore(db).set('*', 'telegram', { action: 'refused' }, 1_000, 'admin')
  const audit = new AuditLog(db)
  audit.record(entry('rule.add', 'rule 1'))
  audit.record(entry('rule.add', `rule ${two.id}`))
  audit.record(entry('rule.add', `rule ${three.id}`))
  audit.record(entry('rule.delete', `rule ${three.id}`))
  db.close()
  return path
}

const openPolicy = (dir: string, blockLogPath?: string, o: { busyTimeoutMs?: number, at?: string } = {}) => {
  const { log, lines } = memoryLog()
  const opened = openPolicyStore({ path: join(dir, 'policy.sqlite'), blockLogPath, log, busyTimeoutMs: o.busyTimeoutMs, now: () => Date.parse(o.at ?? '2030-01-02T03:04:05Z') })
  return { ...opened, lines }
}

const count = (file: string, table: string): number => {
  const db = new Database(file, { readonly: READ_ONLY, fileMustExist: true })
  try { return (db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n } finally { db.close() }
}
const tablesOf = (file: string): string[] => {
  const db = new Database(file, { readonly: READ_ONLY, fileMustExist: true })
  try { return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map(r => r.name) } finally { db.close() }
}
/** The file descriptors of this process open on `file` (a connection left open holds one). */
const fdsOn = (file: string): number => readdirSync('/proc/self/fd').filter(fd => {
  try { return readlinkSync(join('/proc/self/fd', fd)) === file } catch { return false }
}).length

function damagePage (file: string, page: number): void {
  const db = new Database(file, { readonly: READ_ONLY })
  const size = db.pragma('page_size', { simple: true }) as number
  db.close()
  const fd = openSync(file, 'r+')
  try { writeSync(fd, randomBytes(size), 0, size, (page - 1) * size) } finally { closeSync(fd) }
}

t.test('the first start moves the rows out of the block log, ids kept; the block log then drops its tables', async t => {
  const dir = tempDir('egressd-policy-move-')
  const logPath = oldBlockLog(dir)
  const p = openPolicy(dir, logPath)
  const db = p.db as Db
  t.ok(db !== undefined, p.error ?? 'the policy store opens')
  t.same(new RuleStore(db).list().map(r => [r.id, r.rule]), [[1, 'one.example'], [2, 'two.example']])
  t.same(new CategoryOverrideStore(db).all(), { '*': { telegram: { action: 'refused' } } })
  t.same(new AuditLog(db).list().map(e => [e.id, e.target]), [[4, 'rule 3'], [3, 'rule 3'], [2, 'rule 2'], [1, 'rule 1']])
  t.equal(new RuleStore(db).add(rule('four.example')).id, 4, 'rule 3 (deleted, named by the audit) is not given again')
  t.equal(new AuditLog(db).record(entry('x', 'y')).id, 5)
  t.same(readLosses(db), [])
  t.ok(p.lines().some(l => l.msg === 'custom rules, category overrides and audit log moved from the block log to their own file'))
  db.close()

  const log = openDatabase(logPath)
  t.equal(schemaVersion(log), SCHEMA_VERSION, 'every migration of the block log applied (5 dropped the tables)')
  const tables = (log.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map(r => r.name)
  t.notOk(tables.includes('rules') || tables.includes('audit') || tables.includes('category_overrides'), `block log tables: ${tables.join(', ')}`)
  log.close()

  // The next start finds nothing to move and keeps what is there.
  const again = openPolicy(dir, logPath)
  t.same(new RuleStore(again.db as Db).list().map(r => r.id), [1, 2, 4])
  again.db?.close()
})

t.test('the block log keeps its policy rows until they are moved: migration 5 refuses, nothing is dropped', async t => {
  const dir = tempDir('egressd-policy-refuse-')
  const logPath = oldBlockLog(dir)
  t.throws(() => openDatabase(logPath), { code: 'EGRESSD_ERR_STORE', message: /still holds custom rules/ })
  const db = new Database(logPath, { readonly: READ_ONLY })
  t.equal((db.prepare('SELECT count(*) AS n FROM rules').get() as { n: number }).n, 2, 'the rows are still there')
  t.equal(schemaVersion(db), 4)
  db.close()
  // A policy file that cannot be created (a directory in its place): the daemon keeps them there too.
  mkdirSync(join(dir, 'policy.sqlite'))
  const p = openPolicy(dir, logPath)
  t.equal(p.db, undefined)
  t.match(p.error, /policy\.sqlite/)
  t.ok(p.lines().some(l => l.level === 50 && /POLICY STORE UNAVAILABLE/.test(String(l.msg))))
  t.throws(() => openDatabase(logPath), { message: /still holds custom rules/ })
})

t.test('a damaged leaf of the audit table: the rows around it are salvaged, the loss recorded with the ids', async t => {
  const dir = tempDir('egressd-policy-salvage-')
  const path = join(dir, 'policy.sqlite')
  const db = openDatabase(path, { migrations: POLICY_MIGRATIONS })
  const audit = new AuditLog(db)
  db.transaction(() => { for (let i = 1; i <= 3000; i++) audit.record(entry('rule.add', `rule ${i}`, i)) })()
  new RuleStore(db).add(rule('kept.example'))
  const leaves = db.prepare("SELECT pageno FROM dbstat WHERE name = 'audit' AND pagetype = 'leaf' ORDER BY pageno").all() as Array<{ pageno: number }>
  t.ok(leaves.length > 10, `${leaves.length} leaves`)
  const victim = leaves[Math.floor(leaves.length / 2)].pageno
  db.close()
  damagePage(path, victim)

  const p = openPolicy(dir)
  const fresh = p.db as Db
  t.ok(fresh !== undefined, p.error ?? 'the policy store opens')
  const ids = new AuditLog(fresh).list({ limit: 5000 }).map(e => e.id).sort((a, b) => a - b)
  const lost = 3000 - ids.length
  t.ok(lost > 0 && lost < 100, `one page of rows lost (${lost}), the rest salvaged`)
  t.equal(ids[0], 1)
  t.equal(ids[ids.length - 1], 3000, 'the rows after the damaged page were read too')
  t.same(new RuleStore(fresh).list().map(r => r.rule), ['kept.example'])
  const losses = readLosses(fresh)
  t.equal(losses.length, 1)
  t.match(losses[0], /audit: rows from the row after id \d+ up to id \d+ could not be read/)
  t.match(losses[0], /policy\.sqlite\.corrupt-/, 'names the file kept aside')
  t.ok(readdirSync(dir).some(f => f.startsWith('policy.sqlite.corrupt-')))
  t.ok(new AuditLog(fresh).record(entry('x', 'y')).id > 3000, 'ids of lost rows are not given again')
  t.ok(p.lines().some(l => l.level === 50 && /POLICY INCOMPLETE/.test(String(l.msg))))
  fresh.close()

  // The loss stays recorded at the next start (the fresh file is healthy).
  const again = openPolicy(dir)
  t.same(readLosses(again.db as Db), losses)
  again.db?.close()
})

t.test('a policy file gone missing after the move is a loss, not a fresh start', async t => {
  const dir = tempDir('egressd-policy-missing-')
  const logPath = oldBlockLog(dir)
  openPolicy(dir, logPath).db?.close()
  openDatabase(logPath).close() // the block log's migration 5
  for (const f of readdirSync(dir)) if (f.startsWith('policy.sqlite')) rmSync(join(dir, f))
  t.notOk(existsSync(join(dir, 'policy.sqlite')))
  const p = openPolicy(dir, logPath)
  t.match(readLosses(p.db as Db), [/policy\.sqlite was missing, although .*egressd\.sqlite says the policy had been moved there/])
  p.db?.close()
  // A data dir that never had a policy (a first install) has nothing to miss.
  const fresh = openPolicy(tempDir('egressd-policy-new-'), join(tempDir('egressd-policy-new-'), 'egressd.sqlite'))
  t.same(readLosses(fresh.db as Db), [])
  fresh.db?.close()
})

t.test('a delete in the block log that fails after the copy (the file locked): a warning, the policy and the block log both work', async t => {
  const dir = tempDir('egressd-policy-delete-fails-')
  const logPath = oldBlockLog(dir)
  const policy = join(dir, 'policy.sqlite')
  const locker = new Database(logPath)
  locker.exec('BEGIN IMMEDIATE') // another writer holds the block log: the DELETE gets SQLITE_BUSY
  const p = openPolicy(dir, logPath, { busyTimeoutMs: 50 })
  locker.exec('ROLLBACK')
  locker.close()
  t.ok(p.db !== undefined, p.error ?? 'the policy store opens')
  t.notOk(p.lines().some(l => /POLICY STORE UNAVAILABLE/.test(String(l.msg))))
  t.ok(p.lines().some(l => l.level === 40 && /deleting them from the block log failed/.test(String(l.msg))), 'a warning')
  t.same(new RuleStore(p.db as Db).list().map(r => r.id), [1, 2], 'the rows are served from the policy file')
  t.same(readLosses(p.db as Db), [])
  p.db?.close()
  t.equal(count(logPath, 'rules'), 2, 'the rows are still in the block log')
  // The block log opens: its migration 5 sees the policy file's record of the copy and drops them.
  const log = openDatabase(logPath, { policyPath: policy })
  t.equal(schemaVersion(log), SCHEMA_VERSION, 'every migration of the block log applied (5 dropped the tables)')
  log.close()
  t.notOk(tablesOf(logPath).includes('rules'))
  // The next start finds nothing left, clears the pending delete and changes nothing else.
  const again = openPolicy(dir, logPath)
  t.same(new RuleStore(again.db as Db).list().map(r => r.id), [1, 2])
  t.equal(new AuditLog(again.db as Db).list().length, 4)
  t.match(JSON.parse((again.db?.prepare("SELECT value FROM meta WHERE key = 'moved_from_block_log'").get() as { value: string }).value), { deletePending: false })
  again.db?.close()
})

t.test('a failed delete is retried at the next start: nothing duplicated, nothing deleted since comes back', async t => {
  const dir = tempDir('egressd-policy-delete-retry-')
  const logPath = oldBlockLog(dir)
  const locker = new Database(logPath)
  locker.exec('BEGIN IMMEDIATE')
  const p = openPolicy(dir, logPath, { busyTimeoutMs: 50 })
  locker.exec('ROLLBACK')
  locker.close()
  const db = p.db as Db
  t.ok(db !== undefined, p.error ?? 'the policy store opens')
  new RuleStore(db).remove(1) // an admin deletes a rule meanwhile
  db.close()
  const again = openPolicy(dir, logPath)
  t.same(new RuleStore(again.db as Db).list().map(r => r.id), [2], 'rule 1 stays deleted')
  t.equal(new AuditLog(again.db as Db).list().length, 4, 'no audit row twice')
  again.db?.close()
  t.equal(count(logPath, 'rules'), 0, 'the retried delete emptied the block log\'s table')
  t.equal(count(logPath, 'audit'), 0)
  const log = openDatabase(logPath) // migration 5, without needing the record
  t.equal(schemaVersion(log), SCHEMA_VERSION, 'every migration of the block log applied (5 dropped the tables)')
  log.close()
})

t.test('a policy store that fails after opening closes its file', async t => {
  const dir = tempDir('egressd-policy-close-')
  const path = join(dir, 'policy.sqlite')
  const db = openDatabase(path, { migrations: POLICY_MIGRATIONS })
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('from a newer egressd')
  db.close()
  const p = openPolicy(dir)
  t.equal(p.db, undefined)
  t.match(p.error, /newer than this egressd understands/)
  t.equal(fdsOn(path), 0, 'no connection left open on the file')
})

t.test('a block log restored from a backup made before the move: nothing merged, stale tables renamed aside, the admin told', async t => {
  const dir = tempDir('egressd-policy-stale-')
  const logPath = oldBlockLog(dir)
  const policy = join(dir, 'policy.sqlite')
  const backup = join(dir, 'backup.sqlite')
  copyFileSync(logPath, backup)
  const p = openPolicy(dir, logPath)
  const db = p.db as Db
  t.ok(db !== undefined, p.error ?? 'the policy store opens')
  const rules = new RuleStore(db)
  rules.remove(1)
  rules.remove(2)
  db.close()
  openDatabase(logPath, { policyPath: policy }).close()
  for (const f of readdirSync(dir)) if (f.startsWith('egressd.sqlite')) rmSync(join(dir, f))
  copyFileSync(backup, logPath) // the block log restored from the backup

  const again = openPolicy(dir, logPath, { at: '2030-02-03T04:05:06.789Z' })
  const adb = again.db as Db
  t.ok(adb !== undefined, again.error ?? 'the policy store opens again')
  t.same(new RuleStore(adb).list(), [], 'the deleted rules did not come back')
  t.equal(new AuditLog(adb).list().length, 4, 'no audit row added or merged')
  const losses = readLosses(adb)
  t.equal(losses.length, 1, 'recorded for the status')
  t.match(losses[0], /egressd\.sqlite holds 7 custom rule.*backup made before the move.*not merged.*stale_rules_20300203T040506Z/)
  const warn = again.lines().find(l => l.level === 40 && /STALE POLICY TABLES/.test(String(l.msg)))
  t.ok(warn !== undefined, 'logged')
  t.same(warn?.tables, ['stale_rules_20300203T040506Z', 'stale_category_overrides_20300203T040506Z', 'stale_audit_20300203T040506Z'])
  adb.close()
  t.equal(count(logPath, 'stale_rules_20300203T040506Z'), 2, 'the stale rows are kept for a look')
  // The block log works again (migration 5), and a further start adds nothing.
  const log = openDatabase(logPath, { policyPath: policy })
  t.equal(schemaVersion(log), SCHEMA_VERSION, 'every migration of the block log applied (5 dropped the tables)')
  log.close()
  const third = openPolicy(dir, logPath)
  t.same(new RuleStore(third.db as Db).list(), [])
  t.equal(readLosses(third.db as Db).length, 1)
  third.db?.close()
})

t.test('a damaged policy file is kept aside byte for byte as it was found', async t => {
  const dir = tempDir('egressd-policy-forensic-')
  const path = join(dir, 'policy.sqlite')
  const db = new Database(path) // rollback journal: opening it read-write for WAL would rewrite its header
  migrate(db, POLICY_MIGRATIONS)
  const audit = new AuditLog(db)
  db.transaction(() => { for (let i = 1; i <= 2000; i++) audit.record(entry('rule.add', `rule ${i}`, i)) })()
  const leaves = db.prepare("SELECT pageno FROM dbstat WHERE name = 'audit' AND pagetype = 'leaf' ORDER BY pageno").all() as Array<{ pageno: number }>
  db.close()
  damagePage(path, leaves[3].pageno)
  const damaged = readFileSync(path)
  const p = openPolicy(dir)
  t.ok(p.db !== undefined, p.error ?? 'the policy store opens')
  p.db?.close()
  const aside = readdirSync(dir).filter(f => f.startsWith('policy.sqlite.corrupt-') && !f.endsWith('-wal') && !f.endsWith('-shm'))
  t.equal(aside.length, 1, aside.join(', '))
  t.ok(readFileSync(join(dir, aside[0])).equals(damaged), 'unchanged')
})
