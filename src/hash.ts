// 32-bit string hashing shared by the answer cache's keys (dns/wire.ts) and the domain index
// (policy/domain-index.ts): FNV-1a steps, taken one character at a time by the callers (each walks
// its name its own way), and a finalizer that spreads the bits.

export const FNV_OFFSET = 0x811c9dc5 | 0
export const FNV_PRIME = 0x01000193

/**
 * FNV-1a's low bits are weakly mixed (a multiply never carries high bits down), and tables are
 * indexed by the low bits, so names that differ in a few digits (blk-040057.bench.test) would pile
 * up in long probe runs. murmur3's finalizer spreads them. Never 0: tables use 0 for an empty slot.
 */
export function finishHash (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h === 0 ? 1 : h
}
