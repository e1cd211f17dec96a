// Source parsers (src/packs/sources/{v2fly,adguard,nextdns}.ts): table-driven cases, each written
// to a fresh sources folder, read back and compared as one-line strings per entry, drop and issue
// ('kind value file:line attrs', 'file:line reason', 'file:line message').
import t, { type Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { readV2fly } from '../../src/packs/sources/v2fly.js'
import { adguardRule, readAdguardService } from '../../src/packs/sources/adguard.js'
import { readNextdnsService } from '../../src/packs/sources/nextdns.js'
import { type SourceList } from '../../src/packs/sources/types.js'
import { tempDir } from '../helpers/tmp.js'

interface Shown { entries: string[], dropped: string[], issues: string[] }

function show (list: SourceList): Shown {
  return {
    entries: list.entries.map((e) => `${e.kind} ${e.value} ${e.file}:${e.line}${e.attrs.length > 0 ? ' ' + e.attrs.join(',') : ''}`),
    dropped: list.dropped.map((d) => `${d.file}:${d.line} ${d.reason}`),
    issues: list.issues.map((i) => `${i.file}:${i.line} ${i.message}`)
  }
}

/** A new sources folder holding `files` (paths relative to it, `/`-separated). */
function sourcesWith (files: Record<string, string>): string {
  const dir = tempDir('egressd-sources-')
  for (const [path, text] of Object.entries(files)) {
    const full = join(dir, ...path.split('/'))
    mkdirSync(dirname(full), { recursive: true })
    writeFileSync(full, text)
  }
  return dir
}

interface Case {
  name: string
  files: Record<string, string>
  read: string
  entries?: string[]
  dropped?: string[]
  issues?: string[]
}

function runCases (t: Test, cases: Case[], read: (dir: string, id: string) => SourceList, prefix: string): void {
  for (const c of cases) {
    const files: Record<string, string> = {}
    for (const [name, text] of Object.entries(c.files)) files[prefix + name] = text
    const got = show(read(sourcesWith(files), c.read))
    t.same(got, { entries: c.entries ?? [], dropped: c.dropped ?? [], issues: c.issues ?? [] }, c.name)
  }
}

const D = 'v2fly/data/'

const v2flyCases: Case[] = [
  {
    name: 'domain:, bare and full: rules',
    files: { x: 'domain:a.com\nb.com\nfull:c.b.com\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:1`, `domain b.com ${D}x:2`, `full c.b.com ${D}x:3`]
  },
  {
    name: 'comments anywhere, blank lines, case, spaces, CRLF, no final newline',
    files: { x: '# head\n\n  DOMAIN:Ex.COM   # why\r\n\tFull:a.B\r\n#domain:skipped.com\nlast.com' },
    read: 'x',
    entries: [`domain ex.com ${D}x:3`, `full a.b ${D}x:4`, `domain last.com ${D}x:6`]
  },
  {
    name: 'attributes: lower-cased, sorted, deduplicated, kept with @',
    files: { x: 'a.com @cn @ADS\nfull:b.com @cn @cn\nc.com @!cn\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:1 @ads,@cn`, `full b.com ${D}x:2 @cn`, `domain c.com ${D}x:3 @!cn`]
  },
  {
    name: 'keyword: and regexp: rules are dropped with the reason',
    files: { x: 'keyword:telegram\nregexp:^t\\.me$ @ads\na.com\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:3`],
    dropped: [`${D}x:1 v2fly keyword: rule: not a name`, `${D}x:2 v2fly regexp: rule: not a name`]
  },
  {
    name: 'include: own rules, then each include in order, recursively; entries name their file',
    files: { x: 'include:y\na.com\n', y: 'include:z\nb.com\n', z: 'full:c.com\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:2`, `domain b.com ${D}y:2`, `full c.com ${D}z:1`]
  },
  {
    name: 'include: list names are case-insensitive',
    files: { x: 'include:Y\n', y: 'b.com\n' },
    read: 'x',
    entries: [`domain b.com ${D}y:1`]
  },
  {
    name: 'include @attr: only rules with the attribute (a rule without attributes never passes)',
    files: { x: 'include:y @ads\n', y: 'a.com\nb.com @ads\nc.com @cn\nd.com @ads @cn\n' },
    read: 'x',
    entries: [`domain b.com ${D}y:2 @ads`, `domain d.com ${D}y:4 @ads,@cn`]
  },
  {
    name: 'include @-attr: rules without the attribute (attribute-less rules pass)',
    files: { x: 'include:y @-ads\n', y: 'a.com\nb.com @ads\nc.com @cn\nd.com @ads @cn\n' },
    read: 'x',
    entries: [`domain a.com ${D}y:1`, `domain c.com ${D}y:3 @cn`]
  },
  {
    name: 'include @attr @-attr: both conditions',
    files: { x: 'include:y @ads @-cn\n', y: 'a.com\nb.com @ads\nc.com @cn\nd.com @ads @cn\n' },
    read: 'x',
    entries: [`domain b.com ${D}y:2 @ads`]
  },
  {
    name: 'include filters apply to rules the included list itself includes, and to drops',
    files: { x: 'include:y @-ads\n', y: 'include:z\n', z: 'a.com @ads\nb.com\nkeyword:ad @ads\nkeyword:b\n' },
    read: 'x',
    entries: [`domain b.com ${D}z:2`],
    dropped: [`${D}z:4 v2fly keyword: rule: not a name`]
  },
  {
    name: 'a line reached through two includes gives one entry',
    files: { x: 'include:y\ninclude:z\n', y: 'include:w\n', z: 'include:w @-ads\n', w: 'a.com\n' },
    read: 'x',
    entries: [`domain a.com ${D}w:1`]
  },
  {
    name: 'include cycle: an issue at the include that closes it; the rest is read',
    files: { x: 'include:y\na.com\n', y: 'include:x\nb.com\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:2`, `domain b.com ${D}y:2`],
    issues: [`${D}y:1 include cycle: x -> y -> x`]
  },
  {
    name: 'a list including itself',
    files: { x: 'a.com\ninclude:x\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:1`],
    issues: [`${D}x:2 include cycle: x -> x`]
  },
  {
    name: 'include of a missing list: an issue at the include line',
    files: { x: 'include:nope\na.com\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:2`],
    issues: [`${D}x:1 include:nope: no such file in the sources folder (v2fly/data/nope)`]
  },
  {
    name: 'a missing list: an issue at line 0',
    files: { x: 'a.com\n' },
    read: 'nope',
    issues: [`${D}nope:0 no such file in the sources folder`]
  },
  {
    name: 'a list name that is a path: an issue, nothing read',
    files: { x: 'a.com\n' },
    read: '../x',
    issues: [`${D}../x:0 not a list file name`]
  },
  {
    name: 'affiliation (&list): the rule belongs to its own list and to the named one',
    files: { x: 'a.com\n', y: 'b.com &X\nc.com\nfull:d.com @ads &x &z\n' },
    read: 'x',
    entries: [`domain a.com ${D}x:1`, `domain b.com ${D}y:1`, `full d.com ${D}y:3 @ads`]
  },
  {
    name: 'affiliation: the affiliating list keeps the rule',
    files: { x: 'a.com\n', y: 'b.com &x\nc.com\n' },
    read: 'y',
    entries: [`domain b.com ${D}y:1`, `domain c.com ${D}y:2`]
  },
  {
    name: 'affiliation to a list without a file of its own',
    files: { y: 'b.com &ghost\n' },
    read: 'y',
    entries: [`domain b.com ${D}y:1`]
  },
  {
    name: 'malformed lines: issues with file:line, the good lines still read',
    files: {
      x: [
        'unknown:a.com', // 1
        'a..com', // 2
        'a.com extra', // 3
        'a.com @', // 4
        'a.com @a_b', // 5
        'include:y &z', // 6
        'include:', // 7
        'include:a/b', // 8
        'full:', // 9
        'a.com &bad_name', // 10
        '*.a.com', // 11
        'include:y @', // 12
        'include:y extra', // 13
        'good.com', // 14
        'domain:a.com:443' // 15
      ].join('\n') + '\n',
      y: 'b.com\n'
    },
    read: 'x',
    entries: [`domain good.com ${D}x:14`],
    issues: [
      `${D}x:1 unknown rule type "unknown:"`,
      `${D}x:2 domain: "a..com": empty label (leading or doubled dot)`,
      `${D}x:3 unknown field "extra"`,
      `${D}x:4 bad attribute "@"`,
      `${D}x:5 bad attribute "@a_b"`,
      `${D}x:6 include: an include cannot have an affiliation (&)`,
      `${D}x:7 include: names no list`,
      `${D}x:8 include: "a/b" is not a list name`,
      `${D}x:9 full: rule has no value`,
      `${D}x:10 bad affiliation "&bad_name"`,
      `${D}x:11 domain: "*.a.com": not a hostname: contains '*'`,
      `${D}x:12 include: bad attribute filter "@"`,
      `${D}x:13 include: unknown field "extra"`,
      `${D}x:15 domain: "a.com:443": not a hostname: contains ':'`
    ]
  },
  {
    name: 'issues of an included file are reported once, with its own file:line',
    files: { x: 'include:y\ninclude:y @-ads\n', y: 'a.com\nbad name.com\n' },
    read: 'x',
    entries: [`domain a.com ${D}y:1`],
    issues: [`${D}y:2 unknown field "name.com"`]
  },
  {
    name: 'international names become A-labels',
    files: { x: 'пример.рф\nfull:Bücher.de\n' },
    read: 'x',
    entries: [`domain xn--e1afmkfd.xn--p1ai ${D}x:1`, `full xn--bcher-kva.de ${D}x:2`]
  }
]

t.test('readV2fly', async (t) => {
  runCases(t, v2flyCases, readV2fly, D)
})

t.test('adguardRule', async (t) => {
  type Want = string // 'domain a.com [attrs]' | 'drop: reason' | 'issue: message'
  const cases: Array<[rule: string, want: Want]> = [
    ['||a.com^', 'domain a.com'],
    ['|a.com^', 'full a.com'],
    ['||A.Com.^', 'domain a.com'],
    ['  ||a.com^  ', 'domain a.com'],
    ['||a.com|', 'domain a.com'],
    ['||a.com', 'domain a.com no-caret'],
    ['|a.com', 'full a.com no-caret'],
    ['||skype^', 'domain skype'],
    ['||пример.рф^', 'domain xn--e1afmkfd.xn--p1ai'],
    ['||a.com^$important', 'drop: rule with $ modifiers: applies only to some clients, types or answers'],
    ['||a.com^$dnstype=AAAA', 'drop: rule with $ modifiers: applies only to some clients, types or answers'],
    ['@@||a.com^', 'drop: exception rule (@@): unblocks, does not block'],
    ['/^a\\.com$/', 'drop: regular expression rule: not a name'],
    ['/^a\\.com$/$important', 'drop: rule with $ modifiers: applies only to some clients, types or answers'],
    ['||*.a.com^', 'drop: wildcard rule (*): a pattern, not a name'],
    ['||a*.com^', 'drop: wildcard rule (*): a pattern, not a name'],
    ['||a.com/path^', 'drop: rule with a path: not a name'],
    ['||a.com^b.com^', 'drop: pattern rule (separator inside the rule): not a name'],
    ['a.com', 'drop: rule without | or || anchor: matches anywhere in a name, not a name'],
    ['0.0.0.0 a.com', 'drop: rule without | or || anchor: matches anywhere in a name, not a name'],
    ['! comment', 'drop: comment'],
    ['# comment', 'drop: comment'],
    ['', 'issue: empty rule'],
    ['||^', 'issue: "||^": empty name'],
    ['||a..com^', 'issue: "||a..com^": empty label (leading or doubled dot)'],
    ['||a com^', 'issue: "||a com^": not a hostname: contains \' \''],
    ['||a.com:443^', 'issue: "||a.com:443^": not a hostname: contains \':\'']
  ]
  for (const [rule, want] of cases) {
    const r = adguardRule(rule)
    const got = 'entry' in r
      ? [r.entry.kind, r.entry.value, ...r.entry.attrs].join(' ')
      : 'drop' in r ? `drop: ${r.drop}` : `issue: ${r.issue}`
    t.equal(got, want, JSON.stringify(rule))
  }
})

const A = 'adguard/services/'

const adguardCases: Case[] = [
  {
    name: 'a service file: each rule at its own YAML line; other keys ignored',
    files: {
      'x.yml': [
        'id: x', // 1
        'name: X', // 2
        'rules:', // 3
        "  - '||a.com^'", // 4
        '  - "|b.a.com^"', // 5
        "  - '||c.com^$dnstype=AAAA'", // 6
        '  # a comment in the YAML', // 7
        '  - "||d.com"', // 8
        'icon_svg: >-', // 9
        '  <svg', // 10
        '  />', // 11
        'group: messenger' // 12
      ].join('\n') + '\n'
    },
    read: 'x',
    entries: [`domain a.com ${A}x.yml:4`, `full b.a.com ${A}x.yml:5`, `domain d.com ${A}x.yml:8 no-caret`],
    dropped: [`${A}x.yml:6 rule with $ modifiers: applies only to some clients, types or answers`]
  },
  {
    name: 'a flow sequence: all rules on its line',
    files: { 'x.yml': "id: x\nrules: ['||a.com^', '||b.com^']\n" },
    read: 'x',
    entries: [`domain a.com ${A}x.yml:2`, `domain b.com ${A}x.yml:2`]
  },
  {
    name: 'rules that are not strings, and bad names: issues at their lines',
    files: { 'x.yml': "id: x\nrules:\n  - 42\n  - {a: 1}\n  - '||a..com^'\n  - '||ok.com^'\n" },
    read: 'x',
    entries: [`domain ok.com ${A}x.yml:6`],
    issues: [
      `${A}x.yml:3 rule is not a string`,
      `${A}x.yml:4 rule is not a string`,
      `${A}x.yml:5 "||a..com^": empty label (leading or doubled dot)`
    ]
  },
  {
    name: 'an id that differs from the file name',
    files: { 'x.yml': "name: X\nid: y\nrules:\n  - '||a.com^'\n" },
    read: 'x',
    entries: [`domain a.com ${A}x.yml:4`],
    issues: [`${A}x.yml:2 id is "y", the file name says "x"`]
  },
  {
    name: 'no rules list',
    files: { 'x.yml': 'id: x\nrules: none\n' },
    read: 'x',
    issues: [`${A}x.yml:0 no rules list`]
  },
  {
    name: 'a missing file',
    files: {},
    read: 'x',
    issues: [`${A}x.yml:0 no such file in the sources folder`]
  },
  {
    name: 'an id that is a path',
    files: {},
    read: '../x',
    issues: [`${A}../x.yml:0 not a service id`]
  }
]

t.test('readAdguardService', async (t) => {
  runCases(t, adguardCases, readAdguardService, A)

  // YAML that does not parse: an issue from the YAML parser at the line it names.
  const dir = sourcesWith({ [A + 'x.yml']: "id: x\nrules:\n  - '||a.com^'\n  - [unclosed\n" })
  const got = show(readAdguardService(dir, 'x'))
  t.same(got.entries, [])
  t.ok(got.issues.length > 0 && got.issues.every((i) => /^adguard\/services\/x\.yml:[1-9]\d* YAML: /.test(i)), got.issues.join('; '))
})

const N = 'nextdns/services/'

const nextdnsCases: Case[] = [
  {
    name: 'one name a line, all suffix (domain) entries; comments after a name',
    files: { x: 'a.com\nB.com.\n\n# note\nc.com # https://example.org/issues/1\n_svc._tcp.local\n' },
    read: 'x',
    entries: [`domain a.com ${N}x:1`, `domain b.com ${N}x:2`, `domain c.com ${N}x:5`, `domain _svc._tcp.local ${N}x:6`]
  },
  {
    name: 'CRLF and no final newline',
    files: { x: 'a.com\r\nb.com' },
    read: 'x',
    entries: [`domain a.com ${N}x:1`, `domain b.com ${N}x:2`]
  },
  {
    name: 'lines that are not one name: issues',
    files: { x: '*.a.com\na.com b.com\n||c.com^\nd..com\nok.com\n' },
    read: 'x',
    entries: [`domain ok.com ${N}x:5`],
    issues: [
      `${N}x:1 "*.a.com": not a hostname: contains '*'`,
      `${N}x:2 "a.com b.com": not a hostname: contains ' '`,
      `${N}x:3 "||c.com^": not a hostname: contains '|'`,
      `${N}x:4 "d..com": empty label (leading or doubled dot)`
    ]
  },
  {
    name: 'a missing file',
    files: {},
    read: 'x',
    issues: [`${N}x:0 no such file in the sources folder`]
  },
  {
    name: 'an id that is a path',
    files: {},
    read: '../x',
    issues: [`${N}../x:0 not a service id`]
  }
]

t.test('readNextdnsService', async (t) => {
  runCases(t, nextdnsCases, readNextdnsService, N)
})
