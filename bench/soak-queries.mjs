// Streams bench/soak.sh's query mix to stdout in dnsperf's input format ("name A" lines), for
// dnsperf to read from a pipe: no file of rate x duration lines, and the missed names never repeat.
//
//   node bench/soak-queries.mjs MIX ENTRIES CACHED MAX_LINES | dnsperf ... (reads stdin)
// MIX "B:C:M" weights of blocked, cached and missed queries (e.g. 40:40:20):
//   blocked: 80 % a random label under a random blocklist entry, 20 % the entry itself (NXDOMAIN);
//   cached:  one of the CACHED allowed names, warmed up before the run (answered from the cache);
//   missed:  a name never asked before (forwarded to the upstream, then cached).
// Bounded: ends after MAX_LINES lines (dnsperf then stops at the end of its input), and exits
// quietly when dnsperf closes the pipe (its -l time limit).

import { blockedEntry, cachedName, missedName, prng } from './soak-data.mjs'

const [mixArg = '40:40:20', entriesArg = '100000', cachedArg = '1000', maxArg = '1000000'] = process.argv.slice(2)
const w = mixArg.split(':').map(Number)
if (w.length !== 3 || w.some(x => !(x >= 0)) || w[0] + w[1] + w[2] <= 0) {
  console.error(`soak-queries: MIX must be B:C:M weights, got ${mixArg}`); process.exit(2)
}
const total = w[0] + w[1] + w[2]
const pBlocked = w[0] / total, pCached = (w[0] + w[1]) / total
const entries = Number(entriesArg), cached = Number(cachedArg), max = Number(maxArg)

const rnd = prng(0x50a4)
const tag = Math.random().toString(36).slice(2, 8)
const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
function label () {
  let s = ''
  for (let i = 0; i < 6; i++) s += alphabet[Math.floor(rnd() * alphabet.length)]
  return s
}

process.stdout.on('error', e => { process.exit(e.code === 'EPIPE' ? 0 : 1) })

let n = 0, missed = 0
function chunk () {
  let s = ''
  for (let i = 0; i < 2000 && n < max; i++, n++) {
    const r = rnd()
    if (r < pBlocked) {
      const entry = blockedEntry(Math.floor(rnd() * entries))
      s += (rnd() < 0.8 ? `${label()}.${entry}` : entry) + ' A\n'
    } else if (r < pCached) {
      s += cachedName(Math.floor(rnd() * cached)) + ' A\n'
    } else {
      s += missedName(tag, missed++) + ' A\n'
    }
  }
  return s
}

function pump () {
  while (n < max) {
    if (!process.stdout.write(chunk())) { process.stdout.once('drain', pump); return }
  }
  process.stdout.end()
}
pump()
