// Detached Ed25519 signatures of list files (node:crypto). A signature file holds the base64 of the
// 64-byte signature over the exact bytes of the list (a raw 64-byte file is accepted too). Keys are
// PEM files: the private key PKCS#8, the public key SPKI (or base64 as config/public-key.ts reads).

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { ed25519PublicKeyPem } from '../config/public-key.js'
import type { ListPublicKey } from '../config/types.js'
import { EgressdError } from '../errors.js'

/** The signature bytes in a .sig file's contents, or undefined when it holds none. */
export function readSignature (content: Buffer): Buffer | undefined {
  const text = content.toString('latin1').trim()
  if (/^[A-Za-z0-9+/=\s]+$/.test(text)) {
    const b = Buffer.from(text.replace(/\s+/g, ''), 'base64')
    if (b.length === 64) return b
  }
  return content.length === 64 ? content : undefined
}

/** Name of the first key in `keys` whose signature `sig` is over `data`, or undefined. */
export function verifyList (data: Buffer, sigFile: Buffer, keys: readonly ListPublicKey[]): string | undefined {
  const sig = readSignature(sigFile)
  if (sig === undefined) return undefined
  for (const k of keys) {
    if (verify(null, data, createPublicKey(k.pem), sig)) return k.name
  }
  return undefined
}

/** Reads a private key (PEM, PKCS#8) and checks that it is Ed25519. */
export function privateKey (pem: string): KeyObject {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_LIST_KEY', `not a usable private key: ${(err as Error).message}`, { cause: err })
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new EgressdError('EGRESSD_ERR_LIST_KEY', `expected an Ed25519 private key, got ${key.asymmetricKeyType ?? 'an unknown type'}`)
  return key
}

/** Reads a public key (PEM SPKI, or base64 of the DER or of the raw 32 bytes). */
export function publicKey (name: string, text: string): ListPublicKey {
  const r = ed25519PublicKeyPem(text)
  if ('error' in r) throw new EgressdError('EGRESSD_ERR_LIST_KEY', `${name}: ${r.error}`)
  return { name, pem: r.pem }
}

/** The .sig file contents for `data`: base64 and a newline. */
export function signList (data: Buffer, key: KeyObject): string {
  return sign(null, data, key).toString('base64') + '\n'
}

export interface GeneratedKeys {
  /** PKCS#8 PEM: keep it with the team that publishes lists. */
  readonly privatePem: string
  /** SPKI PEM, for blocklists.update.publicKeys (as `file`, or pasted as `key`). */
  readonly publicPem: string
  /** The raw 32-byte public key in base64, for `key:` in the config. */
  readonly publicBase64: string
}

export function generateKeys (): GeneratedKeys {
  const { privateKey: priv, publicKey: pub } = generateKeyPairSync('ed25519')
  const der = pub.export({ format: 'der', type: 'spki' })
  return {
    privatePem: priv.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: pub.export({ format: 'pem', type: 'spki' }).toString(),
    publicBase64: der.subarray(der.length - 32).toString('base64')
  }
}
