// List parsers (every format, allow rules, comments, CRLF/BOM, bad lines with line numbers and
// messages) and the name and CIDR normalizers they are built on.
import t from 'tap'
import { parseList, formatIssues, ADBLOCK_UNSUPPORTED } from '../../src/policy/parsers.js'
import { normalizeName, parseCidr } from '../../src/policy/names.js'
import type { ListFormat } from '../../src/policy/rule.js'

type R = [kind: string, value: string, allow: boolean, line: number]
type I = [line: number, message: string]

function parse (text: string, format: ListFormat): { rules: R[], issues: I[], lines: number } {
  const p = parseList(text, format)
  return {
    rules: p.rules.map(r => [r.kind, r.value, r.allow, r.line]),
    issues: p.issues.map(i => [i.line, i.message]),
    lines: p.lines
  }
}

const LABEL63 = 'a'.repeat(63)
const NAME253 = [LABEL63, LABEL63, LABEL63, 'b'.repeat(61)].join('.')

t.test('normalizeName', async t => {
  const ok: Array<[string, string]> = [
    ['example.com', 'example.com'],
    ['  Example.COM.  ', 'example.com'],
    ['example.com.', 'example.com'],
    ['_sip._tcp.example.com', '_sip._tcp.example.com'],
    ['-lead.trail-.example.com', '-lead.trail-.example.com'],
    ['localhost', 'localhost'],
    ['пример.рф', 'xn--e1afmkfd.xn--p1ai'],
    ['ПРИМЕР.РФ.', 'xn--e1afmkfd.xn--p1ai'],
    ['www.bücher.de', 'www.xn--bcher-kva.de'],
    ['xn--e1afmkfd.xn--p1ai', 'xn--e1afmkfd.xn--p1ai'],
    [`${LABEL63}.com`, `${LABEL63}.com`],
    [NAME253, NAME253],
    [NAME253 + '.', NAME253]
  ]
  for (const [input, name] of ok) t.same(normalizeName(input), { name }, JSON.stringify(input))
  const bad: Array<[string, string]> = [
    ['', 'empty name'],
    ['   ', 'empty name'],
    ['.', 'empty name'],
    ['example.com..', 'empty label (leading or doubled dot)'],
    ['.example.com', 'empty label (leading or doubled dot)'],
    ['a..b', 'empty label (leading or doubled dot)'],
    [`${LABEL63}a.com`, 'label longer than 63 characters'],
    [`com.${LABEL63}a`, 'label longer than 63 characters'],
    [NAME253 + 'b', 'name longer than 253 characters'],
    [NAME253 + '.c', 'name longer than 253 characters'],
    ['exa mple.com', "not a hostname: contains ' '"],
    ['example.com/ads', "not a hostname: contains '/'"],
    ['example.com:443', "not a hostname: contains ':'"],
    ['*.example.com', "not a hostname: contains '*'"],
    ['a\u0001b', 'not a hostname: contains U+0001'],
    ['пример.xn--zz', 'not a valid internationalized name'],
    ['при мер.рф', "not a hostname: contains ' '"]
  ]
  for (const [input, error] of bad) t.same(normalizeName(input), { error }, JSON.stringify(input))
})

t.test('parseCidr', async t => {
  const ok: Array<[string, string, 4 | 6, bigint, bigint]> = [
    ['10.0.0.0/8', '10.0.0.0/8', 4, 0x0a000000n, 0x0affffffn],
    ['10.1.2.3/8', '10.0.0.0/8', 4, 0x0a000000n, 0x0affffffn],
    ['203.0.113.5', '203.0.113.5/32', 4, 0xcb007105n, 0xcb007105n],
    ['0.0.0.0/0', '0.0.0.0/0', 4, 0n, 0xffffffffn],
    [' 192.168.1.77/24 ', '192.168.1.0/24', 4, 0xc0a80100n, 0xc0a801ffn],
    ['2001:DB8::/32', '2001:db8::/32', 6, 0x20010db8n << 96n, (0x20010db8n << 96n) | ((1n << 96n) - 1n)],
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1/128', 6, (0x20010db8n << 96n) | 1n, (0x20010db8n << 96n) | 1n],
    ['::', '::/128', 6, 0n, 0n],
    ['::/0', '::/0', 6, 0n, (1n << 128n) - 1n],
    ['::1', '::1/128', 6, 1n, 1n],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4/128', 6, 0x0001000000000002000000000003_0004n, 0x0001000000000002000000000003_0004n],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1/128', 6, 0x00010000000000010000000000000001n, 0x00010000000000010000000000000001n],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7/128', 6, 0x00010000000200030004000500060007n, 0x00010000000200030004000500060007n],
    ['fe80::1:2/64', 'fe80::/64', 6, 0xfe80n << 112n, (0xfe80n << 112n) | ((1n << 64n) - 1n)],
    ['::ffff:1.2.3.0/120', '1.2.3.0/24', 4, 0x01020300n, 0x010203ffn],
    ['::ffff:1.2.3.4', '1.2.3.4/32', 4, 0x01020304n, 0x01020304n],
    ['::ffff:0102:0304/128', '1.2.3.4/32', 4, 0x01020304n, 0x01020304n],
    ['::ffff:0:0/96', '0.0.0.0/0', 4, 0n, 0xffffffffn]
  ]
  for (const [input, value, family, start, end] of ok) t.same(parseCidr(input), { value, family, start, end }, input)
  const bad: Array<[string, string]> = [
    ['1.2.3.4/33', 'prefix length 33 is out of range for IPv4'],
    ['::1/129', 'prefix length 129 is out of range for IPv6'],
    ['::ffff:1.2.3.4/129', 'prefix length 129 is out of range for IPv6'],
    ['1.2.3', "not an IP address: '1.2.3'"],
    ['1.2.3.256', "not an IP address: '1.2.3.256'"],
    ['01.2.3.4', "not an IP address: '01.2.3.4'"],
    ['1::2::3', "not an IP address: '1::2::3'"],
    ['example.com', "not an IP address: 'example.com'"],
    ['', "not an IP address: ''"],
    ['1.2.3.0/', "missing prefix length after '/'"],
    ['1.2.3.0/x', "bad prefix length 'x'"],
    ['1.2.3.0/-1', "bad prefix length '-1'"],
    ['1.2.3.0/8/8', "bad prefix length '8/8'"],
    ['fe80::1%eth0', "zone index not allowed in address 'fe80::1%eth0'"]
  ]
  for (const [input, error] of bad) t.same(parseCidr(input), { error }, input)
})

t.test('plain: every kind of rule, allow rules, comments', async t => {
  const text = [
    '# egressd list',                 // 1
    'example.com',                    // 2
    '=exact.example.com',             // 3
    '*.wild.example.com',             // 4
    '/^ads?\\./',                     // 5
    '@@web.example.com',              // 6
    '@@=ok.example.com',              // 7
    '@@*.ok.example.com',             // 8
    '@@/^ok\\./',                     // 9
    '10.0.0.0/8',                     // 10
    '@@192.168.1.1',                  // 11
    '2001:DB8::/32',                  // 12
    '  Example.ORG.   # with a note', // 13
    '',                               // 14
    '   # indented comment',          // 15
    'пример.рф',                      // 16
    '_dmarc.example.net\t#tab note',  // 17
    '1337x.to',                       // 18
    '=ПРИМЕР.рф.',                    // 19
    'DEAD:BEEF::1',                   // 20
    'cafe.de',                        // 21
    '1e100.net'                       // 22
  ].join('\n')
  const p = parse(text, 'plain')
  t.same(p.rules, [
    ['suffix', 'example.com', false, 2],
    ['exact', 'exact.example.com', false, 3],
    ['wildcard', 'wild.example.com', false, 4],
    ['regex', '^ads?\\.', false, 5],
    ['suffix', 'web.example.com', true, 6],
    ['exact', 'ok.example.com', true, 7],
    ['wildcard', 'ok.example.com', true, 8],
    ['regex', '^ok\\.', true, 9],
    ['cidr', '10.0.0.0/8', false, 10],
    ['cidr', '192.168.1.1/32', true, 11],
    ['cidr', '2001:db8::/32', false, 12],
    ['suffix', 'example.org', false, 13],
    ['suffix', 'xn--e1afmkfd.xn--p1ai', false, 16],
    ['suffix', '_dmarc.example.net', false, 17],
    ['suffix', '1337x.to', false, 18],
    ['exact', 'xn--e1afmkfd.xn--p1ai', false, 19],
    ['cidr', 'dead:beef::1/128', false, 20],
    ['suffix', 'cafe.de', false, 21],
    ['suffix', '1e100.net', false, 22]
  ])
  t.same(p.issues, [])
  t.equal(p.lines, 22)
  const full = parseList(text, 'plain')
  t.equal(full.rules[11].text, 'Example.ORG.   # with a note', 'text is the original line, trimmed')
  t.equal(full.rules[0].text, 'example.com')
})

t.test('plain: $dnstype= limits a rule to query types', async t => {
  const ok: Array<[line: string, kind: string, value: string, allow: boolean, types: number[], except: boolean]> = [
    ['gmail.com $dnstype=~MX|~TXT', 'suffix', 'gmail.com', false, [15, 16], true],
    ['gmail.com$dnstype=~TXT|~MX', 'suffix', 'gmail.com', false, [15, 16], true],
    ['=v6.example $dnstype=AAAA|https|65', 'exact', 'v6.example', false, [28, 65], false],
    ['*.w.example $dnstype=TYPE64', 'wildcard', 'w.example', false, [64], false],
    ['/^ads\\d$/ $dnstype=A', 'regex', '^ads\\d$', false, [1], false],
    ['@@ok.example $dnstype=MX  # mail stays', 'suffix', 'ok.example', true, [15], false]
  ]
  for (const [line, kind, value, allow, types, except] of ok) {
    const p = parseList(line, 'plain')
    t.same(p.issues, [], line)
    t.match(p.rules[0], { kind, value, allow, types: { types, except } }, line)
  }
  t.equal(parseList('plain.example', 'plain').rules[0].types, undefined, 'no filter: every type')
  const bad: Array<[string, string]> = [
    ['a.example $dnstype=', '$dnstype needs query types, e.g. $dnstype=A|AAAA or $dnstype=~MX|~TXT'],
    ['a.example $dnstype', '$dnstype needs query types, e.g. $dnstype=A|AAAA or $dnstype=~MX|~TXT'],
    ['a.example $dnstype=A|~MX', "$dnstype=A|~MX: either every type negated with '~' or none"],
    ['a.example $dnstype=BOGUS', "$dnstype: 'BOGUS' is not a DNS record type"],
    ['a.example $dnstype=A,dnstype=MX', '$dnstype given twice'],
    ['a.example $important', "unknown modifier '$important' (known: dnstype)"],
    ['10.0.0.0/8 $dnstype=A', '$dnstype applies to name rules, not to addresses']
  ]
  for (const [line, message] of bad) t.same(parse(line, 'plain').issues, [[1, message]], line)
})

t.test('plain: bad lines become issues with their line and message', async t => {
  const cases: Array<[string, string]> = [
    ['bad/name', "not a hostname: contains '/'"],
    ['exa mple.com', "not a hostname: contains ' '"],
    ['example.com#frag', "not a hostname: contains '#'"],
    [`${LABEL63}x.com`, 'label longer than 63 characters'],
    [NAME253 + '.c', 'name longer than 253 characters'],
    ['a..b', 'empty label (leading or doubled dot)'],
    ['*example.com', "a wildcard must be written '*.name'"],
    ['*.', 'empty name'],
    ['=', 'empty name'],
    ['@@', "nothing after '@@'"],
    ['/(a+)+$/', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['@@/(a|a)*/', 'regex rejected: quantified alternation can backtrack catastrophically'],
    ['/ads/i', 'a regex must be written /pattern/ (no flags)'],
    ['/', 'a regex must be written /pattern/ (no flags)'],
    ['//', 'regex rejected: empty pattern'],
    ['/(/', 'regex rejected: Invalid regular expression: /(/: Unterminated group'],
    ['1.2.3.4/33', 'prefix length 33 is out of range for IPv4'],
    ['1.2.3', "not an IP address: '1.2.3'"],
    ['::1/200', 'prefix length 200 is out of range for IPv6'],
    ['fe80::1%eth0', "zone index not allowed in address 'fe80::1%eth0'"],
    ['0.0.0.0 hosts-line.example.com', "not a hostname: contains ' '"],
    ['||adblock.example.com^', "not a hostname: contains '|'"],
    ['example.com:443', "not a hostname: contains ':'"],
    ['title: Telegram', "not a hostname: contains ':'"],
    ['123', "not an IP address: '123'"],
    ['DEAD:BEEF::/129', 'prefix length 129 is out of range for IPv6'],
    ['пример.xn--zz', 'not a valid internationalized name']
  ]
  const text = ['good.example.com', ...cases.map(c => c[0]), 'last.example.com'].join('\n')
  const p = parse(text, 'plain')
  t.same(p.rules, [['suffix', 'good.example.com', false, 1], ['suffix', 'last.example.com', false, cases.length + 2]])
  t.same(p.issues, cases.map((c, i): I => [i + 2, c[1]]))
  const raw = parseList('ok.test\n  bad/name  # note\n', 'plain')
  t.same(raw.issues, [{ line: 2, message: "not a hostname: contains '/'", text: 'bad/name  # note' }])
})

t.test('CRLF, BOM, blank lines and line counting (all formats)', async t => {
  t.same(parse('\ufeffa.example\r\n\r\n# c\r\nb.example\r\n', 'plain'), {
    rules: [['suffix', 'a.example', false, 1], ['suffix', 'b.example', false, 4]], issues: [], lines: 4
  })
  t.equal(parseList('\ufeffa.example\r\n', 'plain').rules[0].text, 'a.example')
  t.same(parse('\ufeff0.0.0.0 a.example\r\n', 'hosts').rules, [['suffix', 'a.example', false, 1]])
  t.same(parse('\ufeff||a.example^\r\n', 'adblock').rules, [['suffix', 'a.example', false, 1]])
  t.same(parse('\ufeffaddress=/a.example/\r\n', 'dnsmasq').rules, [['suffix', 'a.example', false, 1]])
  t.same(parse('\ufeff10.0.0.0/8\r\n', 'cidr').rules, [['cidr', '10.0.0.0/8', false, 1]])
  t.same(parse('', 'plain'), { rules: [], issues: [], lines: 0 })
  t.same(parse('\ufeff', 'plain'), { rules: [], issues: [], lines: 0 })
  t.equal(parse('a.test', 'plain').lines, 1, 'no final newline')
  t.equal(parse('a.test\n\n', 'plain').lines, 2)
  t.same(parse('\n\n  \t \nx.test', 'plain').rules, [['suffix', 'x.test', false, 4]])
})

t.test('hosts', async t => {
  const text = [
    '# hosts file',                                       // 1
    '127.0.0.1 localhost',                                // 2
    '127.0.0.1 localhost.localdomain local',              // 3
    '::1 localhost ip6-localhost ip6-loopback',           // 4
    'fe00::0 ip6-localnet',                               // 5
    'ff00::0 ip6-mcastprefix',                            // 6
    'ff02::1 ip6-allnodes',                               // 7
    'ff02::2 ip6-allrouters',                             // 8
    '255.255.255.255 broadcasthost',                      // 9
    '0.0.0.0 0.0.0.0',                                    // 10
    '0.0.0.0 ads.example.com  Tracker.Example.com # two', // 11
    '127.0.0.1\ttab.example.com',                         // 12
    ':: v6.example.com',                                  // 13
    '::1 v6loop.example.com.',                            // 14
    'example.com 0.0.0.0',                                // 15
    '0.0.0.0',                                            // 16
    '0.0.0.0 bad/name ok.example.com',                    // 17
    '0.0.0.0 # only a comment',                           // 18
    '1.2.3.4 redirect.example.com',                       // 19
    '0.0.0.0 пример.рф',                                  // 20
    '0.0.0.0 LocalHost',                                  // 21
    '300.0.0.1 x.example.com'                             // 22
  ].join('\n')
  const p = parse(text, 'hosts')
  t.same(p.rules, [
    ['suffix', 'ads.example.com', false, 11],
    ['suffix', 'tracker.example.com', false, 11],
    ['suffix', 'tab.example.com', false, 12],
    ['suffix', 'v6.example.com', false, 13],
    ['suffix', 'v6loop.example.com', false, 14],
    ['suffix', 'ok.example.com', false, 17],
    ['suffix', 'redirect.example.com', false, 19],
    ['suffix', 'xn--e1afmkfd.xn--p1ai', false, 20]
  ])
  t.same(p.issues, [
    [15, "not a hosts line: 'example.com' is not an IP address"],
    [16, 'hosts line has an address but no names'],
    [17, "name 'bad/name': not a hostname: contains '/'"],
    [18, 'hosts line has an address but no names'],
    [22, "not a hosts line: '300.0.0.1' is not an IP address"]
  ])
  t.equal(p.lines, 22)
})

t.test('adblock', async t => {
  const text = [
    '[Adblock Plus 2.0]',                        // 1
    '! Title: test list',                        // 2
    '||ads.example.com^',                        // 3
    '@@||ok.example.com^',                       // 4
    '|exact.example.com^',                       // 5
    '||imp.example.com^$important',              // 6
    '||pipe.example.com^|',                      // 7
    '||UPPER.Example.COM^  # note',              // 8
    '# a comment',                               // 9
    '||x.example.com^$third-party',              // 10
    '||x.example.com/ads^',                      // 11
    '||x.example.com/path',                      // 12
    'example.com##.banner',                      // 13
    '##.banner',                                 // 14
    '#@#.banner',                                // 15
    '/ads[0-9]+/',                               // 16
    '||*.x.example.com^',                        // 17
    'plain.example.com',                         // 18
    '0.0.0.0 hosts.example.com',                 // 19
    `||${LABEL63}x.com^`,                        // 20
    '||пример.рф^',                              // 21
    '@@||allow.example.com^$important',          // 22
    '||x.example.com^$important,third-party',    // 23
    '||^',                                       // 24
    '||mail.example.com^$dnstype=~MX|~TXT',      // 25
    '||v6.example.com^$dnstype=AAAA,important'   // 26
  ].join('\n')
  const p = parse(text, 'adblock')
  t.same(p.rules, [
    ['suffix', 'ads.example.com', false, 3],
    ['suffix', 'ok.example.com', true, 4],
    ['exact', 'exact.example.com', false, 5],
    ['suffix', 'imp.example.com', false, 6],
    ['suffix', 'pipe.example.com', false, 7],
    ['suffix', 'upper.example.com', false, 8],
    ['suffix', 'xn--e1afmkfd.xn--p1ai', false, 21],
    ['suffix', 'allow.example.com', true, 22],
    ['suffix', 'mail.example.com', false, 25],
    ['suffix', 'v6.example.com', false, 26]
  ])
  const typed = parseList(text, 'adblock').rules.slice(-2).map(r => r.types)
  t.same(typed, [{ types: [15, 16], except: true }, { types: [28], except: false }], '$dnstype in adblock rules')
  t.same(p.issues, [
    [10, `${ADBLOCK_UNSUPPORTED}: unknown modifier '$third-party' (known: dnstype, important)`],
    [11, ADBLOCK_UNSUPPORTED],
    [12, ADBLOCK_UNSUPPORTED],
    [13, ADBLOCK_UNSUPPORTED],
    [14, ADBLOCK_UNSUPPORTED],
    [15, ADBLOCK_UNSUPPORTED],
    [16, ADBLOCK_UNSUPPORTED],
    [17, ADBLOCK_UNSUPPORTED],
    [18, ADBLOCK_UNSUPPORTED],
    [19, ADBLOCK_UNSUPPORTED],
    [20, 'label longer than 63 characters'],
    [23, `${ADBLOCK_UNSUPPORTED}: unknown modifier '$third-party' (known: dnstype, important)`],
    [24, 'empty name']
  ])
  t.equal(ADBLOCK_UNSUPPORTED, 'unsupported adblock rule (only ||name^, |name^ and their @@ forms, with $dnstype= and $important)')
})

t.test('dnsmasq', async t => {
  const text = [
    '# dnsmasq blocklist',                   // 1
    'address=/ads.example.com/',             // 2
    'address=/a.example.com/0.0.0.0',        // 3
    'address=/b.example.com/::',             // 4
    'server=/c.example.com/',                // 5
    'server=/d.example.com/1.2.3.4#5353',    // 6
    'local=/e.example.com/',                 // 7
    'address=/m1.com/M2.com/m3.com./',       // 8
    'address=/x.com/not-ip',                 // 9
    'conf-file=/etc/dnsmasq.d/x.conf',       // 10
    'server=8.8.8.8',                        // 11
    'address=/#/',                           // 12
    'address=//0.0.0.0',                     // 13
    'address=/ok.com/b*d.com/',              // 14
    'address=/x.com',                        // 15
    'address=/f.example.com/#',              // 16
    'address=/g.example.com/0.0.0.0 # note', // 17
    'bogus',                                 // 18
    'address=/пример.рф/'                    // 19
  ].join('\n')
  const p = parse(text, 'dnsmasq')
  t.same(p.rules, [
    ['suffix', 'ads.example.com', false, 2],
    ['suffix', 'a.example.com', false, 3],
    ['suffix', 'b.example.com', false, 4],
    ['suffix', 'c.example.com', false, 5],
    ['suffix', 'd.example.com', false, 6],
    ['suffix', 'e.example.com', false, 7],
    ['suffix', 'm1.com', false, 8],
    ['suffix', 'm2.com', false, 8],
    ['suffix', 'm3.com', false, 8],
    ['suffix', 'ok.com', false, 14],
    ['suffix', 'f.example.com', false, 16],
    ['suffix', 'g.example.com', false, 17],
    ['suffix', 'xn--e1afmkfd.xn--p1ai', false, 19]
  ])
  t.same(p.issues, [
    [9, "address=/.../not-ip: 'not-ip' is not an IP address"],
    [10, "unsupported dnsmasq directive 'conf-file' (only address=/name/, server=/name/ and local=/name/)"],
    [11, 'expected server=/name/...'],
    [12, "'#' (every name) is not supported"],
    [13, "empty name between '/'"],
    [14, "name 'b*d.com': not a hostname: contains '*'"],
    [15, 'expected address=/name/...'],
    [18, "unsupported dnsmasq directive 'bogus' (only address=/name/, server=/name/ and local=/name/)"]
  ])
})

t.test('cidr', async t => {
  const text = [
    '# ranges',              // 1
    '10.0.0.0/8',            // 2
    '192.168.1.77/24',       // 3
    '203.0.113.5',           // 4
    '2001:DB8:0:0:0:0:0:1',  // 5
    '2001:db8::/32  # doc',  // 6
    '::ffff:1.2.3.0/120',    // 7
    '::ffff:1.2.3.4',        // 8
    '1.2.3.4/33',            // 9
    'example.com',           // 10
    '::/129'                 // 11
  ].join('\n')
  const p = parse(text, 'cidr')
  t.same(p.rules, [
    ['cidr', '10.0.0.0/8', false, 2],
    ['cidr', '192.168.1.0/24', false, 3],
    ['cidr', '203.0.113.5/32', false, 4],
    ['cidr', '2001:db8::1/128', false, 5],
    ['cidr', '2001:db8::/32', false, 6],
    ['cidr', '1.2.3.0/24', false, 7],
    ['cidr', '1.2.3.4/32', false, 8]
  ])
  t.same(p.issues, [
    [9, 'prefix length 33 is out of range for IPv4'],
    [10, "not an IP address: 'example.com'"],
    [11, 'prefix length 129 is out of range for IPv6']
  ])
})

t.test('formatIssues', async t => {
  const p = parseList('ok.test\nbad/name\n1.2.3.4/40\n', 'plain')
  t.same(formatIssues(p.issues, 'lists/own.txt'), [
    "lists/own.txt:2: not a hostname: contains '/'",
    'lists/own.txt:3: prefix length 40 is out of range for IPv4'
  ])
  t.same(formatIssues([], 'x'), [])
})

t.test('garbage never throws', async t => {
  const chars = 'aZ09.-_*/@=|^$#!:[] \t\r\u00e9\u0444\u3002\ufeff%\\(){}+?,'
  let seed = 7
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const lines: string[] = []
  for (let i = 0; i < 2000; i++) {
    let s = ''
    const len = rand(40)
    for (let j = 0; j < len; j++) s += chars[rand(chars.length)]
    lines.push(s)
  }
  const text = lines.join('\n')
  for (const f of ['plain', 'hosts', 'adblock', 'dnsmasq', 'cidr'] as const) {
    let p: ReturnType<typeof parseList> | undefined
    t.doesNotThrow(() => { p = parseList(text, f) }, f)
    t.equal(p?.lines, 2000, f)
    for (const r of p?.rules ?? []) {
      if (r.kind === 'suffix' || r.kind === 'exact' || r.kind === 'wildcard') t.same(normalizeName(r.value), { name: r.value }, `${f}: ${r.value} is normalized`)
    }
  }
})
