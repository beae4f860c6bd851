// Import one JWK into a Node KeyObject bound to exactly one algorithm.
// The algorithm comes from the JWK (its `alg`, else its key type and curve), never from a token header.
import { createPublicKey, type KeyObject } from 'node:crypto'
import type { AsymmetricAlg } from '../config.js'

export interface VerificationKey {
  kid: string | undefined
  alg: AsymmetricAlg
  key: KeyObject
  /** Stable description of the public key, used to detect key-set changes. */
  fingerprint: string
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function compatible (alg: AsymmetricAlg, kty: string, crv: unknown): boolean {
  switch (alg) {
    case 'EdDSA': return kty === 'OKP' && crv === 'Ed25519'
    case 'ES256': return kty === 'EC' && crv === 'P-256'
    case 'ES384': return kty === 'EC' && crv === 'P-384'
    default: return kty === 'RSA'
  }
}

function defaultAlg (kty: string, crv: unknown): AsymmetricAlg | undefined {
  if (kty === 'OKP' && crv === 'Ed25519') return 'EdDSA'
  if (kty === 'EC' && crv === 'P-256') return 'ES256'
  if (kty === 'EC' && crv === 'P-384') return 'ES384'
  if (kty === 'RSA') return 'RS256'
  return undefined
}

/** Returns the bound key, or a reason string when the JWK is unusable (the caller skips it). */
export function importJwk (jwk: unknown, allowed: readonly AsymmetricAlg[]): VerificationKey | string {
  if (!isRecord(jwk)) return 'not an object'
  const { kty, crv, kid } = jwk
  if (typeof kty !== 'string') return 'missing kty'
  if (kid !== undefined && typeof kid !== 'string') return 'kid is not a string'
  if (jwk.use !== undefined && jwk.use !== 'sig') return 'use is not "sig"'
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return 'key_ops lacks "verify"'
  if (jwk.d !== undefined || jwk.k !== undefined) return 'private or symmetric key material in a JWKS'
  let alg: AsymmetricAlg | undefined
  if (jwk.alg !== undefined) {
    if (typeof jwk.alg !== 'string' || !(allowed as readonly string[]).includes(jwk.alg)) return `alg ${String(jwk.alg)} not allowed`
    alg = jwk.alg as AsymmetricAlg
    if (!compatible(alg, kty, crv)) return `alg ${alg} does not match kty ${kty}`
  } else {
    alg = defaultAlg(kty, crv)
    if (alg === undefined || !allowed.includes(alg)) return `no allowed algorithm for kty ${kty}`
  }
  const pub: Record<string, unknown> = { kty }
  for (const m of kty === 'RSA' ? ['n', 'e'] : kty === 'EC' ? ['crv', 'x', 'y'] : ['crv', 'x']) {
    if (typeof jwk[m] !== 'string') return `missing ${m}`
    pub[m] = jwk[m]
  }
  let key: KeyObject
  try {
    key = createPublicKey({ key: pub as never, format: 'jwk' })
  } catch {
    return 'invalid key material'
  }
  if (kty === 'RSA') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
    if (bits < 2048) return 'RSA key shorter than 2048 bits'
  }
  return { kid: kid as string | undefined, alg, key, fingerprint: `${kid ?? ''}|${alg}|${JSON.stringify(pub)}` }
}
