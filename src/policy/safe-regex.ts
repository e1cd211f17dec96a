// Admits only regular expressions whose backtracking is bounded on DNS names. A rule's pattern runs
// against every query name, and clients choose the names, so a pattern that can backtrack
// exponentially (or polynomially to a high degree) is a denial of service. The check is syntactic
// and conservative: it rejects some harmless patterns rather than admit a dangerous one.
//
// Rejected: backreferences, lookaround, any quantifier on a group that contains a quantifier or an
// alternation (at any depth), patterns longer than 256 characters, and patterns whose estimated
// worst case exceeds BUDGET steps. The estimate multiplies, along a sequence, how many ways each
// quantifier can split the name: an unbounded quantifier over an atom that can match '.' can cover
// the whole 253-character name, one over an atom that cannot is confined to a 63-character label;
// alternatives add; a pattern not anchored with ^ is tried at each of 253 start positions. The model
// assumes what it is matched against is a valid name: at most 253 characters, labels of at most 63.

const MAX_PATTERN = 256
const MAX_NAME = 253
const MAX_LABEL = 63
/**
 * Worst-case steps admitted (~1M): an unanchored `.*`, an anchored `^.*[a-z]+[a-z]+`, an unanchored
 * `[a-z]+[a-z]+`; not an unanchored `.*.*` (~16M, some 25 ms on a hostile name on first run).
 */
const BUDGET = MAX_NAME * MAX_LABEL * MAX_LABEL

export const REGEX_REJECTED = 'regex rejected: '

/**
 * Compiles `pattern` (the text between the slashes of a `/pattern/` rule) without flags, or says why
 * it is refused. Names are matched lower-case without the trailing dot.
 */
export function compileSafeRegex (pattern: string): { re: RegExp } | { error: string } {
  if (pattern.length === 0) return { error: REGEX_REJECTED + 'empty pattern' }
  if (pattern.length > MAX_PATTERN) return { error: REGEX_REJECTED + `pattern longer than ${MAX_PATTERN} characters` }
  let re: RegExp
  try {
    re = new RegExp(pattern)
  } catch (err) {
    return { error: REGEX_REJECTED + (err as Error).message }
  }
  // The syntax is valid from here on, so the scanner below can be lenient about it.
  const scan: Scan = { p: pattern, i: 0 }
  try {
    const steps = topLevel(scan)
    if (steps > BUDGET) {
      return { error: REGEX_REJECTED + 'too many unbounded quantifiers: backtracking on a long name could take ' +
        `~${formatSteps(steps)} steps (limit ${formatSteps(BUDGET)}); anchor it with ^, use [^.] instead of . or bound the repeats` }
    }
  } catch (err) {
    if (err instanceof Rejected) return { error: REGEX_REJECTED + err.message }
    throw err
  }
  return { re }
}

class Rejected extends Error {}

interface Scan { readonly p: string, i: number }

/** What the scanner knows about a group, an alternation or a single atom. */
interface Info {
  /** Worst-case ways to match. */
  cost: number
  /** Contains a quantifier, at any depth. */
  quant: boolean
  /** Contains a '|', at any depth. */
  alt: boolean
  /** Can match a '.', so a repeat of it is not confined to one label. */
  dot: boolean
}

function topLevel (s: Scan): number {
  // Each top-level alternative is anchored or tried at every start position.
  let steps = 0
  for (;;) {
    const anchored = s.p.charCodeAt(s.i) === 0x5e // ^
    const seq = sequence(s)
    steps += (anchored ? 1 : MAX_NAME) * seq.cost
    if (s.i >= s.p.length) return steps
    s.i++ // '|' (a stray ')' cannot occur: the pattern compiled)
  }
}

function alternation (s: Scan): Info {
  const out: Info = { cost: 0, quant: false, alt: false, dot: false }
  for (;;) {
    const seq = sequence(s)
    out.cost += seq.cost
    out.quant ||= seq.quant
    out.alt ||= seq.alt
    out.dot ||= seq.dot
    if (s.i >= s.p.length || s.p[s.i] === ')') return out
    out.alt = true
    s.i++ // '|'
  }
}

function sequence (s: Scan): Info {
  const out: Info = { cost: 1, quant: false, alt: false, dot: false }
  while (s.i < s.p.length) {
    const c = s.p[s.i]
    if (c === '|' || c === ')') break
    const a = atom(s)
    const factor = quantifier(s, a)
    if (factor > 0) out.quant = true
    out.cost *= a.cost * (factor > 0 ? factor : 1)
    out.quant ||= a.quant
    out.alt ||= a.alt
    out.dot ||= a.dot
  }
  return out
}

/** Reads a quantifier after an atom, if any: 0 for none, else how many ways it can repeat. */
function quantifier (s: Scan, a: Info): number {
  const p = s.p
  const c = p[s.i]
  let factor: number
  const span = a.dot ? MAX_NAME : MAX_LABEL
  if (c === '*' || c === '+') {
    s.i++
    factor = span
  } else if (c === '?') {
    s.i++
    factor = 2
  } else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(s.i))
    if (m === null) return 0 // a literal '{'
    s.i += m[0].length
    const min = Number(m[1])
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3])
    factor = Math.min(max - min + 1, span)
  } else {
    return 0
  }
  if (p[s.i] === '?') s.i++ // lazy
  if (a.quant) throw new Rejected('nested quantifier can backtrack catastrophically')
  if (a.alt) throw new Rejected('quantified alternation can backtrack catastrophically')
  return factor
}

function atom (s: Scan): Info {
  const p = s.p
  const c = p[s.i++]
  if (c === '(') {
    if (p[s.i] === '?') {
      const next = p[s.i + 1]
      if (next === '=' || next === '!') throw new Rejected('lookahead is not allowed')
      if (next === '<' && (p[s.i + 2] === '=' || p[s.i + 2] === '!')) throw new Rejected('lookbehind is not allowed')
      if (next === ':') s.i += 2
      else if (next === '<') s.i = p.indexOf('>', s.i) + 1 // named group
    }
    const inner = alternation(s)
    s.i++ // ')'
    return inner
  }
  if (c === '[') return charClass(s)
  if (c === '\\') return escape(s)
  return { cost: 1, quant: false, alt: false, dot: c === '.' }
}

function escape (s: Scan): Info {
  const p = s.p
  const e = p[s.i++]
  let dot = false
  if (e >= '1' && e <= '9') throw new Rejected('backreferences are not allowed')
  if (e === 'k' && p[s.i] === '<') throw new Rejected('backreferences are not allowed')
  if (e === 'D' || e === 'W' || e === 'S' || e === '.') dot = true
  else if (e === 'x' || e === 'u' || e === '0') dot = escapeCode(s, e) === 0x2e
  return { cost: 1, quant: false, alt: false, dot }
}

/**
 * Consumes the rest of \xHH, \uHHHH or \0 (legacy octal, up to 3 digits) after its letter and
 * returns the code it denotes; a letter without its digits stands for itself (Annex B).
 */
function escapeCode (s: Scan, e: string): number {
  const p = s.p
  const digits = e === 'x' ? /^[0-9a-fA-F]{2}/ : e === 'u' ? /^[0-9a-fA-F]{4}/ : /^[0-7]{0,2}/
  const m = digits.exec(p.slice(s.i))?.[0] ?? ''
  s.i += m.length
  if (e === '0') return m === '' ? 0 : parseInt(m, 8)
  return m === '' ? e.charCodeAt(0) : parseInt(m, 16)
}

/** Reads a [...] class after its '['. It can match '.' unless it is known not to (conservatively). */
function charClass (s: Scan): Info {
  const p = s.p
  const negated = p[s.i] === '^'
  if (negated) s.i++
  let hasDot = false   // the class lists '.' (or a range or escape that covers it)
  let wide = false     // the class holds an escape we do not model (\D, \W, \S, ...)
  let prev = -1        // code of the previous single character, for ranges
  while (s.i < p.length) {
    let c = p[s.i]
    if (c === ']') break // also right after '[': '[]' is the empty class and '[^]' any character
    s.i++
    let code: number
    if (c === '\\') {
      c = p[s.i++]
      if (c === 'd' || c === 'w' || c === 's') { prev = -1; continue }
      if (c === 'D' || c === 'W' || c === 'S') { wide = true; prev = -1; continue }
      if (c === 'x' || c === 'u' || c === '0') {
        code = escapeCode(s, c)
      } else if (c === 'b') {
        code = 8
      } else {
        code = c.charCodeAt(0)
      }
    } else if (c === '-' && prev >= 0 && p[s.i] !== ']' && s.i < p.length) {
      // A range prev-next: read its upper end.
      let hi = p.charCodeAt(s.i++)
      if (hi === 0x5c) { // '\\'
        const e = p[s.i++]
        hi = e === 'x' || e === 'u' || e === '0' ? escapeCode(s, e) : e === 'b' ? 8 : e.charCodeAt(0)
      }
      if (prev <= 0x2e && hi >= 0x2e) hasDot = true
      prev = -1
      continue
    } else {
      code = c.charCodeAt(0)
    }
    if (code === 0x2e) hasDot = true
    prev = code
  }
  s.i++ // ']'
  // [^\W] cannot match '.', but an unmodelled escape in a negated class counts as 'can' anyway.
  const dot = negated ? (!hasDot || wide) : (hasDot || wide)
  return { cost: 1, quant: false, alt: false, dot }
}

function formatSteps (n: number): string {
  return n >= 1e6 ? `${Math.round(n / 1e5) / 10}M` : String(Math.round(n))
}
