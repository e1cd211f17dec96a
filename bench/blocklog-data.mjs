// The synthetic block-log traffic the block-log benchmarks share: a deterministic generator
// (xorshift32, fixed seed) and a skewed pick (a few clients and names much more frequent than the
// rest, as on a real LAN) over 13 categories × 400 names and 5,000 clients.

let seed = 2463534242
export const rnd = () => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed / 4294967296 }
export const skewed = n => Math.floor(n * rnd() ** 3)
export const categories = ['telegram', 'whatsapp', 'viber', 'discord', 'teams', 'skype', 'snapchat', 'threema', 'wechat', 'gmail', 'signal', 'zoom', 'doh-bypass']
export const names = categories.map(c => Array.from({ length: 400 }, (_, i) => `${i % 7 === 0 ? 'www.' : ''}h${i}.${c}-cdn${i % 13}.example`))
export const clients = Array.from({ length: 5000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${1 + (i % 250)}`)
