// bench/soak.sh's chart: the sampler's CSV as one SVG, three panels over time: memory (RSS, V8
// heap used, external memory: buffers), event-loop lag (p50, p99, and the 50 ms limit), block
// log (events dropped, cumulative, and queue depth). No dependencies: the SVG is written as text.
//
//   node bench/soak-chart.mjs CSV SVG [TITLE] [LAG_LIMIT_MS=50]

import { readFileSync, writeFileSync } from 'node:fs'

const [csvPath, svgPath, title = 'egressd soak', limitArg = '50'] = process.argv.slice(2)
if (svgPath === undefined) { console.error('usage: soak-chart.mjs CSV SVG [TITLE] [LAG_LIMIT_MS]'); process.exit(2) }
const lagLimit = Number(limitArg)

const [head, ...lines] = readFileSync(csvPath, 'utf8').trim().split('\n')
const cols = head.split(',')
const rows = lines.map(l => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])))
const num = v => v === undefined || v === 'n/a' || v === '' ? undefined : Number(v)
const series = key => rows.map(r => [num(r.t_s), num(r[key])])

const W = 820, PW = 600, PH = 150, LEFT = 80, TOP = 44, GAP = 46
const tMax = Math.max(1, ...rows.map(r => num(r.t_s) ?? 0))
const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Round tick step for a range: 1, 2 or 5 times a power of ten, about `n` ticks. */
function step (range, n) {
  const raw = range / n
  const p = 10 ** Math.floor(Math.log10(raw))
  return [1, 2, 5, 10].map(m => m * p).find(s => s >= raw)
}

const out = []
out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${TOP + 3 * (PH + GAP) + 10}" font-family="sans-serif" font-size="11">`)
out.push(`<rect width="100%" height="100%" fill="white"/>`)
out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`)

const xUnit = tMax > 180 ? 60 : 1
const xLabel = xUnit === 60 ? 'minutes' : 'seconds'
function panel (index, name, unit, lines, limit) {
  const y0 = TOP + index * (PH + GAP)
  const values = lines.flatMap(l => l.points.map(p => p[1]).filter(v => v !== undefined && Number.isFinite(v)))
  if (limit !== undefined) values.push(limit * 1.1)
  let vMax = Math.max(1, ...values)
  const vs = step(vMax, 4)
  vMax = Math.ceil(vMax / vs) * vs
  const X = t => LEFT + t / tMax * PW
  const Y = v => y0 + PH - v / vMax * PH
  out.push(`<text x="${LEFT}" y="${y0 - 8}" font-weight="bold">${esc(name)}</text>`)
  out.push(`<rect x="${LEFT}" y="${y0}" width="${PW}" height="${PH}" fill="none" stroke="#999"/>`)
  for (let v = 0; v <= vMax + 1e-9; v += vs) {
    out.push(`<line x1="${LEFT}" x2="${LEFT + PW}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#eee"/>`)
    out.push(`<text x="${LEFT - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${+v.toPrecision(6)}</text>`)
  }
  out.push(`<text transform="translate(${LEFT - 52},${y0 + PH / 2}) rotate(-90)" text-anchor="middle">${esc(unit)}</text>`)
  const ts = step(tMax / xUnit, 8)
  for (let t = 0; t <= tMax / xUnit + 1e-9; t += ts) {
    out.push(`<text x="${X(t * xUnit).toFixed(1)}" y="${y0 + PH + 14}" text-anchor="middle">${+t.toPrecision(6)}</text>`)
  }
  if (index === 2) out.push(`<text x="${LEFT + PW / 2}" y="${y0 + PH + 30}" text-anchor="middle">${xLabel} since the load started</text>`)
  if (limit !== undefined) {
    out.push(`<line x1="${LEFT}" x2="${LEFT + PW}" y1="${Y(limit).toFixed(1)}" y2="${Y(limit).toFixed(1)}" stroke="#d62728" stroke-dasharray="6,4"/>`)
    out.push(`<text x="${LEFT + PW - 4}" y="${(Y(limit) - 4).toFixed(1)}" text-anchor="end" fill="#d62728">limit ${limit} ${esc(unit)}</text>`)
  }
  lines.forEach((l, i) => {
    // a missing value (n/a) breaks the line
    let d = '', pen = 'M'
    for (const [t, v] of l.points) {
      if (t === undefined || v === undefined || !Number.isFinite(v)) { pen = 'M'; continue }
      d += `${pen}${X(t).toFixed(1)},${Y(v).toFixed(1)} `
      pen = 'L'
    }
    if (d !== '') out.push(`<path d="${d.trim()}" fill="none" stroke="${l.color}" stroke-width="1.8"${l.dash ? ` stroke-dasharray="${l.dash}"` : ''}/>`)
    const lx = LEFT + PW + 10, ly = y0 + 14 + i * 16
    out.push(`<line x1="${lx}" x2="${lx + 16}" y1="${ly - 4}" y2="${ly - 4}" stroke="${l.color}" stroke-width="2"${l.dash ? ` stroke-dasharray="${l.dash}"` : ''}/>`)
    out.push(`<text x="${lx + 20}" y="${ly}">${esc(l.name)}${l.points.every(p => p[1] === undefined) ? ' (n/a)' : ''}</text>`)
  })
}

panel(0, 'Memory', 'MB', [
  { name: 'RSS', color: '#1f77b4', points: series('rss_mb') },
  { name: 'heap used', color: '#ff7f0e', points: series('heap_used_mb') },
  { name: 'external', color: '#8c564b', points: series('external_mb'), dash: '3,3' }
])
panel(1, 'Event-loop lag (per interval)', 'ms', [
  { name: 'p99', color: '#2ca02c', points: series('lag_p99_ms') },
  { name: 'p50', color: '#9467bd', points: series('lag_p50_ms'), dash: '3,3' }
], lagLimit)
panel(2, 'Block log', 'events', [
  { name: 'dropped (total)', color: '#d62728', points: series('events_dropped') },
  { name: 'queue depth', color: '#7f7f7f', points: series('blocklog_queue'), dash: '3,3' }
])
out.push('</svg>')
writeFileSync(svgPath, out.join('\n') + '\n')
