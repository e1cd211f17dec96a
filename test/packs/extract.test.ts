// Source extracts: written from what a parser read (entries as plain rules with their upstream
// file:line, drops with their reason), read back the same, never written from a half-read list;
// and `egressd lists extract --from` over an upstream folder of our own (needs dist/).

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { extractText, readExtract } from '../../src/packs/extract.js'
import type { SourceList } from '../../src/packs/sources/types.js'
import { tempDir } from '../helpers/tmp.js'

const CLI = resolve(import.meta.dirname, '..', '..', 'dist', 'cli.js')
const ORIGIN = { name: 'up/chat', origin: 'https://example.org/up', version: 'commit 1', licence: 'MIT' }

t.test('an extract is written from a parse and read back the same', async t => {
  const list: SourceList = {
    entries: [
      { kind: 'domain', value: 'chat.example', file: 'up/data/chat', line: 1, attrs: [] },
      { kind: 'full', value: 'stun.chat.example', file: 'up/data/chat', line: 2, attrs: ['@stun'] },
      { kind: 'wildcard', value: 'media.chat.example', file: 'up/data/chat', line: 3, attrs: ['id:11', 'category:Optimize'] },
      { kind: 'cidr', value: '198.51.100.0/24', file: 'up/data/chat', line: 4, attrs: [] },
      { kind: 'domain', value: 'chat.example', file: 'up/data/other', line: 9, attrs: [] }
    ],
    dropped: [{ file: 'up/data/chat', line: 5, text: 'keyword:chat', reason: 'v2fly keyword: rule: not a name' }],
    issues: []
  }
  const text = extractText(ORIGIN, list)
  t.same(text.split('\n').filter(l => !l.startsWith('# ') && l !== ''), [
    'chat.example  # up/data/chat:1',
    '=stun.chat.example  # up/data/chat:2 @stun',
    '*.media.chat.example  # up/data/chat:3 id:11 category:Optimize',
    '198.51.100.0/24  # up/data/chat:4',
    '#! dropped up/data/chat:5 keyword:chat  ## v2fly keyword: rule: not a name'
  ], 'one line per entry (the second chat.example is kept once), drops last')
  t.match(text, /^# up\/chat: entries of https:\/\/example\.org\/up \(commit 1\), licence MIT\./)

  const dir = tempDir('egressd-extract-')
  writeFileSync(join(dir, 'chat.txt'), text)
  const problems: string[] = []
  const x = readExtract(join(dir, 'chat.txt'), 'up/chat', problems)
  t.same(problems, [])
  t.same(x?.entries.map(e => [e.rule.kind, e.rule.value, e.from]), [
    ['suffix', 'chat.example', 'up/data/chat:1'],
    ['exact', 'stun.chat.example', 'up/data/chat:2 @stun'],
    ['wildcard', 'media.chat.example', 'up/data/chat:3 id:11 category:Optimize'],
    ['cidr', '198.51.100.0/24', 'up/data/chat:4']
  ])
  t.same(x?.dropped, [{ from: 'up/data/chat:5', text: 'keyword:chat', reason: 'v2fly keyword: rule: not a name' }])

  writeFileSync(join(dir, 'bad.txt'), '# h\nok.example  # a:1\nbad..name  # a:2\n@@allow.example  # a:3\n#! dropped nonsense\n')
  const bad: string[] = []
  readExtract(join(dir, 'bad.txt'), 'up/bad', bad)
  t.same(bad.map(p => p.replace(dir, 'DIR')), [
    'DIR/bad.txt:3: empty label (leading or doubled dot)',
    'DIR/bad.txt:4: expected one block rule',
    "DIR/bad.txt:5: expected '#! dropped FILE:LINE TEXT  ## REASON'"
  ])
  t.throws(() => extractText(ORIGIN, { entries: [], dropped: [], issues: [{ file: 'up/data/chat', line: 7, message: 'not a hostname' }] }),
    /up\/chat: the source has unreadable lines:\n {2}up\/data\/chat:7: not a hostname/, 'a half-read list is never written')
})

t.test('egressd lists extract --from an upstream folder writes sources/NAME.txt', async t => {
  const root = tempDir('egressd-extract-root-')
  const upstream = tempDir('egressd-extract-up-')
  mkdirSync(join(root, 'sources'), { recursive: true })
  writeFileSync(join(root, 'sources', 'origins.yaml'), 'v2fly:\n  origin: https://github.com/v2fly/domain-list-community (data/)\n  version: commit abc\n  licence: MIT\n')
  mkdirSync(join(upstream, 'v2fly', 'data'), { recursive: true })
  writeFileSync(join(upstream, 'v2fly', 'data', 'chat'), '# chat\nchat.example\nfull:api.chat.example @cn\nkeyword:chat\n')
  const ok = spawnSync(process.execPath, [CLI, 'lists', 'extract', '--from', upstream, 'v2fly/chat', '--root', root], { encoding: 'utf8', timeout: 30_000 })
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, 'wrote sources/v2fly/chat.txt')
  const text = readFileSync(join(root, 'sources', 'v2fly', 'chat.txt'), 'utf8')
  t.match(text, /^# v2fly\/chat: entries of https:\/\/github\.com\/v2fly\/domain-list-community \(data\/\) \(commit abc\), licence MIT\./)
  t.match(text, 'chat.example  # v2fly/data/chat:2\n=api.chat.example  # v2fly/data/chat:3 @cn\n#! dropped v2fly/data/chat:4 keyword:chat  ## ')

  writeFileSync(join(upstream, 'v2fly', 'data', 'broken'), 'chat.example\nbad..name\n')
  const broken = spawnSync(process.execPath, [CLI, 'lists', 'extract', '--from', upstream, 'v2fly/broken', '--root', root], { encoding: 'utf8', timeout: 30_000 })
  t.equal(broken.status, 1)
  t.match(broken.stderr, /v2fly\/broken: the source has unreadable lines:\n {2}v2fly\/data\/broken:2: /)
  const unknown = spawnSync(process.execPath, [CLI, 'lists', 'extract', '--from', upstream, 'nextdns/chat', '--root', root], { encoding: 'utf8', timeout: 30_000 })
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /sources\/origins\.yaml has no entry "nextdns"/)
})
