// The Microsoft 365 endpoints parser and the Telegram cidr.txt parser: table-driven cases on small
// documents (name kinds, selection, drops, malformed input with file:line), then the fixtures laid
// out like sources/ (test/fixtures/ms365/worldwide.json, our own document in the service's format;
// test/fixtures/telegram/cidr.txt, the ranges of blocklists/telegram/cidrs.txt).

import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { listMs365Sets, ms365SetsOf, parseMs365, readMs365, type Ms365Select } from '../../src/packs/sources/ms365.js'
import { parseTelegramCidr, readTelegramCidr } from '../../src/packs/sources/telegram.js'
import { readJson } from '../../src/packs/sources/json-lines.js'
import { parseCidr } from '../../src/policy/names.js'
import { parseList } from '../../src/policy/parsers.js'
import { tempDir } from '../helpers/tmp.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
/** A folder laid out like sources/: ms365/worldwide.json, telegram/cidr.txt. */
const FIXTURES = resolve(import.meta.dirname, '..', 'fixtures')
const F = 'ms365/test.json'

/** A document as the service writes it (2-space indent, one value per line). */
const doc = (sets: unknown[]): string => JSON.stringify(sets, null, 2)

const teams = { id: 12, serviceArea: 'Skype', serviceAreaDisplayName: 'Microsoft Teams', urls: ['*.teams.microsoft.com', 'teams.microsoft.com', 'Teams.Cloud.Microsoft'], ips: ['52.112.0.0/14', '2603:1027:0:0:0:0:0:0/48'], tcpPorts: '80,443', expressRoute: true, category: 'Allow', required: true }
const media = { id: 11, serviceArea: 'Skype', ips: ['52.112.0.0/14'], udpPorts: '3478,3479,3480,3481', expressRoute: true, category: 'Optimize', required: true, notes: 'Also used by Azure Communication Services' }
const exchange = { id: 1, serviceArea: 'Exchange', urls: ['outlook.office.com'], ips: ['13.107.6.152/31'], category: 'Optimize', required: true }
const sharepoint = { id: 39, serviceArea: 'SharePoint', urls: ['*.svc.ms', '*-files.sharepoint.com'], category: 'Default', required: true }
const common = { id: 154, serviceArea: 'Common', urls: ['autodiscover.*.onmicrosoft.com', '*cdn.onenote.net', '*.x.*.y'], category: 'Default', required: false }

interface Case {
  readonly name: string
  readonly text: string
  readonly select?: Ms365Select
  /** `kind value line [attrs...]` of each entry, in order. */
  readonly entries?: string[]
  readonly dropped?: string[]
  /** `line: message` (a regex source for the message). */
  readonly issues?: string[]
}

/**
 * The line of the first line holding `needle` after the line holding `after` (each a plain
 * substring of the document): the oracle for where a value stands, independent of the parser.
 */
const at = (text: string, needle: string, after = ''): number => {
  const lines = text.split('\n')
  const from = after === '' ? 0 : lines.findIndex(l => l.includes(after))
  const i = lines.findIndex((l, j) => j >= from && l.includes(needle))
  if (from < 0 || i < 0) throw new Error(`no ${needle} after ${after}`)
  return i + 1
}
const A = (id: number, area: string, category: string, required = true): string => `id:${id} serviceArea:${area} category:${category} required:${String(required)}`
const T12 = A(12, 'Skype', 'Allow')
const teamsEntries = (text: string, ips = true): string[] => [
  `wildcard teams.microsoft.com ${at(text, '"*.teams.microsoft.com"', '"id": 12')} ${T12}`,
  `full teams.microsoft.com ${at(text, '"teams.microsoft.com"', '"id": 12')} ${T12}`,
  `full teams.cloud.microsoft ${at(text, 'Teams.Cloud.Microsoft', '"id": 12')} ${T12}`,
  ...(ips ? [`cidr 52.112.0.0/14 ${at(text, '52.112.0.0/14', '"id": 12')} ${T12}`, `cidr 2603:1027::/48 ${at(text, '2603:1027', '"id": 12')} ${T12}`] : [])
]

const t1 = doc([teams])
const t2 = doc([exchange, media, teams])
const t3 = doc([exchange, media, sharepoint])
const t5 = doc([common])
const t11 = doc([{ ...exchange, ips: ['13.107.6.152/31', '13.107.6.300/31', '2603:1006::/129'] }])
const t12 = doc([{ ...exchange, urls: ['outlook.office.com', 'https://outlook.office.com/owa'] }])
const t13 = doc([{ serviceArea: 'Skype', urls: ['a.example'], category: 'Allow', required: true }, { ...media, category: 'Block' }, { ...exchange, required: 'yes' }, teams])
const t14 = doc([{ ...exchange, urls: 'outlook.office.com' }, { ...sharepoint, urls: ['*.svc.ms', 7] }])

const cases: Case[] = [
  {
    name: 'exact names are full, *.x is a wildcard of x, ips are normalized cidrs; each with its attrs and JSON line',
    text: t1,
    entries: teamsEntries(t1)
  },
  {
    name: 'selection by service area (case-insensitive) keeps only those sets',
    text: t2,
    select: { serviceAreas: ['skype'] },
    entries: [`cidr 52.112.0.0/14 ${at(t2, '52.112.0.0/14', '"id": 11')} ${A(11, 'Skype', 'Optimize')}`, ...teamsEntries(t2)]
  },
  {
    name: 'selection by id, united with a service area',
    text: t3,
    select: { ids: [1], serviceAreas: ['SharePoint'] },
    entries: [
      `full outlook.office.com ${at(t3, 'outlook.office.com')} ${A(1, 'Exchange', 'Optimize')}`,
      `cidr 13.107.6.152/31 ${at(t3, '13.107.6.152/31')} ${A(1, 'Exchange', 'Optimize')}`,
      `wildcard svc.ms ${at(t3, '*.svc.ms')} ${A(39, 'SharePoint', 'Default')}`
    ],
    dropped: [`${at(t3, '*-files')} *-files.sharepoint.com`]
  },
  {
    name: 'ips: false takes the host names only',
    text: t1,
    select: { ips: false },
    entries: teamsEntries(t1, false)
  },
  {
    name: 'a wildcard anywhere but a leading *. is dropped with the reason, not an issue',
    text: t5,
    entries: [],
    dropped: [`${at(t5, 'autodiscover')} autodiscover.*.onmicrosoft.com`, `${at(t5, '*cdn.onenote')} *cdn.onenote.net`, `${at(t5, '*.x.*.y')} *.x.*.y`]
  },
  {
    name: 'not JSON: one issue at the line of the fault',
    text: '[\n  {\n    "id": 1,\n    "serviceArea": "Exchange",\n    "urls": ["a.example",]\n  }\n]',
    issues: ["5: not JSON: unexpected ']' where a value should be"]
  },
  {
    name: 'a Python-literal copy (True/False) is not JSON',
    text: '[\n  {\n    "id": 11,\n    "serviceArea": "Skype",\n    "expressRoute": True,\n    "category": "Optimize",\n    "required": True\n  }\n]',
    issues: ["5: not JSON: unexpected 'T' where a value should be"]
  },
  {
    name: 'an HTML error page is not JSON',
    text: '<!DOCTYPE html>\n<html><body>503 Service Unavailable</body></html>\n',
    issues: ["1: not JSON: unexpected '<' where a value should be"]
  },
  {
    name: 'an empty body is not JSON',
    text: '',
    issues: ['1: not JSON: unexpected end of file where a value should be']
  },
  {
    name: 'an object instead of the array of sets',
    text: '{\n  "instance": "Worldwide",\n  "latest": "2020122300"\n}',
    issues: ['1: expected a JSON array of endpoint sets, got an object']
  },
  {
    name: 'an ip that is no CIDR is an issue at its line; the rest of the set is kept',
    text: t11,
    entries: [
      `full outlook.office.com ${at(t11, 'outlook.office.com')} ${A(1, 'Exchange', 'Optimize')}`,
      `cidr 13.107.6.152/31 ${at(t11, '13.107.6.152/31')} ${A(1, 'Exchange', 'Optimize')}`
    ],
    issues: [`${at(t11, '13.107.6.300')}: endpoint set 1: ip '13.107.6.300/31': not an IP address`, `${at(t11, '2603:1006::/129')}: endpoint set 1: ip '2603:1006::/129': prefix length 129 is out of range`]
  },
  {
    name: 'a url that is no host name is an issue at its line',
    text: t12,
    entries: [
      `full outlook.office.com ${at(t12, '"outlook.office.com"')} ${A(1, 'Exchange', 'Optimize')}`,
      `cidr 13.107.6.152/31 ${at(t12, '13.107.6.152/31')} ${A(1, 'Exchange', 'Optimize')}`
    ],
    issues: [`${at(t12, 'https://')}: endpoint set 1: url 'https://outlook.office.com/owa': not a hostname: contains ':'`]
  },
  {
    name: 'sets without an id, with an unknown category or a non-boolean required are left out, each an issue',
    text: t13,
    select: { ids: [11, 1, 12] },
    entries: teamsEntries(t13),
    issues: [
      '2: endpoint set without an integer "id"',
      `${at(t13, '"Block"')}: endpoint set 11: "category" must be one of Optimize, Allow, Default`,
      `${at(t13, '"yes"')}: endpoint set 1: "required" must be true or false`
    ]
  },
  {
    name: 'urls that is not an array of strings',
    text: t14,
    entries: [
      `cidr 13.107.6.152/31 ${at(t14, '13.107.6.152/31')} ${A(1, 'Exchange', 'Optimize')}`,
      `wildcard svc.ms ${at(t14, '*.svc.ms')} ${A(39, 'SharePoint', 'Default')}`
    ],
    issues: [`${at(t14, '"urls": "outlook')}: endpoint set 1: "urls" must be an array of strings`, `${at(t14, '7', '*.svc.ms')}: endpoint set 39: "urls" holds a number, not a string`]
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const r = parseMs365(c.text, F, c.select)
    t.same(r.entries.map(e => [e.kind, e.value, e.line, ...e.attrs].join(' ')), c.entries ?? [], 'entries')
    t.ok(r.entries.every(e => e.file === F), 'every entry names the file')
    t.same(r.dropped.map(d => `${d.line} ${d.text}`), c.dropped ?? [], 'dropped')
    t.ok(r.dropped.every(d => d.file === F && d.reason.length > 0), 'every drop has a file and a reason')
    const issues = c.issues ?? []
    t.equal(r.issues.length, issues.length, `issues: ${JSON.stringify(r.issues)}`)
    issues.forEach((want, i) => {
      const [line, message] = [Number(want.slice(0, want.indexOf(':'))), want.slice(want.indexOf(':') + 2)]
      t.equal(r.issues[i]?.file, F)
      t.equal(r.issues[i]?.line, line, `issue ${i} line`)
      t.match(r.issues[i]?.message, message, `issue ${i} message`)
    })
  })
}

t.test('readJson: strict JSON with the line of every value', async t => {
  const ok = readJson('\ufeff[\r\n  "a\\u0041\\n",\r\n  -1.5e2, true, null, {"k": false}\r\n]')
  if (!('node' in ok) || ok.node.kind !== 'array') { t.fail(JSON.stringify(ok)); return }
  t.same(ok.node.items.map(n => [n.kind, n.line, 'value' in n ? n.value : undefined]), [['string', 2, 'aA\n'], ['number', 3, -150], ['boolean', 3, true], ['null', 3, undefined], ['object', 3, undefined]])
  const bad: Array<[string, number, RegExp]> = [
    ['[1,]', 1, /where a value should be/],
    ['[1 2]', 1, /where ',' or '\]' should be/],
    ['{"a" 1}', 1, /where ':' should be/],
    ['{a: 1}', 1, /where a member name should be/],
    ['["x\ny"]', 1, /control character/],
    ['["\\x"]', 1, /bad escape/],
    ['[01]', 1, /where ',' or '\]' should be/],
    ['[\n\n"unterminated', 3, /unterminated string/],
    ['[] []', 1, /after the end of the document/],
    ['['.repeat(100), 1, /nested deeper/]
  ]
  for (const [text, line, message] of bad) {
    const r = readJson(text)
    t.ok('error' in r && r.line === line && message.test(r.error), `${JSON.stringify(text)} -> ${JSON.stringify(r)}`)
  }
})

t.test('listing the sets: id, area, category, notes and counts; malformed sets are issues', async t => {
  const text = doc([media, teams, { id: 'x' }])
  const { sets, issues } = ms365SetsOf(text, F)
  t.same(sets.map(s => [s.id, s.serviceArea, s.category, s.required, s.notes, s.urls, s.ips, s.line]), [
    [11, 'Skype', 'Optimize', true, 'Also used by Azure Communication Services', 0, 1, 2],
    [12, 'Skype', 'Allow', true, '', 3, 2, at(text, '"id": 12') - 1]
  ])
  t.equal(sets[0].udpPorts, '3478,3479,3480,3481')
  t.same(issues.map(i => [i.line, i.message]), [[at(text, '"id": "x"'), 'endpoint set without an integer "id"']])
})

t.test('a missing sources folder is an issue, not a throw', async t => {
  const dir = tempDir('egressd-sources-')
  t.same(readMs365(dir).issues.map(i => [i.file, i.line]), [['ms365/worldwide.json', 0]])
  t.same(listMs365Sets(dir).issues.map(i => i.message), ['cannot read: ENOENT'])
  t.same(readTelegramCidr(dir).issues.map(i => [i.file, i.line, i.message]), [['telegram/cidr.txt', 0, 'cannot read: ENOENT']])
})

t.test('Telegram cidr.txt: one normalized range per line, bad lines with file:line', async t => {
  const r = parseTelegramCidr('\ufeff91.108.56.0/22\r\n\n# comment\n2001:B28:F23D:0::/48\n91.108.4.1/22\nnot-a-range\n149.154.160.0/33\n', 'telegram/x.txt')
  t.same(r.entries.map(e => `${e.line} ${e.value}`), ['1 91.108.56.0/22', '4 2001:b28:f23d::/48', '5 91.108.4.0/22'])
  t.same(r.issues.map(i => `${i.file}:${i.line}`), ['telegram/x.txt:6', 'telegram/x.txt:7'])
  t.same(r.dropped, [])
})

t.test('the Telegram cidr.txt fixture holds the ranges of the bundled telegram category', async t => {
  const r = readTelegramCidr(FIXTURES)
  t.same(r.issues, [])
  t.equal(r.entries.length, 14)
  const bundled = parseList(readFileSync(resolve(ROOT, 'blocklists', 'telegram', 'cidrs.txt'), 'utf8'), 'cidr')
  t.same(bundled.issues, [])
  t.same(r.entries.map(e => e.value).sort(), bundled.rules.map(x => x.value).sort(), 'same ranges')
})

t.test('the Microsoft 365 fixture (our own document in the service\'s format): real JSON, every set readable', async t => {
  const text = readFileSync(join(FIXTURES, 'ms365', 'worldwide.json'), 'utf8')
  t.doesNotThrow(() => JSON.parse(text), 'JSON.parse reads it')
  t.ok(text.includes('\r\n') && !text.endsWith('\n'), 'CRLF line ends and no final newline, as the service writes')
  const { sets, issues } = listMs365Sets(FIXTURES)
  t.same(issues, [])
  t.equal(sets.length, (JSON.parse(text) as unknown[]).length, 'every set listed')
  const skype = sets.filter(s => s.serviceArea === 'Skype')
  t.same(skype.map(s => s.id), [11, 12, 13, 14, 15, 17, 22, 127])
  const eleven = skype[0]
  t.same([eleven.category, eleven.required, eleven.urls, eleven.ips, eleven.udpPorts], ['Optimize', true, 0, 4, '3478,3479,3480,3481'])
  t.equal(skype.find(s => s.id === 22)?.notes, 'Teams: Messaging interop with Skype for Business')

  const all = readMs365(FIXTURES)
  t.same(all.issues, [], 'no malformed value anywhere')
  t.same(all.dropped.map(d => d.text), ['*-files.sharepoint.com', '*-myfiles.sharepoint.com', '*cdn.onenote.net', 'autodiscover.*.onmicrosoft.com'], 'only mid-name wildcards are dropped')
  const lines = text.split('\n')
  const misplaced = all.entries.filter(e => {
    const raw = lines[e.line - 1].toLowerCase()
    if (e.kind !== 'cidr') return !raw.includes(`"${e.kind === 'wildcard' ? `*.${e.value}` : e.value}"`)
    const quoted = raw.match(/"([^"]+)"/)?.[1]
    const c = quoted === undefined ? undefined : parseCidr(quoted)
    return c === undefined || 'error' in c || c.value !== e.value
  })
  t.same(misplaced.map(e => `${e.line} ${e.value}`), [], `each of the ${all.entries.length} entries stands on its line`)

  const media = readMs365(FIXTURES, { ids: [11] })
  t.same(media.entries.map(e => e.value), ['13.107.64.0/18', '52.112.0.0/14', '52.122.0.0/15', '2603:1063::/38'])
  t.same(media.entries[0].attrs, ['id:11', 'serviceArea:Skype', 'category:Optimize', 'required:true'])
  const teamsNames = readMs365(FIXTURES, { ids: [12, 13], ips: false })
  t.same(teamsNames.entries.map(e => `${e.kind} ${e.value}`), ['wildcard lync.com', 'wildcard teams.microsoft.com', 'full teams.microsoft.com', 'wildcard broadcast.skype.com', 'full broadcast.skype.com'])
})

t.test('readMs365 reads <sourcesDir>/ms365/worldwide.json', async t => {
  const dir = tempDir('egressd-sources-')
  mkdirSync(join(dir, 'ms365'))
  writeFileSync(join(dir, 'ms365', 'worldwide.json'), doc([media]))
  t.same(readMs365(dir).entries.map(e => `${e.file}:${e.line} ${e.value}`), ['ms365/worldwide.json:6 52.112.0.0/14'])
})
