// Reads an Ed25519 public key as admins write it (list signatures, see README "List updates"):
// a PEM block (`-----BEGIN PUBLIC KEY-----`, SPKI), the base64 of its DER, or the base64 of the raw
// 32-byte key (as `egressd lists keygen` prints it). Returns the key as SPKI PEM, or why not.

import { createPublicKey } from 'node:crypto'

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export function ed25519PublicKeyPem (text: string): { pem: string } | { error: string } {
  const trimmed = text.trim()
  try {
    let key
    if (trimmed.startsWith('-----BEGIN')) {
      if (trimmed.includes('PRIVATE KEY')) return { error: 'this is a private key; configure the public key (egressd lists keygen writes both)' }
      key = createPublicKey(trimmed)
    } else {
      if (!/^[A-Za-z0-9+/=\s]+$/.test(trimmed)) return { error: 'expected a PEM public key or base64' }
      const der = Buffer.from(trimmed, 'base64')
      key = createPublicKey({ key: der.length === 32 ? Buffer.concat([ED25519_SPKI_PREFIX, der]) : der, format: 'der', type: 'spki' })
    }
    if (key.asymmetricKeyType !== 'ed25519') return { error: `expected an Ed25519 key, got ${key.asymmetricKeyType ?? 'an unknown type'}` }
    return { pem: key.export({ format: 'pem', type: 'spki' }).toString() }
  } catch (err) {
    return { error: `not a usable public key: ${(err as Error).message}` }
  }
}
