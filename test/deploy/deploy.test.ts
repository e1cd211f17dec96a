// deploy/: the Prometheus alert rules, their unit tests and the scrape config pass promtool; the
// Grafana dashboard's expressions are valid PromQL; and every metric (and label) that the
// dashboard, the rules and the rule tests name is one a real egressd exports: a daemon is
// started, queried with dig and scraped. promtool is Debian's `prometheus` package; missing, it is
// a failure (.ci/run installs it).

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import YAML from 'yaml'
import { parseExposition, type Family } from '../api/exposition.js'
import { answeringUpstream, call, startApiDaemon, TOKENS } from '../api/helpers.js'
import { dig } from '../helpers/dig.js'
import { tempDir } from '../helpers/tmp.js'
import { requireTool } from '../helpers/tools.js'

const DEPLOY = resolve('deploy')
const RULES = join(DEPLOY, 'prometheus', 'egressd-alerts.yml')
const RULE_TESTS = join(DEPLOY, 'prometheus', 'egressd-alerts.test.yml')
const SCRAPE = join(DEPLOY, 'prometheus', 'prometheus.yml')
const DASHBOARD = join(DEPLOY, 'grafana', 'egressd.json')

const promtool = requireTool('promtool')
const run = (args: string[], opts: { cwd?: string, input?: string } = {}): { status: number | null, out: string } => {
  const r = spawnSync(promtool, args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

interface Rule { alert?: string, record?: string, expr: string }
const rules = (YAML.parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap(g => g.rules)
interface RuleTest { input_series: Array<{ series: string }>, alert_rule_test?: Array<{ alertname: string, exp_alerts: unknown[] }> }
const ruleTests = (YAML.parse(readFileSync(RULE_TESTS, 'utf8')) as { tests: RuleTest[] }).tests

interface Panel { title?: string, type: string, targets?: Array<{ expr: string }>, panels?: Panel[] }
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string, panels: Panel[], templating: { list: Array<{ name: string, query?: { query: string } | string }> } }
const panels = dashboard.panels.flatMap(p => [p, ...(p.panels ?? [])])
const dashboardExprs = panels.flatMap(p => (p.targets ?? []).map(x => ({ where: `panel "${p.title ?? ''}"`, expr: x.expr })))
/** The dashboard's variables replaced by values Prometheus accepts. */
const concrete = (expr: string): string => expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1h').replaceAll('$job', 'egressd').replaceAll('$instance', '.+')

t.test('promtool check rules: the alert rules are valid', async t => {
  const r = run(['check', 'rules', RULES])
  t.equal(r.status, 0, r.out)
  t.match(r.out, `SUCCESS: ${rules.length} rules found`)
  const alerts = rules.map(x => x.alert)
  for (const a of ['EgressdAllUpstreamsDown', 'EgressdUpstreamDown', 'EgressdListSourceStale', 'EgressdBlockLogDropping', 'EgressdFirewallSyncFailing', 'EgressdBlocksRising',
    'EgressdFirewallElementsFailing', 'EgressdFirewallEvidenceFailing', 'EgressdLearnerDropping']) {
    t.ok(alerts.includes(a), `the issue's alert ${a}`)
  }
})

t.test('promtool test rules: the alerts fire (and stay quiet) as their unit tests say', async t => {
  const r = run(['test', 'rules', RULE_TESTS])
  t.equal(r.status, 0, r.out)
  const firing = new Set(ruleTests.flatMap(x => (x.alert_rule_test ?? []).filter(a => a.exp_alerts.length > 0).map(a => a.alertname)))
  t.ok(firing.size >= 2, `alerts tested firing: ${[...firing].join(', ')}`)
  for (const a of ['EgressdFirewallElementsFailing', 'EgressdFirewallEvidenceFailing', 'EgressdLearnerDropping']) t.ok(firing.has(a), `${a} is tested firing`)

  // The tests bite: with the rise threshold of EgressdBlocksRising raised, they fail.
  const dir = tempDir('egressd-rules-')
  const text = readFileSync(RULES, 'utf8')
  t.ok(text.includes('> 3 * ('), 'the rise threshold is where this test expects it')
  writeFileSync(join(dir, 'egressd-alerts.yml'), text.replace('> 3 * (', '> 30 * ('))
  copyFileSync(RULE_TESTS, join(dir, 'egressd-alerts.test.yml'))
  const broken = run(['test', 'rules', 'egressd-alerts.test.yml'], { cwd: dir })
  t.not(broken.status, 0, 'a rule that no longer fires fails its unit test')
  t.match(broken.out, /EgressdBlocksRising/)
})

t.test('promtool check config: the scrape config, with its token file and rule file', async t => {
  const scrape = YAML.parse(readFileSync(SCRAPE, 'utf8')) as { rule_files: string[], scrape_configs: Array<{ job_name: string, authorization?: { type?: string, credentials?: string, credentials_file?: string } }> }
  const job = scrape.scrape_configs.find(s => s.job_name === 'egressd')
  t.equal(job?.authorization?.type, 'Bearer')
  t.equal(job?.authorization?.credentials, undefined, 'no token in the config itself')
  const tokenFile = job?.authorization?.credentials_file
  t.ok(tokenFile !== undefined, 'the token comes from a file')
  t.ok(rules.some(r => r.alert === 'EgressdDown' && r.expr.includes('job="egressd"')), 'EgressdDown selects the job name of the scrape config')
  t.same(scrape.rule_files, ['egressd-alerts.yml'])

  // promtool reads the token file and the rule files: give it both, the token file where the test can write.
  const dir = tempDir('egressd-prom-')
  writeFileSync(join(dir, 'metrics.token'), `${TOKENS.metrics}\n`)
  writeFileSync(join(dir, 'prometheus.yml'), readFileSync(SCRAPE, 'utf8').replace(tokenFile!, join(dir, 'metrics.token')))
  copyFileSync(RULES, join(dir, 'egressd-alerts.yml'))
  const r = run(['check', 'config', 'prometheus.yml'], { cwd: dir })
  t.equal(r.status, 0, r.out)
  t.match(r.out, /SUCCESS: 1 rule files found/)
})

t.test('the dashboard: every expression is valid PromQL (checked by promtool as recording rules)', async t => {
  t.equal(dashboard.uid, 'egressd')
  t.ok(dashboardExprs.length >= 20, `${dashboardExprs.length} expressions`)
  const dir = tempDir('egressd-dash-')
  const recording = { groups: [{ name: 'dashboard', rules: dashboardExprs.map((x, i) => ({ record: `dashboard:expr_${i}`, expr: concrete(x.expr) })) }] }
  writeFileSync(join(dir, 'dashboard.yml'), YAML.stringify(recording))
  const r = run(['check', 'rules', 'dashboard.yml'], { cwd: dir })
  t.equal(r.status, 0, r.out)
  for (const v of ['datasource', 'job', 'instance']) t.ok(dashboard.templating.list.some(x => x.name === v), `variable ${v}`)
  const titles = panels.map(p => p.title ?? '')
  for (const want of [/Queries/, /Answer time p50 \/ p99/, /Blocks by category/, /Upstream health/, /Upstream latency/, /Queue/, /dropped/, /List sources/, /Firewall/, /Learned addresses by category/, /Firewall blocks by category/, /Evidence hits/, /CPU/, /Memory/, /Event-loop lag/]) {
    t.ok(titles.some(x => want.test(x)), `a panel ${String(want)}`)
  }
})

// ---- metric names ----------------------------------------------------------------------------

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2'])

interface Use { metric: string, labels: string[] }

/** The metrics a PromQL expression selects, with the label names of their matchers; and the labels it groups or matches by. */
function uses (expr: string): { metrics: Use[], grouping: string[] } {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  const metrics: Use[] = []
  const grouping: string[] = []
  // A metric name with its matchers: name{a="", b=~""}
  e = e.replace(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g, (_m, name: string, body: string) => {
    metrics.push({ metric: name, labels: [...body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map(x => x[1]) })
    return ' '
  })
  e = e.replace(/\{[^}]*\}/g, ' ') // matchers without a name
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _k: string, list: string) => {
    grouping.push(...list.split(',').map(s => s.trim()).filter(Boolean))
    return ' '
  })
  e = e.replace(/\[[^\]]*\]/g, ' ').replace(/\boffset\s+\S+/g, ' ').replace(/\$\w+/g, ' ')
  e = e.replace(/(^|[^a-zA-Z0-9_:])\d+(\.\d+)?([eE][+-]?\d+)?/g, '$1 ')
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = e.slice((m.index ?? 0) + m[0].length).trimStart()
    if (rest.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue
    metrics.push({ metric: m[0], labels: [] })
  }
  return { metrics, grouping }
}

t.test('the name extractor itself', async t => {
  const u = uses('sum by (job, instance, category) (rate(egressd_dns_blocked_total{job="a{b}", x=~"$i"}[15m] offset 15m)) > 3 * (max(up) or foo_bar * 0) and time() - 1e3 > 0.1')
  t.same(u.metrics.map(x => x.metric).sort(), ['egressd_dns_blocked_total', 'foo_bar', 'up'])
  t.same(u.metrics.find(x => x.metric === 'egressd_dns_blocked_total')?.labels, ['job', 'x'])
  t.same(u.grouping, ['job', 'instance', 'category'])
})

t.test('every metric and label the dashboard, the alert rules and their unit tests use is one egressd exports', async t => {
  const upstream = await answeringUpstream()
  t.teardown(() => upstream.close())
  const d = await startApiDaemon({
    upstreams: [upstream.url],
    blocklists: { sources: [{ name: 'central', url: 'https://127.0.0.1:1/list.txt', category: 'telegram', interval: '1h' }] }
  })
  t.teardown(() => d.close())
  // Samples for the labelled families: a resolved, a cached and a blocked answer.
  for (const name of ['deploy.example.org', 'deploy.example.org', 'web.telegram.org']) await dig(['@127.0.0.1', '-p', String(d.dnsPort), name, 'A', '+tries=1', '+time=3'])
  const r = await call(d.base, 'GET', '/metrics', { token: TOKENS.metrics })
  t.equal(r.status, 200)
  const families = parseExposition(r.text)

  const PROMETHEUS_OWN = new Set(['up'])
  // Labels Prometheus adds to every series, and `le` of histogram buckets.
  const ADDED = ['job', 'instance']
  const familyOf = (metric: string): { family: Family, suffix: string } | undefined => {
    const exact = families.get(metric)
    if (exact !== undefined) return exact.type === 'histogram' || exact.type === 'summary' ? undefined : { family: exact, suffix: '' }
    const m = /^(.*)_(bucket|sum|count)$/.exec(metric)
    const base = m === null ? undefined : families.get(m[1])
    if (m === null || base === undefined || (base.type !== 'histogram' && base.type !== 'summary') || (base.type === 'summary' && m[2] === 'bucket')) return undefined
    return { family: base, suffix: m[2] }
  }
  const labelsOf = (f: { family: Family, suffix: string }): Set<string> =>
    new Set([...ADDED, ...(f.suffix === 'bucket' ? ['le'] : []), ...f.family.samples.flatMap(s => Object.keys(s.labels).filter(k => k !== 'le' || f.suffix === 'bucket'))])

  const checked = new Set<string>()
  const check = (where: string, expr: string): void => {
    const { metrics, grouping } = uses(expr)
    t.ok(metrics.length > 0, `${where}: uses a metric`)
    const known = new Set<string>(ADDED)
    for (const u of metrics) {
      if (PROMETHEUS_OWN.has(u.metric)) { u.labels.forEach(l => known.add(l)); continue }
      const f = familyOf(u.metric)
      if (f === undefined) { t.fail(`${where}: ${u.metric} is not exported by egressd (or not as that type): ${expr}`); continue }
      checked.add(f.family.name)
      const labels = labelsOf(f)
      labels.forEach(l => known.add(l))
      if (f.family.samples.length === 0) continue // no sample to learn its labels from
      for (const l of u.labels) if (!labels.has(l)) t.fail(`${where}: ${u.metric} has no label ${l} (it has ${[...labels].join(', ')})`)
    }
    for (const l of grouping) if (!known.has(l)) t.fail(`${where}: groups or matches by ${l}, which none of its metrics has: ${expr}`)
  }
  for (const x of dashboardExprs) check(`dashboard ${x.where}`, x.expr)
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query
    const m = q === undefined ? null : /^label_values\((.*),\s*([a-zA-Z_]\w*)\)$/.exec(q)
    if (q === undefined || v.name === 'datasource') continue
    t.ok(m !== null, `variable ${v.name}: label_values(metric, label)`)
    if (m !== null) check(`dashboard variable ${v.name}`, `count by (${m[2]}) (${m[1]})`)
  }
  for (const rule of rules) check(`rule ${rule.alert ?? rule.record ?? ''}`, rule.expr)
  for (const [i, test] of ruleTests.entries()) for (const s of test.input_series) check(`rule test ${i + 1} series`, s.series)
  t.comment(`${checked.size} exported families used: ${[...checked].sort().join(' ')}`)
  t.ok(checked.size >= 30, 'the checks saw the families')
})

t.test('promtool check metrics: no lint problem in an egressd family of a real scrape', async t => {
  const upstream = await answeringUpstream()
  t.teardown(() => upstream.close())
  const d = await startApiDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  await dig(['@127.0.0.1', '-p', String(d.dnsPort), 'web.telegram.org', 'A', '+tries=1', '+time=3'])
  const text = (await call(d.base, 'GET', '/metrics', { token: TOKENS.metrics })).text
  const r = run(['check', 'metrics'], { input: text })
  t.notMatch(r.out, /error while linting|text format parsing error/i, r.out)
  const problems = r.out.split('\n').filter(l => l.trim() !== '')
  // prom-client's own gauges nodejs_active_{handles,requests,resources}_total end in _total.
  t.same(problems.filter(l => !/^nodejs_active_(handles|requests|resources)_total /.test(l)), [], 'only prom-client\'s known findings')
})
