// Probe names and opt-in shared ranges of the packs (src/policy/pack-extras.ts, read by buildEngine):
// the bundled files load, every probe is blocked by its own pack, bad lines are named FILE:LINE,
// firewall.sharedRanges must name a category that ships shared-ranges.txt, and the shared ranges
// never enter DNS answer matching.

import t from 'tap'
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { buildEngine } from '../../src/policy/build.js'
import { checkName } from '../../src/policy/check.js'
import { parseCidr } from '../../src/policy/names.js'
import { parseProbes, parseSharedRanges, sharedRangesNotice, sharedRangesSummary } from '../../src/policy/pack-extras.js'
import { PolicyError } from '../../src/errors.js'
import { testConfig } from '../helpers/daemon.js'
import { tempDir } from '../helpers/tmp.js'

const DIR = resolve(import.meta.dirname, '..', '..', 'blocklists')
const BANNED = ['telegram', 'whatsapp', 'viber', 'discord', 'teams', 'skype', 'snapchat', 'threema', 'wechat']

/** The build's problems, or [] when it builds. */
function problemsOf (fn: () => unknown): string[] {
  try { fn(); return [] } catch (err) {
    if (err instanceof PolicyError) return [...err.problems]
    throw err
  }
}

t.test('every banned category ships 5 to 30 probes, each blocked by its own pack with evidence', async t => {
  const { extras, warnings } = buildEngine(testConfig({}).blocklists, 1)
  t.same(warnings, [])
  for (const cat of BANNED) {
    const probes = extras.probes.get(cat) ?? []
    t.ok(probes.length >= 5 && probes.length <= 30, `${cat}: ${probes.length} probes`)
    // Only this category on: a probe blocked only by another pack (teams for a skype name) fails here.
    const only = Object.fromEntries(readdirSync(DIR, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => [d.name, { enabled: d.name === cat }]))
    const { engine } = buildEngine(testConfig({ blocklists: { categories: only } }).blocklists, 1)
    for (const name of probes) {
      const v = checkName(engine, name, 1, '127.0.0.1')
      t.equal(v.verdict === 'block' ? v.category : v.verdict, cat, `${name} is blocked by ${cat}`)
    }
    const parsed = parseProbes(readFileSync(join(DIR, cat, 'probes.txt'), 'utf8'), `${cat}/probes.txt`, [])
    t.equal(parsed.length, probes.length)
    for (const p of parsed) t.ok(p.evidence.length > 10, `${cat}:${p.line} carries evidence`)
  }
  // Gmail's hosts answer from Google's shared front ends: it has no probes on purpose.
  t.notOk(extras.probes.has('gmail'))
})

t.test('probes of disabled categories are not handed to the learner', async t => {
  const { extras } = buildEngine(testConfig({ blocklists: { categories: { discord: { enabled: false } } } }).blocklists, 1)
  t.notOk(extras.probes.has('discord'))
  t.ok(extras.probes.has('telegram'))
  const perGroup = buildEngine(testConfig({
    blocklists: { categories: { discord: { enabled: false } }, groups: [{ name: 'lab', clients: ['10.0.0.0/8'], categories: { discord: { enabled: true } } }] }
  }).blocklists, 1)
  t.ok(perGroup.extras.probes.has('discord'), 'on in one group: probed')
})

t.test('a probe its own pack does not block is an error naming FILE:LINE', async t => {
  const dir = tempDir('egressd-extras-')
  cpSync(DIR, dir, { recursive: true })
  const file = join(dir, 'discord', 'probes.txt')
  writeFileSync(file, readFileSync(file, 'utf8') + 'www.google.com  # not Discord\nweb.telegram.org  # another pack\n')
  const lines = readFileSync(file, 'utf8').split('\n').length - 1
  const problems = problemsOf(() => buildEngine(testConfig({ blocklists: { dir } }).blocklists, 1))
  t.same(problems, [
    `${file}:${lines - 1}: www.google.com is not blocked by the discord pack (domains.txt): a probe must be one of its blocked names`,
    `${file}:${lines}: web.telegram.org is not blocked by the discord pack (domains.txt): a probe must be one of its blocked names`
  ])
  // A pack exception does not count as blocked: config.edge.skype.com stays answered.
  writeFileSync(file, readFileSync(join(DIR, 'discord', 'probes.txt')))
  writeFileSync(join(dir, 'skype', 'probes.txt'), 'config.edge.skype.com  # excepted\n')
  t.match(problemsOf(() => buildEngine(testConfig({ blocklists: { dir } }).blocklists, 1)), [/skype\/probes\.txt:1: config\.edge\.skype\.com is not blocked by the skype pack/])
})

t.test('bad probe lines are named FILE:LINE', async t => {
  const problems: string[] = []
  const got = parseProbes([
    '# header',
    'ok.example.com  # evidence',
    '*.wild.example  # x',
    'two names.example  # x',
    'no-evidence.example.com',
    'UPPER.example.com  # x',
    'ok.example.com  # again',
    'single  # x',
    'bad..name  # x',
    '=exact.example  # x'
  ].join('\n'), 'p.txt', problems)
  t.same(got.map(p => p.name), ['ok.example.com'])
  t.match(problems, [
    /^p\.txt:3: "\*\.wild\.example": a probe is a plain host name/,
    /^p\.txt:4: "two names\.example": expected one host name/,
    /^p\.txt:5: no-evidence\.example\.com: no evidence/,
    /^p\.txt:6: "UPPER\.example\.com": write it as upper\.example\.com/,
    /^p\.txt:7: ok\.example\.com: already on line 2/,
    /^p\.txt:8: "single": a probe is a host name with at least two labels/,
    /^p\.txt:9: "bad\.\.name": /,
    /^p\.txt:10: "=exact\.example": a probe is a plain host name/
  ])
})

t.test('shared-ranges.txt: the bundled WhatsApp file parses, with its cuts-off and a source per range', async t => {
  const problems: string[] = []
  const file = join(DIR, 'whatsapp', 'shared-ranges.txt')
  const s = parseSharedRanges(readFileSync(file, 'utf8'), 'whatsapp', file, problems)
  t.same(problems, [])
  t.equal(s.v4.length, 22)
  t.equal(s.v6.length, 2)
  t.ok(s.v4.includes('157.240.0.0/17') && s.v6.includes('2a03:2880::/32'))
  t.ok(s.cutsOff.includes('Facebook') && s.cutsOff.includes('Instagram') && s.cutsOff.includes('Threads'))
  // No shared range overlaps a range a pack blocks by default (they are a separate, opt-in layer).
  const { addresses } = buildEngine(testConfig({}).blocklists, 1)
  const all = [...addresses.block.values()].flatMap(r => [...r.v4, ...r.v6]).map(c => parseCidr(c))
  for (const r of [...s.v4, ...s.v6].map(c => parseCidr(c))) {
    if ('error' in r) { t.fail(r.error); continue }
    for (const b of all) if (!('error' in b) && b.family === r.family) t.ok(b.end < r.start || b.start > r.end, `${r.value} apart from ${b.value}`)
  }
})

t.test('bad shared-ranges lines are named FILE:LINE', async t => {
  const problems: string[] = []
  const s = parseSharedRanges([
    '# header',
    '# cuts-off: A, B',
    '10.0.0.0/8  # ok',
    '10.0.0.1/8  # host bits',
    '192.0.2.0/24',
    'not-a-range  # x',
    '10.0.0.0/8  # twice',
    '2001:DB8::/32  # upper case is fine',
    '# cuts-off: C'
  ].join('\n'), 'x', 's.txt', problems)
  t.same(s.v4, ['10.0.0.0/8'])
  t.same(s.v6, ['2001:db8::/32'])
  t.same(s.cutsOff, ['A', 'B'])
  t.match(problems, [
    /^s\.txt:4: 10\.0\.0\.1\/8: host bits set .*write 10\.0\.0\.0\/8/,
    /^s\.txt:5: 192\.0\.2\.0\/24: no source/,
    /^s\.txt:6: "not-a-range": not an IP address/,
    /^s\.txt:7: 10\.0\.0\.0\/8: listed twice/,
    /^s\.txt:9: a second '# cuts-off:' line/
  ])
  const none: string[] = []
  parseSharedRanges('10.0.0.0/8  # x\n', 'x', 'n.txt', none)
  t.same(none, ["n.txt: no '# cuts-off: ...' header line: say what else these ranges cut off"])
})

t.test('firewall.sharedRanges: on for whatsapp, never in DNS matching; unknown names are build errors', async t => {
  const cfg = testConfig({}).blocklists
  const off = buildEngine(cfg, 1)
  t.equal(off.extras.shared.size, 0)
  t.ok(off.extras.available.has('whatsapp'))
  t.equal(sharedRangesNotice(off.extras), undefined)

  const on = buildEngine(cfg, 1, { sharedRanges: ['whatsapp'] })
  const wa = on.extras.shared.get('whatsapp')
  t.equal(wa?.v4.length, 22)
  t.match(sharedRangesNotice(on.extras), /^firewall\.sharedRanges is on: whatsapp \(24 ranges\) also cuts off Facebook, Instagram, Messenger, Threads/)
  t.same(sharedRangesSummary(on.extras).map(s => [s.category, s.ranges]), [['whatsapp', 24]])
  // An address in Meta's range (a facebook.com answer) is not matched by the engine.
  t.equal(on.engine.stats().addresses, off.engine.stats().addresses)
  t.equal(on.addresses.block.get('whatsapp'), undefined)

  t.same(problemsOf(() => buildEngine(cfg, 1, { sharedRanges: ['whatsapp', 'whatsap'] })), [
    `config firewall.sharedRanges.1: no such category "whatsap" (known: ${[...off.engine.categories].filter(c => !c.name.startsWith('custom')).map(c => c.name).join(', ')})`
  ])
  t.match(problemsOf(() => buildEngine(cfg, 1, { sharedRanges: ['telegram'] })), [
    /^config firewall\.sharedRanges\.0: category "telegram" ships no shared-ranges\.txt \(categories with shared ranges: whatsapp\)$/
  ])
  const disabled = buildEngine(testConfig({ blocklists: { categories: { whatsapp: { enabled: false } } } }).blocklists, 1, { sharedRanges: ['whatsapp'] })
  t.equal(disabled.extras.shared.size, 0)
  t.same(disabled.warnings, ['config firewall.sharedRanges.0: category "whatsapp" is off in every client group: its shared ranges stay off'])
})
