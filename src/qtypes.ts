// DNS record type mnemonics and numbers, shared by the block log (filters, rows), the policy's
// `$dnstype=` rule modifier and the CLI: one table, so every place spells a type the same way.

const QTYPES: Readonly<Record<string, number>> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, NAPTR: 35,
  DS: 43, SSHFP: 44, RRSIG: 46, NSEC: 47, DNSKEY: 48, TLSA: 52, SVCB: 64, HTTPS: 65, ANY: 255, CAA: 257
}
const QTYPE_NAMES = new Map(Object.entries(QTYPES).map(([k, v]) => [v, k]))

/** 28 → 'AAAA'; a type without a mnemonic here → 'TYPE<n>'. */
export function qtypeName (n: number): string { return QTYPE_NAMES.get(n) ?? `TYPE${n}` }

/** 'AAAA', 'aaaa', 'TYPE28' or '28' → 28; undefined if not a type. */
export function qtypeNumber (text: string): number | undefined {
  const t = text.trim().toUpperCase()
  if (/^\d{1,5}$/.test(t)) { const n = Number(t); return n <= 65535 ? n : undefined }
  const m = /^TYPE(\d{1,5})$/.exec(t)
  if (m !== null) { const n = Number(m[1]); return n <= 65535 ? n : undefined }
  return QTYPES[t]
}
