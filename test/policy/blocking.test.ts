// Blocking end to end: dig against the daemon, a real dnsmasq upstream serving the names, and a
// small blocklists folder made by the test (the bundled lists have their own test).

import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon, testConfig } from '../helpers/daemon.js'
import { dig, type DigResult } from '../helpers/dig.js'
import { tempDir } from '../helpers/tmp.js'

const upstream = await startDnsmasq({
  lines: [
    'host-record=blocked.test,192.0.2.30',
    'host-record=deep.sub.blocked.test,192.0.2.31',
    'host-record=allowed.blocked.test,192.0.2.32',
    'host-record=notblocked.test,192.0.2.33',
    'host-record=web.blocked.test,192.0.2.34',
    'cname=cdn.test,web.blocked.test',
    'cname=cdn2.test,web.blocked.test',
    'host-record=tg.test,149.154.167.51',
    'host-record=tg6.test,2001:67c:4e8:f004::a',
    'host-record=off.test,192.0.2.35',
    'host-record=trial.test,192.0.2.36',
    'host-record=exact.test,192.0.2.37',
    'host-record=www.exact.test,192.0.2.38',
    // HTTPS record whose ipv4hint points into the Telegram range
    'dns-rr=svc.test,65,00010000040004959AA733'
  ]
})
t.teardown(() => upstream.stop())

function category (root: string, name: string, meta: { enabled: boolean, policyRef?: string }, domains: string, cidrs?: string): void {
  mkdirSync(join(root, name))
  writeFileSync(join(root, name, 'meta.yaml'), `title: ${name}\ndescription: test\npolicyRef: "${meta.policyRef ?? 'test-ref'}"\nenabled: ${meta.enabled}\nlastReviewed: 2026-11-22\nsources: []\nmustNotBlock: []\n`)
  writeFileSync(join(root, name, 'domains.txt'), domains)
  if (cidrs !== undefined) writeFileSync(join(root, name, 'cidrs.txt'), cidrs)
}

const lists = tempDir('egressd-lists-')
category(lists, 'messenger', { enabled: true, policyRef: '149-FZ art.10' }, '# test list\nblocked.test\n=exact.test\n', '149.154.160.0/20\n2001:67c:4e8::/48\n')
category(lists, 'trial', { enabled: true }, 'trial.test\n')
category(lists, 'off', { enabled: false }, 'off.test\n')

const base = {
  upstreams: [upstream.url],
  // These tests count upstream queries; learning would add its background resolutions of blocked names.
  learning: { enabled: false },
  blocklists: {
    dir: lists,
    categories: { trial: { action: 'monitor' } },
    rules: { allow: ['allowed.blocked.test', '=cdn2.test'] },
    groups: [{ name: 'soc', clients: ['127.0.0.2'], exempt: true }]
  }
}

const blocked = (t: Test, r: DigResult, category: string, label: string): void => {
  t.equal(r.status, 'NXDOMAIN', `${label}: NXDOMAIN`)
  t.match(r.ede ?? '', new RegExp(`15 \\(Blocked\\).*${category}`), `${label}: EDE 15 names ${category}`)
  t.equal(r.authority[0]?.type, 'SOA', `${label}: SOA for negative caching`)
  t.equal(r.authority[0]?.ttl, 60, `${label}: block TTL`)
}
const answered = (t: Test, r: DigResult, data: string, label: string): void => {
  t.equal(r.status, 'NOERROR', `${label}: NOERROR`)
  t.same(r.answers.map(a => a.data).slice(-1), [data], `${label}: the real answer`)
  t.equal(r.ede, undefined, `${label}: no EDE`)
}

t.test('names, CNAME chains, addresses and HTTPS hints are blocked; look-alikes, allow rules and exempt clients are not', async t => {
  const d = await startTestDaemon(base)
  t.teardown(() => d.close())
  const q = (name: string, ...more: string[]): Promise<DigResult> => dig([`@${d.host}`, '-p', String(d.port), name, ...more])

  blocked(t, await q('blocked.test'), 'messenger', 'apex')
  const deep = await q('Deep.Sub.BLOCKED.test.', 'AAAA')
  blocked(t, deep, 'messenger', 'deep subdomain, mixed case, trailing dot')
  t.match(deep.ede ?? '', /149-FZ art\.10/, 'EDE text carries the policy reference')
  blocked(t, await q('+tcp', 'blocked.test'), 'messenger', 'over TCP')
  answered(t, await q('notblocked.test'), '192.0.2.33', 'look-alike notblocked.test')
  const other = await q('blocked.test.example.test')
  t.equal(other.ede, undefined, 'blocked.test.example.test is not blocked (upstream says NXDOMAIN itself)')

  blocked(t, await q('exact.test'), 'messenger', 'exact rule')
  answered(t, await q('www.exact.test'), '192.0.2.38', 'exact rule does not cover subdomains')

  blocked(t, await q('cdn.test'), 'messenger', 'CNAME from an allowed name to a blocked one')
  blocked(t, await q('tg.test'), 'messenger', 'A record inside a blocked CIDR')
  blocked(t, await q('tg6.test', 'AAAA'), 'messenger', 'AAAA record inside a blocked CIDR')
  blocked(t, await q('svc.test', 'TYPE65'), 'messenger', 'HTTPS ipv4hint inside a blocked CIDR')

  answered(t, await q('allowed.blocked.test'), '192.0.2.32', 'allow rule overrides the block')
  answered(t, await q('cdn2.test'), '192.0.2.34', 'an allowed name keeps its whole answer (CNAME into a blocked name)')
  answered(t, await q('off.test'), '192.0.2.35', 'disabled category')
  answered(t, await q('trial.test'), '192.0.2.36', 'monitor category answers normally')
  t.equal(d.daemon.metrics.monitoredByCategory.get('trial'), 1, 'the monitor match is counted')

  answered(t, await q('-b', '127.0.0.2', 'blocked.test'), '192.0.2.30', 'exempt group gets the real answer')
  answered(t, await q('-b', '127.0.0.2', 'tg.test'), '149.154.167.51', 'exempt group: answer inspection skipped too')

  t.equal(d.daemon.metrics.blockedByCategory.get('messenger'), 8)
  const logged = d.logs().filter(l => l.msg === 'blocked')
  t.equal(logged.length, 8, 'one log line per block')
  t.match(logged.find(l => l.qname === 'cdn.test'), { category: 'messenger', matched: 'cname', value: 'web.blocked.test', rule: 'blocked.test', line: 2 })
  t.match(logged.find(l => l.qname === 'tg.test'), { matched: 'address', value: '149.154.167.51', rule: '149.154.160.0/20' })
})

t.test('block actions: refused, nodata, null, sinkhole; per-category override; block TTL', async t => {
  const cases: Array<[string, Record<string, unknown>, (r: DigResult, r6: DigResult, mx: DigResult) => void]> = [
    ['refused', { action: 'refused' }, r => { t.equal(r.status, 'REFUSED'); t.match(r.ede ?? '', /Blocked/) }],
    ['nodata', { action: 'nodata', blockTtl: 300 }, r => { t.equal(r.status, 'NOERROR'); t.same(r.answers, []); t.equal(r.authority[0].ttl, 300) }],
    ['null', { action: 'null' }, (r, r6, mx) => {
      t.same(r.answers.map(a => a.data), ['0.0.0.0'])
      t.same(r6.answers.map(a => a.data), ['::'])
      t.equal(mx.status, 'NOERROR'); t.same(mx.answers, [], 'other types: NODATA')
    }],
    ['sinkhole', { action: 'sinkhole', sinkhole: { ipv4: '192.0.2.250', ipv6: '2001:db8::250' } }, (r, r6) => {
      t.same(r.answers.map(a => `${a.ttl} ${a.data}`), ['60 192.0.2.250'])
      t.same(r6.answers.map(a => a.data), ['2001:db8::250'])
    }],
    ['category override', { action: 'refused', categories: { trial: { action: 'monitor' }, messenger: { action: 'nodata' } } }, r => { t.equal(r.status, 'NOERROR'); t.same(r.answers, []) }]
  ]
  for (const [label, blocklists, check] of cases) {
    const d = await startTestDaemon({ ...base, blocklists: { ...base.blocklists, ...blocklists } })
    const at = [`@${d.host}`, '-p', String(d.port)]
    const [r, r6, mx] = await Promise.all([dig([...at, 'blocked.test']), dig([...at, 'blocked.test', 'AAAA']), dig([...at, 'blocked.test', 'MX'])])
    t.test(label, async () => check(r, r6, mx))
    await d.close()
  }
})

t.test('a reload with new lists applies at once, also to answers already in the cache', async t => {
  const d = await startTestDaemon(base)
  t.teardown(() => d.close())
  const at = [`@${d.host}`, '-p', String(d.port)]
  answered(t, await dig([...at, 'notblocked.test']), '192.0.2.33', 'before')
  answered(t, await dig([...at, 'allowed.blocked.test']), '192.0.2.32', 'allowed before')
  answered(t, await dig([...at, 'off.test']), '192.0.2.35', 'disabled category before')
  // New rules: the address of the cached answer is blocked, the allow rule is gone, and the
  // category of the cached off.test is switched on.
  d.daemon.reload(testConfig({ ...base, blocklists: { ...base.blocklists, categories: { ...base.blocklists.categories, off: { enabled: true } }, rules: { block: ['192.0.2.33/32'], allow: [] } } }))
  const hitsBefore = d.daemon.cache.stats.hits
  const r = await dig([...at, 'notblocked.test'])
  t.equal(r.status, 'NXDOMAIN', 'the cached answer is inspected under the new lists')
  t.match(r.ede ?? '', /custom is blocked/)
  t.equal(d.daemon.cache.stats.hits, hitsBefore + 1, 'it was a cache hit, turned into a block')
  t.equal(d.daemon.pool.health()[0].queries, 3, 'no new upstream query was needed (3 names asked before the reload)')
  blocked(t, await dig([...at, 'allowed.blocked.test']), 'messenger', 'allow rule removed')
  const hits = d.daemon.cache.stats.hits
  blocked(t, await dig([...at, 'off.test']), 'off', 'a cached name whose category was switched on')
  t.equal(d.daemon.cache.stats.hits, hits + 1, 'decided on the cache hit, without asking upstream')
})

t.test('lists that cannot load stop the start with every problem named; bad lines are skipped and reported', async t => {
  const broken = tempDir('egressd-lists-')
  category(broken, 'empty', { enabled: true }, '# nothing\nnot a name\n')
  category(broken, 'ok', { enabled: true }, 'ok.test\nbad..name\n-\n')
  await t.rejects(startTestDaemon({ ...base, blocklists: { dir: broken, categories: { nosuch: { enabled: true } } } }), {
    code: 'EGRESSD_ERR_POLICY_INVALID',
    message: /empty\/domains\.txt: no valid entry[\s\S]*blocklists\.categories\.nosuch: no such category/
  })
  const good = tempDir('egressd-lists-')
  category(good, 'ok', { enabled: true }, 'ok.test\nbad..name\n')
  const d = await startTestDaemon({ ...base, blocklists: { dir: good } })
  t.teardown(() => d.close())
  const warn = d.logs().find(l => typeof l.msg === 'string' && l.msg.includes('domains.txt:2:'))
  t.ok(warn, 'the bad line is logged with file:line')
})

t.test('a reload that cannot be applied leaves everything as it was', async t => {
  const d = await startTestDaemon(base)
  t.teardown(() => d.close())
  const before = d.daemon.config
  const bad = testConfig({ ...base, upstreams: [{ url: 'tls://127.0.0.1:853', caFile: '/nonexistent/ca.pem' }], blocklists: { ...base.blocklists, rules: { block: ['notblocked.test'], allow: [] } } })
  t.throws(() => d.daemon.reload(bad), /ENOENT/)
  t.equal(d.daemon.config, before, 'the running config is unchanged')
  answered(t, await dig([`@${d.host}`, '-p', String(d.port), 'notblocked.test']), '192.0.2.33', 'old lists and upstream still serve')
})
