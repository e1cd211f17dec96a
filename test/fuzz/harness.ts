// The fuzz harness shared by test/fuzz/*.test.ts: runs a fast-check property seeded and bounded
// (reproducible in `npm test`), replays the kept failures first, and keeps every new failure.
//
// - Seed: FUZZ_SEED when set, else a fixed seed per property (npm test is reproducible). A long run
//   (bench/fuzz.sh) sets FUZZ_SEED to a random value and prints it; each property's seed is
//   FUZZ_SEED + a hash of its name, printed on failure with the replay path.
// - Runs: FUZZ_RUNS when set, else the property's own small count.
// - Corpus: test/fuzz/corpus/<target>/<property>/*.json, each `{ "input": ... }` (buffers written as
//   { "$hex": "..." }), replayed before any generated input. A failing input (shrunk) is written
//   there automatically (file named by its hash, so a failure is kept once): commit it.
// - Time: every input is timed; one taking longer than `maxMsPerInput` fails the property; an
//   async one that never settles fails after twice that (a hang in synchronous code is caught by
//   tap's per-file timeout instead).

import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import fc from 'fast-check'

export { fc }

const CORPUS = join(dirname(fileURLToPath(import.meta.url)), 'corpus')

interface TapLike {
  test (name: string, fn: (t: TapLike) => Promise<void> | void): unknown
  pass (message: string): void
  fail (message: string): void
  comment (...message: unknown[]): void
}

export interface FuzzOptions<T> {
  /** Folder under corpus/: the code under test (`dns-query`, `list-parsers`, ...). */
  readonly target: string
  /** Folder under the target: the property (kebab-case); also the tap subtest name. */
  readonly name: string
  readonly arb: fc.Arbitrary<T>
  /** Generated runs in npm test (FUZZ_RUNS overrides). */
  readonly runs: number
  /** Share of FUZZ_RUNS this property runs in a long run (default 1; slow properties less). */
  readonly scale?: number
  /** Throws (or returns false) when the property does not hold. */
  readonly check: (input: T) => void | boolean | Promise<void | boolean>
  /** Longest time one input may take (default 500 ms). */
  readonly maxMsPerInput?: number
  /** The property is async (its check returns a promise). */
  readonly async?: boolean
}

/** What a failed check threw, as text: `Error: message` for an Error, inspected for anything else. */
function thrownText (thrown: unknown): string {
  return thrown instanceof Error ? String(thrown) : thrown === undefined ? '' : typeof thrown === 'string' ? thrown : inspect(thrown)
}

/** FNV-1a of the name: a distinct, stable seed offset per property. */
function nameHash (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** `own` in npm test; with FUZZ_RUNS, that many times `scale` (never fewer than `own`). */
export function fuzzRuns (own: number, scale = 1): number {
  const env = process.env.FUZZ_RUNS
  return env !== undefined && env !== '' ? Math.max(own, Math.round(Number(env) * scale)) : own
}

function seedFor (name: string): number {
  const env = process.env.FUZZ_SEED
  const base = env !== undefined && env !== '' ? Number(env) : 20261207
  return (base + nameHash(name)) | 0
}

// --- corpus encoding: JSON, with byte arrays as hex ---

export function encode (v: unknown): unknown {
  if (v instanceof Uint8Array) return { $hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') }
  if (Array.isArray(v)) return v.map(encode)
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = encode(x)
    return out
  }
  if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) }
  if (v === undefined) return { $undefined: true }
  return v
}

export function decode (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    if (typeof o.$hex === 'string' && Object.keys(o).length === 1) return Buffer.from(o.$hex, 'hex')
    if (typeof o.$number === 'string' && Object.keys(o).length === 1) return Number(o.$number)
    if (o.$undefined === true && Object.keys(o).length === 1) return undefined
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(o)) Object.defineProperty(out, k, { value: decode(x), enumerable: true, writable: true, configurable: true })
    return out
  }
  return v
}

function corpusDir (target: string, name: string): string {
  return join(CORPUS, target, name)
}

/** The kept inputs of one property, oldest first by file name. */
export function loadCorpus (target: string, name: string): Array<{ file: string, input: unknown }> {
  const dir = corpusDir(target, name)
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter(f => f.endsWith('.json')).sort().map(f => {
    const json = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { input: unknown }
    return { file: join(target, name, f), input: decode(json.input) }
  })
}

/** Writes a failing input into the corpus (once: the file is named by its content's hash). */
export function keepFailure (target: string, name: string, input: unknown, note: string): string {
  const dir = corpusDir(target, name)
  mkdirSync(dir, { recursive: true })
  const body = JSON.stringify({ input: encode(input) })
  const file = join(dir, createHash('sha256').update(body).digest('hex').slice(0, 16) + '.json')
  if (!existsSync(file)) writeFileSync(file, JSON.stringify({ note, input: encode(input) }, null, 1) + '\n')
  return file
}

function timed<T> (check: FuzzOptions<T>['check'], maxMs: number, isAsync: boolean): (input: T) => void | boolean | Promise<void | boolean> {
  if (isAsync) {
    return async (input: T) => {
      const t0 = performance.now()
      const r = await check(input)
      const ms = performance.now() - t0
      if (ms > maxMs) throw new Error(`took ${ms.toFixed(1)} ms (limit ${maxMs} ms)`)
      return r
    }
  }
  return (input: T) => {
    const t0 = performance.now()
    const r = check(input)
    const ms = performance.now() - t0
    if (ms > maxMs) throw new Error(`took ${ms.toFixed(1)} ms (limit ${maxMs} ms)`)
    return r
  }
}

/**
 * One fuzz property as a tap subtest: the corpus first (each input its own assertion), then
 * `runs` generated inputs. A failure is shrunk, kept in the corpus and reported with its seed.
 */
export function fuzz<T> (t: TapLike, o: FuzzOptions<T>): void {
  t.test(o.name, async t => {
    const maxMs = o.maxMsPerInput ?? 500
    const isAsync = o.async === true
    const run = timed(o.check, maxMs, isAsync)
    for (const { file, input } of loadCorpus(o.target, o.name)) {
      try {
        const r = await run(input as T)
        if (r === false) t.fail(`corpus ${file}: property is false`)
        else t.pass(`corpus ${file}`)
      } catch (err) {
        t.fail(`corpus ${file}: ${(err as Error)?.stack ?? String(err)}`)
      }
    }
    const seed = seedFor(`${o.target}/${o.name}`)
    const numRuns = fuzzRuns(o.runs, o.scale)
    // An async run that never settles fails (as a counterexample) instead of hanging the file.
    const params = isAsync ? { seed, numRuns, timeout: maxMs * 2 } : { seed, numRuns }
    const t0 = performance.now()
    const details = isAsync
      ? await fc.check(fc.asyncProperty(o.arb, run as (x: T) => Promise<void | boolean>), params)
      : fc.check(fc.property(o.arb, run as (x: T) => void | boolean), params)
    const ms = performance.now() - t0
    if (details.failed) {
      const input = details.counterexample?.[0]
      const file = details.counterexample === null ? '(no counterexample)' : keepFailure(o.target, o.name, input, thrownText(details.errorInstance).slice(0, 500))
      t.fail(`${o.target}/${o.name} failed (kept in ${file}; replay: FUZZ_SEED=${process.env.FUZZ_SEED ?? ''} seed ${details.seed} path ${details.counterexamplePath ?? ''})\n` + fc.defaultReportMessage(details) +
        `\nerror: ${(details.errorInstance as Error | undefined)?.stack ?? String(details.errorInstance)}`)
    } else {
      t.pass(`${numRuns} generated inputs, seed ${seed}, ${ms.toFixed(0)} ms`)
    }
  })
}
