// One damaged page must not weaken the policy. A daemon with a custom block rule, a category
// override and audit rows is stopped, one page of a database file is overwritten with random bytes,
// and the daemon starts again on the same data dir:
// - a page of the block log (egressd.sqlite): the rule still blocks (real `dig`), the override and
//   the audit trail are still there, the daemon is ready;
// - an index page of the policy file (policy.sqlite): every row is salvaged, the daemon is ready;
// - the block log replaced by a backup made before the policy had its own file, holding an allow
//   rule deleted since: nothing of it is merged (the rule still blocks), the stale tables are renamed
//   aside, the status says so, and the block log works;
// - the page holding the custom rules: they cannot be recovered, so /readyz is 503 naming `policy`
//   and /api/v1/status says the policy is incomplete and why, loudly logged; DNS still answers and
//   what could be read (override, audit) is still in force; an admin's acknowledgement clears it.

import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openDatabase } from '../../src/store/db.js'
import { MIGRATIONS } from '../../src/store/migrations.js'
import { dig } from '../helpers/dig.js'
import { answeringUpstream, call, startApiDaemon, TOKENS, type ApiDaemon } from '../api/helpers.js'

/** better-sqlite3 read-only opens (named, so the house check for focused tests, which looks for "only" followed by a colon and true, does not mistake them for one). */
const READ_ONLY = true

let upstream: Awaited<ReturnType<typeof answeringUpstream>>
t.before(async () => { upstream = await answeringUpstream() })
t.teardown(() => upstream.close())

const ask = async (d: ApiDaemon, name: string): Promise<string> =>
  (await dig(['@127.0.0.1', '-p', String(d.dnsPort), name, 'A', '+tries=1', '+time=3'])).status

/** The page number of a table's or index's root page, read from the schema of a stopped daemon's file. */
function rootPage (file: string, name: string): number {
  const db = new Database(file, { readonly: READ_ONLY, fileMustExist: true })
  try {
    const r = db.prepare('SELECT rootpage FROM sqlite_master WHERE name = ?').get(name) as { rootpage: number } | undefined
    if (r === undefined) throw new Error(`${file}: no table or index ${name}`)
    return r.rootpage
  } finally {
    db.close()
  }
}

/** Overwrites page `page` (1-based) of `file` with random bytes. */
function damagePage (file: string, page: number): void {
  const db = new Database(file, { readonly: READ_ONLY, fileMustExist: true })
  const size = db.pragma('page_size', { simple: true }) as number
  db.close()
  const fd = openSync(file, 'r+')
  try { writeSync(fd, randomBytes(size), 0, size, (page - 1) * size) } finally { closeSync(fd) }
}

/** A daemon with a custom block rule, a telegram override (refused) and their audit rows; stopped. */
async function preparedDataDir (t: Test): Promise<{ dataDir: string, ruleId: number }> {
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  try {
    const added = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'chat.example.org', comment: 'ticket 7' } })
    t.equal(added.status, 201, added.text)
    const patched = await call(d.base, 'PATCH', '/api/v1/categories/telegram', { token: TOKENS.admin, body: { action: 'refused' } })
    t.equal(patched.status, 200, patched.text)
    t.equal(await ask(d, 'chat.example.org'), 'NXDOMAIN')
    t.equal(await ask(d, 'web.telegram.org'), 'REFUSED')
    return { dataDir: d.dataDir, ruleId: added.json.rule.id }
  } finally {
    await d.close()
  }
}

async function expectPolicyKept (t: Test, d: ApiDaemon, ruleId: number): Promise<void> {
  t.equal(await ask(d, 'chat.example.org'), 'NXDOMAIN', 'the custom rule still blocks')
  t.equal(await ask(d, 'web.telegram.org'), 'REFUSED', 'the category override is still in force')
  const rules = await call(d.base, 'GET', '/api/v1/rules', { token: TOKENS.viewer })
  t.match(rules.json.rules, [{ id: ruleId, rule: 'chat.example.org', comment: 'ticket 7' }])
  const cats = await call(d.base, 'GET', '/api/v1/categories', { token: TOKENS.viewer })
  t.match(cats.json.categories.find((c: { name: string }) => c.name === 'telegram'), { overrides: { '*': { action: 'refused' } } })
  const audit = await call(d.base, 'GET', '/api/v1/audit', { token: TOKENS.admin })
  t.same(audit.json.entries.map((e: { action: string }) => e.action), ['category.update', 'rule.add'], 'the audit trail is intact')
}

t.test('a damaged page of the block log: rules, overrides and audit survive, the daemon is ready', async t => {
  const { dataDir, ruleId } = await preparedDataDir(t)
  const log = join(dataDir, 'egressd.sqlite')
  damagePage(log, rootPage(log, 'events'))
  const d = await startApiDaemon({ upstreams: [upstream.url] }, { dataDir })
  t.teardown(() => d.close())
  t.ok(d.logs().some(l => /STORE DAMAGED/.test(String(l.msg)) && l.level === 50), 'the block log damage is logged')
  await expectPolicyKept(t, d, ruleId)
  t.same((await call(d.base, 'GET', '/readyz')).json, { status: 'ready' })
  const status = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.match(status.json.policy, { customRules: 1, store: { available: true, complete: true, problems: [] } })
})

t.test('a damaged index page of the policy file: every row is salvaged, the daemon is ready', async t => {
  const { dataDir, ruleId } = await preparedDataDir(t)
  const file = join(dataDir, 'policy.sqlite')
  damagePage(file, rootPage(file, 'audit_ts'))
  const d = await startApiDaemon({ upstreams: [upstream.url] }, { dataDir })
  t.teardown(() => d.close())
  await expectPolicyKept(t, d, ruleId)
  t.same((await call(d.base, 'GET', '/readyz')).json, { status: 'ready' })
  t.ok(d.logs().some(l => l.level === 50 && /POLICY STORE DAMAGED/.test(String(l.msg)) && /every row/.test(String(l.msg))), 'logged loudly, saying nothing was lost')
  t.ok(readdirSync(dataDir).some(f => f.startsWith('policy.sqlite.corrupt-')), 'the damaged file is kept aside')
  // Salvaged rows keep their ids, and the next rule gets a new one.
  const next = await call(d.base, 'POST', '/api/v1/rules', { token: TOKENS.admin, body: { rule: 'next.example.org' } })
  t.ok(next.json.rule.id > ruleId, `a new id (${String(next.json.rule.id)})`)
})

t.test('the custom rules cannot be recovered: /readyz 503 naming policy, status says why, DNS answers', async t => {
  const { dataDir } = await preparedDataDir(t)
  const file = join(dataDir, 'policy.sqlite')
  t.ok(existsSync(file), 'the policy has its own file')
  damagePage(file, rootPage(file, 'rules'))
  const d = await startApiDaemon({ upstreams: [upstream.url] }, { dataDir })
  t.teardown(() => d.close())
  t.equal(await ask(d, 'other.example.org'), 'NOERROR', 'DNS answers')
  t.equal(await ask(d, 'web.telegram.org'), 'REFUSED', 'the readable override is in force')
  const ready = await call(d.base, 'GET', '/readyz')
  t.equal(ready.status, 503)
  t.same(ready.json, { status: 'not ready', failing: ['policy'] })
  const status = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.equal(status.json.ready, false)
  t.match(status.json.policy.store, { available: true, complete: false, problems: [/rules/] })
  t.ok(d.logs().some(l => l.level === 50 && /POLICY INCOMPLETE/.test(String(l.msg))), 'logged loudly')
  const audit = await call(d.base, 'GET', '/api/v1/audit', { token: TOKENS.admin })
  t.match(audit.json.entries.map((e: { action: string }) => e.action), ['category.update', 'rule.add'], 'the audit trail was read')

  // Still incomplete after another restart: the loss is recorded, not forgotten.
  await d.close()
  const again = await startApiDaemon({ upstreams: [upstream.url] }, { dataDir })
  t.teardown(() => again.close())
  t.equal((await call(again.base, 'GET', '/readyz')).status, 503, 'still not ready after a restart')
  const viewer = await call(again.base, 'POST', '/api/v1/policy/acknowledge', { token: TOKENS.viewer, body: {} })
  t.equal(viewer.status, 403)
  const ack = await call(again.base, 'POST', '/api/v1/policy/acknowledge', { token: TOKENS.admin, body: {} })
  t.equal(ack.status, 200, ack.text)
  t.match(ack.json.acknowledged, [/rules/])
  t.same((await call(again.base, 'GET', '/readyz')).json, { status: 'ready' }, 'ready once an admin acknowledged the loss')
  const trail = await call(again.base, 'GET', '/api/v1/audit?action=policy.acknowledge', { token: TOKENS.admin })
  t.match(trail.json.entries, [{ actor: 'admin-token', before: { problems: [/rules/] } }])
})

t.test('the first page of the policy file: nothing is readable, not ready, DNS answers with the config\'s policy', async t => {
  const { dataDir } = await preparedDataDir(t)
  damagePage(join(dataDir, 'policy.sqlite'), 1)
  const d = await startApiDaemon({ upstreams: [upstream.url] }, { dataDir })
  t.teardown(() => d.close())
  t.equal(await ask(d, 'web.telegram.org'), 'NXDOMAIN', 'the config\'s policy serves')
  t.equal(await ask(d, 'other.example.org'), 'NOERROR')
  const ready = await call(d.base, 'GET', '/readyz')
  t.same(ready.json, { status: 'not ready', failing: ['policy'] })
  const status = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.match(status.json.policy.store, { complete: false, problems: [/policy\.sqlite/] })
})

t.test('a block log restored from a backup made before the split: no stale rule comes back, the status says so, the block log works', async t => {
  const { dataDir, ruleId } = await preparedDataDir(t)
  const log = join(dataDir, 'egressd.sqlite')
  for (const f of readdirSync(dataDir)) if (f.startsWith('egressd.sqlite')) rmSync(join(dataDir, f))
  // The backup: schema 4, with an allow rule for the name the custom rule blocks (deleted since).
  const old = openDatabase(log, { migrations: MIGRATIONS.filter(m => m.version <= 4) })
  old.prepare("INSERT INTO rules (id, kind, rule, comment, created_at, created_by) VALUES (?, 'allow', 'chat.example.org', '', 1, 'admin')").run(ruleId + 10)
  old.prepare("INSERT INTO audit (id, ts, actor, client, action, target) VALUES (?, 1, 'admin', '', 'rule.add', ?)").run(50, `rule ${ruleId + 10}`)
  old.close()
  const d = await startApiDaemon({ upstreams: [upstream.url] }, { dataDir })
  t.teardown(() => d.close())
  await expectPolicyKept(t, d, ruleId)
  t.ok(d.logs().some(l => l.level === 40 && /STALE POLICY TABLES/.test(String(l.msg))), 'logged')
  const status = await call(d.base, 'GET', '/api/v1/status', { token: TOKENS.viewer })
  t.match(status.json.policy.store, { available: true, complete: false, problems: [/restored from a backup made before the move.*stale_rules_/] })
  t.ok(d.daemon.db !== undefined && d.daemon.blockLog !== undefined, 'the block log is open')
  t.notOk(d.logs().some(l => /STORE UNAVAILABLE|BLOCK LOG DISABLED/.test(String(l.msg))))
})
