// A strict parser of the Prometheus text exposition format (0.0.4), for tests of /metrics: every
// sample belongs to a family announced by HELP and TYPE, names and labels are well formed, label
// values correctly escaped, no series twice, histograms cumulative with +Inf = _count.

export interface Family { name: string, type: string, help: string, samples: Array<{ name: string, labels: Record<string, string>, value: number }> }

/** Parses the text format strictly; throws with the line number on anything malformed. */
export function parseExposition (text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
  let current: Family | undefined
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, i) => {
    const fail = (m: string): never => { throw new Error(`line ${i + 1}: ${m}: ${line}`) }
    if (line.startsWith('# HELP ')) {
      const m = /^# HELP (\S+) (.*)$/.exec(line) ?? fail('bad HELP')
      if (!NAME.test(m[1])) fail('bad metric name')
      if (families.has(m[1])) fail('family announced twice')
      current = { name: m[1], type: '', help: m[2], samples: [] }
      families.set(m[1], current)
      return
    }
    if (line.startsWith('# TYPE ')) {
      const m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? fail('bad TYPE')
      if (current === undefined || current.name !== m[1] || current.type !== '' || current.samples.length > 0) return fail('TYPE must follow its HELP, before samples')
      current.type = m[2]
      return
    }
    if (line === '') return // the format allows empty lines (prom-client puts one between families)
    if (line.startsWith('#')) fail('unexpected comment')
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line) ?? fail('bad sample')
    const [, name, , body, valueText] = m
    if (current === undefined || current.type === '') fail('sample outside a family')
    const fam = current as Family
    const allowed = fam.type === 'histogram' ? [`${fam.name}_bucket`, `${fam.name}_sum`, `${fam.name}_count`] : [fam.name]
    if (!allowed.includes(name)) fail(`sample ${name} does not belong to family ${fam.name}`)
    const labels: Record<string, string> = {}
    if (body !== undefined) {
      let rest = body
      while (rest.length > 0) {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/.exec(rest) ?? fail('bad label')
        if (lm[1] in labels) fail('label twice')
        labels[lm[1]] = lm[2].replace(/\\(["\\n])/g, (_x, c: string) => c === 'n' ? '\n' : c)
        rest = rest.slice(lm[0].length)
      }
    }
    // prom-client writes NaN as "Nan"; Prometheus reads it (Go's ParseFloat ignores the case of NaN).
    if (!/^([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]Inf|NaN|Nan)$/.test(valueText)) fail('bad value')
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : /^nan$/i.test(valueText) ? NaN : Number(valueText)
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`
    if (seen.has(key)) fail('series twice')
    seen.add(key)
    if (fam.type === 'counter' && !(value >= 0)) fail('negative counter')
    fam.samples.push({ name, labels, value })
  })
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue
    const series = new Map<string, Family['samples']>()
    for (const s of f.samples) {
      const { le: _le, ...rest } = s.labels
      const k = JSON.stringify(rest)
      series.set(k, [...(series.get(k) ?? []), s])
    }
    for (const [k, ss] of series) {
      const buckets = ss.filter(s => s.name.endsWith('_bucket'))
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i].value < buckets[i - 1].value) throw new Error(`${f.name} ${k}: buckets not cumulative`)
        if (Number(buckets[i].labels.le.replace('+Inf', 'Infinity')) <= Number(buckets[i - 1].labels.le)) throw new Error(`${f.name} ${k}: le not increasing`)
      }
      const inf = buckets.at(-1)
      const count = ss.find(s => s.name.endsWith('_count'))
      if (inf?.labels.le !== '+Inf' || count === undefined || inf.value !== count.value) throw new Error(`${f.name} ${k}: +Inf bucket must equal _count`)
    }
  }
  return families
}

/** A sample's value (0 when the family has no such sample); throws when the family is missing. */
export const value = (f: Map<string, Family>, name: string, labels: Record<string, string> = {}, sample = name): number => {
  const fam = f.get(name)
  if (fam === undefined) throw new Error(`no family ${name}`)
  const s = fam.samples.find(x => x.name === sample && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
  return s?.value ?? 0
}
