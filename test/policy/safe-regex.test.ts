// compileSafeRegex: what it refuses and why, what it admits, and that admitted patterns run in
// bounded time on hostile names (each test() below is a first run, before V8 tiers the regex up).
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { compileSafeRegex } from '../../src/policy/safe-regex.js'

const TOO_MUCH = /^regex rejected: too many unbounded quantifiers: backtracking on a long name could take ~[\d.]+M steps \(limit 1M\)/

t.test('rejects patterns that can backtrack catastrophically', async t => {
  const cases: Array<[string, string | RegExp]> = [
    ['(a+)+$', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['(a|a)*', 'regex rejected: quantified alternation can backtrack catastrophically'],
    ['(.*a){10}', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['(\\w+\\s?)+$', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['((a+))?', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['(?:a*)*b', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['(?<n>a+)+b', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['(x(a+)y){1,3}', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['(a+?)+?', 'regex rejected: nested quantifier can backtrack catastrophically'],
    ['((a|b))+', 'regex rejected: quantified alternation can backtrack catastrophically'],
    ['(x|y){2}', 'regex rejected: quantified alternation can backtrack catastrophically'],
    ['(a)\\1', 'regex rejected: backreferences are not allowed'],
    ['(?<n>a)\\k<n>', 'regex rejected: backreferences are not allowed'],
    ['(?=ads)a', 'regex rejected: lookahead is not allowed'],
    ['(?!ads)a', 'regex rejected: lookahead is not allowed'],
    ['(?<=ads)a', 'regex rejected: lookbehind is not allowed'],
    ['(?<!ads)a', 'regex rejected: lookbehind is not allowed'],
    ['a'.repeat(257), 'regex rejected: pattern longer than 256 characters'],
    ['', 'regex rejected: empty pattern'],
    ['[', 'regex rejected: Invalid regular expression: /[/: Unterminated character class'],
    ['a**', 'regex rejected: Invalid regular expression: /a**/: Nothing to repeat'],
    // Polynomial: quantifiers in sequence that can split the same characters many ways.
    ['.*.*x', TOO_MUCH],
    ['^.*.*.*x', TOO_MUCH],
    ['a.*b.*c', TOO_MUCH],
    ['[^x]+[^x]+x', TOO_MUCH],
    ['\\S+\\S+x', TOO_MUCH],
    ['[!-/]+[!-/]+x', TOO_MUCH],
    ['[\\x2e]+[a.]+x', TOO_MUCH],
    ['\\x2e+\\056+x', TOO_MUCH],
    ['[a-z]+[a-z]+[a-z]+x', TOO_MUCH],
    ['^[a-z.]+[a-z.]+[a-z.]+x', TOO_MUCH],
    ['.*x|.*y|.*[a-z]+z', TOO_MUCH]
  ]
  for (const [pattern, message] of cases) {
    const r = compileSafeRegex(pattern)
    if (!('error' in r)) { t.fail(`${pattern} was accepted`); continue }
    if (typeof message === 'string') t.equal(r.error, message, pattern)
    else t.match(r.error, message, pattern)
  }
})

// Admitted patterns, with a name each must match (and one it must not).
const ACCEPTED: Array<[string, string, string]> = [
  ['^tracker[0-9]+\\.example\\.com$', 'tracker42.example.com', 'tracker.example.com'],
  ['^ads?\\.', 'ad.example.com', 'adds.example.com'],
  ['(^|\\.)doubleclick\\.net$', 'ad.doubleclick.net', 'notdoubleclick.net'],
  ['.*x', 'a.x', 'a.b'],
  ['^.*.*x', 'a.x', 'a.b'],
  ['[a-z]+[a-z]+x', 'abx.com', 'ax.com'],
  ['[0-9]+[0-9]+x', '12x.com', '1x.com'],
  ['^[a-z]+[a-z]+[a-z]+x', 'abcx.com', 'abx.com'],
  ['[^.]+[^.]+x', 'abx.com', 'x.com'],
  ['a{0,60}a{0,60}x', 'aax.com', 'a.com'],
  ['^[a-z0-9-]+\\.tracking\\.[a-z]+$', 'eu-1.tracking.net', 'a.b.tracking.net'],
  ['(ab)+c', 'ababc.com', 'ac.com'],
  ['(?:ab){2,3}c$', 'x.ababc', 'x.abc'],
  ['^(?<kind>ads|track)\\d*\\.', 'track7.example.com', 'tracks.example.com'],
  ['\\d+\\.in-addr\\.arpa$', '4.3.2.1.in-addr.arpa', 'in-addr.arpa'],
  ['^[^.]*telemetry[^.]*\\.', 'x-telemetry-y.example.com', 'example.telemetry'],
  ['a'.repeat(256), 'a'.repeat(256), 'a'.repeat(255)]
]

t.test('accepts bounded patterns, compiled without flags', async t => {
  for (const [pattern, yes, no] of ACCEPTED) {
    const r = compileSafeRegex(pattern)
    if ('error' in r) { t.fail(`${pattern}: ${r.error}`); continue }
    t.equal(r.re.source, new RegExp(pattern).source, pattern)
    t.equal(r.re.flags, '', `${pattern}: no flags`)
    t.ok(r.re.test(yes), `${pattern} matches ${yes}`)
    t.notOk(r.re.test(no), `${pattern} does not match ${no}`)
  }
})

/** A name of up to 253 characters, labels of up to 63, repeating `unit`. */
function hostile (unit: string, tail = ''): string {
  const labels: string[] = []
  let total = tail.length
  for (;;) {
    const room = 253 - total - (labels.length > 0 || tail !== '' ? 1 : 0)
    if (room <= 0) break
    labels.push(unit.repeat(Math.ceil(63 / unit.length)).slice(0, Math.min(63, room)))
    total += labels[labels.length - 1].length + (labels.length > 1 || tail !== '' ? 1 : 0)
  }
  return tail === '' ? labels.join('.') : labels.join('.') + '.' + tail
}

t.test('accepted patterns stay fast on hostile 253-character names', async t => {
  const names = [
    hostile('a'), hostile('1'), hostile('a1-'), hostile('ab'), hostile('x'), hostile('_-'),
    hostile('tracker1'), hostile('ads'), hostile('doubleclick'), hostile('a', 'x'),
    'tracker' + '1'.repeat(56) + '.' + hostile('1').slice(64),
    'ads.'.repeat(63) + 'a',
    'doubleclick.'.repeat(21).slice(0, 251)
  ]
  for (const n of names) {
    t.ok(n.length <= 253 && n.split('.').every(l => l.length > 0 && l.length <= 63), `valid hostile name (${n.length} chars)`)
  }
  for (const [pattern] of ACCEPTED) {
    let worst = 0
    for (const n of names) {
      const r = compileSafeRegex(pattern)
      if ('error' in r) { t.fail(pattern); break }
      const start = performance.now()
      r.re.test(n)
      worst = Math.max(worst, performance.now() - start)
    }
    t.ok(worst < 50, `${pattern}: worst ${worst.toFixed(2)} ms`)
  }
})
