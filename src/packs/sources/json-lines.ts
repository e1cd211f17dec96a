// A strict JSON reader (RFC 8259) that keeps the 1-based line each value starts on, so a source
// parser can say `file:line` for a value inside a JSON document (JSON.parse gives no positions).
// Small on purpose: the documents it reads are tens of kilobytes, read once per build or update.

export type JsonNode =
  | { readonly kind: 'object', readonly line: number, readonly entries: ReadonlyMap<string, JsonNode> }
  | { readonly kind: 'array', readonly line: number, readonly items: readonly JsonNode[] }
  | { readonly kind: 'string', readonly line: number, readonly value: string }
  | { readonly kind: 'number', readonly line: number, readonly value: number }
  | { readonly kind: 'boolean', readonly line: number, readonly value: boolean }
  | { readonly kind: 'null', readonly line: number }

export type JsonRead = { readonly node: JsonNode } | { readonly error: string, readonly line: number }

const MAX_DEPTH = 64

/** Reads a whole document; a leading UTF-8 BOM is accepted. Never throws. */
export function readJson (text: string): JsonRead {
  const r = new Reader(text)
  try {
    r.space()
    const node = r.value(0)
    r.space()
    if (r.pos < text.length) r.fail(`unexpected ${r.what()} after the end of the document`)
    return { node }
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { error: err.message, line: err.line }
    throw err
  }
}

class JsonSyntaxError extends Error {
  readonly line: number
  constructor (message: string, line: number) {
    super(message)
    this.line = line
  }
}

class Reader {
  readonly text: string
  pos: number
  line = 1

  constructor (text: string) {
    this.text = text
    this.pos = text.charCodeAt(0) === 0xfeff ? 1 : 0
  }

  fail (message: string): never {
    throw new JsonSyntaxError(`not JSON: ${message}`, this.line)
  }

  what (): string {
    if (this.pos >= this.text.length) return 'end of file'
    const c = this.text.charCodeAt(this.pos)
    return c >= 0x20 && c < 0x7f ? `'${this.text[this.pos]}'` : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`
  }

  space (): void {
    const t = this.text
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos)
      if (c === 0x0a) this.line++
      else if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return
      this.pos++
    }
  }

  value (depth: number): JsonNode {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`)
    const t = this.text
    const line = this.line
    const c = t.charCodeAt(this.pos)
    if (c === 0x7b) return this.object(depth, line) // {
    if (c === 0x5b) return this.array(depth, line) // [
    if (c === 0x22) return { kind: 'string', line, value: this.string() }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return { kind: 'number', line, value: this.number() }
    for (const [word, node] of [['true', { kind: 'boolean', line, value: true }], ['false', { kind: 'boolean', line, value: false }], ['null', { kind: 'null', line }]] as const) {
      if (t.startsWith(word, this.pos)) { this.pos += word.length; return node }
    }
    return this.fail(`unexpected ${this.what()} where a value should be`)
  }

  object (depth: number, line: number): JsonNode {
    this.pos++
    const entries = new Map<string, JsonNode>()
    this.space()
    if (this.text.charCodeAt(this.pos) === 0x7d) { this.pos++; return { kind: 'object', line, entries } }
    for (;;) {
      this.space()
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail(`unexpected ${this.what()} where a member name should be`)
      const key = this.string()
      this.space()
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail(`unexpected ${this.what()} where ':' should be`)
      this.pos++
      this.space()
      entries.set(key, this.value(depth + 1))
      this.space()
      const c = this.text.charCodeAt(this.pos)
      this.pos++
      if (c === 0x7d) return { kind: 'object', line, entries }
      if (c !== 0x2c) { this.pos--; this.fail(`unexpected ${this.what()} where ',' or '}' should be`) }
    }
  }

  array (depth: number, line: number): JsonNode {
    this.pos++
    const items: JsonNode[] = []
    this.space()
    if (this.text.charCodeAt(this.pos) === 0x5d) { this.pos++; return { kind: 'array', line, items } }
    for (;;) {
      this.space()
      items.push(this.value(depth + 1))
      this.space()
      const c = this.text.charCodeAt(this.pos)
      this.pos++
      if (c === 0x5d) return { kind: 'array', line, items }
      if (c !== 0x2c) { this.pos--; this.fail(`unexpected ${this.what()} where ',' or ']' should be`) }
    }
  }

  string (): string {
    const t = this.text
    this.pos++
    let out = ''
    let from = this.pos
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string')
      const c = t.charCodeAt(this.pos)
      if (c === 0x22) {
        out += t.slice(from, this.pos)
        this.pos++
        return out
      }
      if (c < 0x20) this.fail(`control character ${this.what()} inside a string`)
      if (c !== 0x5c) { this.pos++; continue }
      out += t.slice(from, this.pos)
      const e = t[this.pos + 1]
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }
      if (e !== undefined && e in simple) {
        out += simple[e]
        this.pos += 2
      } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(t.slice(this.pos + 2, this.pos + 6))) {
        out += String.fromCharCode(parseInt(t.slice(this.pos + 2, this.pos + 6), 16))
        this.pos += 6
      } else {
        this.pos++
        this.fail(`bad escape \\${e ?? ''} inside a string`)
      }
      from = this.pos
    }
  }

  number (): number {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
    m.lastIndex = this.pos
    const found = m.exec(this.text)
    if (found === null) this.fail(`unexpected ${this.what()} where a number should be`)
    this.pos += found[0].length
    return Number(found[0])
  }
}
