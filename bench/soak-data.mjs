// Names for bench/soak.sh, deterministic (fixed seed): the blocklist given to egressd, the allowed
// names that stay cached, and the query mix that soak-queries.mjs streams into dnsperf.
//
//   node bench/soak-data.mjs DIR [BLOCKLIST_ENTRIES=100000] [CACHED_NAMES=1000]
// writes DIR/blocklist.txt (plain, one domain per line: blk-NNNNNN.soak.test blocks itself and
// every name under it) and DIR/cached.txt (dnsperf input: cNNNN.cached.soak.test A, the warm-up).

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** mulberry32: a small seeded PRNG, so every run queries the same names in the same order. */
export function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const blockedEntry = i => `blk-${String(i).padStart(6, '0')}.soak.test`
export const cachedName = i => `c${String(i).padStart(4, '0')}.cached.soak.test`
/** A name that no run asks twice: TAG differs per run, N counts up. */
export const missedName = (tag, n) => `m${tag}-${n}.miss.soak.test`

const isMain = import.meta.url === `file://${process.argv[1]}`
if (isMain) {
  const [dir, entriesArg = '100000', cachedArg = '1000'] = process.argv.slice(2)
  if (dir === undefined) { console.error('usage: soak-data.mjs DIR [BLOCKLIST_ENTRIES] [CACHED_NAMES]'); process.exit(2) }
  const entries = Number(entriesArg), cached = Number(cachedArg)
  if (!(entries >= 1 && entries <= 999999) || !(cached >= 1 && cached <= 9999)) {
    console.error('soak-data: BLOCKLIST_ENTRIES 1..999999, CACHED_NAMES 1..9999'); process.exit(2)
  }
  const bl = ['# bench/soak.sh blocklist: each entry blocks itself and every name under it']
  for (let i = 0; i < entries; i++) bl.push(blockedEntry(i))
  writeFileSync(join(dir, 'blocklist.txt'), bl.join('\n') + '\n')
  const c = []
  for (let i = 0; i < cached; i++) c.push(`${cachedName(i)} A`)
  writeFileSync(join(dir, 'cached.txt'), c.join('\n') + '\n')
}
