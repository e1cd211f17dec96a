// Learning through a real daemon and a real dnsmasq upstream, where it must hold back: an address
// reached through a multi-tenant front end (a Teams name CNAMEd into Microsoft's shared edge) is
// held as shared-host, never put into a set; a pack that says learnAddresses: false (Gmail: its
// names answer from Google's shared front ends) is not learned at all; a plain banned name is.

import t from 'tap'
import { startDnsmasq } from '../helpers/dnsmasq.js'
import { startTestDaemon } from '../helpers/daemon.js'
import { dig } from '../helpers/dig.js'
import { loadSharedHosts, parseSharedHosts, sharedHostsOf } from '../../src/learn/shared-hosts.js'
import { INSTALLATION_ROOT } from '../../src/packs/collateral.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('front ends are held back, learnAddresses: false packs are not learned, plain names are', async t => {
  const upstream = await startDnsmasq({
    auth: false,
    lines: [
      'host-record=x-0001.s-msedge.net,11.0.0.30', 'cname=teams.microsoft.com,x-0001.s-msedge.net',
      'host-record=mail.google.com,11.0.0.40',
      'host-record=web.whatsapp.com,11.0.0.10'
    ]
  })
  t.teardown(() => upstream.stop())
  const d = await startTestDaemon({ upstreams: [upstream.url] })
  t.teardown(() => d.close())
  for (const name of ['teams.microsoft.com', 'mail.google.com', 'web.whatsapp.com']) {
    const r = await dig([`@${d.host}`, '-p', String(d.port), name, 'A'])
    t.equal(r.status, 'NXDOMAIN', `${name} is blocked by name`)
  }
  const learning = d.daemon.learning!
  t.ok(learning !== undefined, 'learning is on by default')
  for (let i = 0; i < 100 && !(learning.book.list().some(a => a.address === '11.0.0.10') && learning.book.held().some(h => h.address === '11.0.0.30')); i++) await sleep(50)
  t.match(learning.book.list(), [{ address: '11.0.0.10', category: 'whatsapp', name: 'web.whatsapp.com', via: 'query' }], 'the plain banned name\'s address is learned')
  const held = learning.book.held().find(h => h.address === '11.0.0.30')
  t.match(held, { category: 'teams', name: 'teams.microsoft.com', reason: 'shared-host', sharedWith: ['x-0001.s-msedge.net'] }, 'the address behind Microsoft\'s shared edge is held back, naming the front end')
  t.notOk(learning.book.list().some(a => a.address === '11.0.0.30'), 'and is in no set')
  t.notOk([...learning.book.list(), ...learning.book.held()].some(a => a.address === '11.0.0.40' || a.category === 'gmail'), 'gmail (learnAddresses: false) is not learned')
  t.notOk(d.daemon.policyBuild.extras.probes.has('gmail'), 'and has no probes')
})

t.test('the front-end list: label-boundary suffixes, bad lines named FILE:LINE, the bundled list loads clean', async t => {
  const problems: string[] = []
  const parsed = parseSharedHosts('# c\nAkamaiEdge.net.  # Akamai\nnot a name\ncom\n\nl.google.com\n', 'x.txt', problems)
  t.same(parsed, ['akamaiedge.net', 'l.google.com'])
  t.same(problems, ['x.txt:3: "not a name": expected a host name suffix (two labels at least)', 'x.txt:4: "com": expected a host name suffix (two labels at least)'])
  const hosts = sharedHostsOf(parsed)
  t.equal(hosts.match('e1234.a.akamaiedge.net.'), 'akamaiedge.net')
  t.equal(hosts.match('googlemail.l.google.com'), 'l.google.com')
  t.equal(hosts.match('notakamaiedge.net'), undefined, 'only on a label boundary')
  t.equal(hosts.match('google.com'), undefined)
  const bundledProblems: string[] = []
  const bundled = loadSharedHosts(INSTALLATION_ROOT, bundledProblems)
  t.same(bundledProblems, [], 'sources/shared-hosts reads without a problem')
  for (const n of ['x.s-msedge.net', 'd1.cloudfront.net', 'ghs.googlehosted.com', 'abc.cdn.dnsv1.com']) t.not(bundled.match(n), undefined, `${n} is a shared front end`)
  for (const n of ['web.whatsapp.com', 'x.elb.amazonaws.com', 'app.cloudapp.net']) t.equal(bundled.match(n), undefined, `${n} is not`)
})
