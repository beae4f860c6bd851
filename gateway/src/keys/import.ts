// Import one JWK (with jose) into a CryptoKey bound to the algorithms it may verify, once, when the key
// set is loaded; requests never import keys. The algorithms come from the JWK (its `alg`, else its key
// type and curve), never from a token header.
import { importJWK, type CryptoKey, type JWK } from 'jose'
import type { AsymmetricAlg } from '../config.js'

export interface VerificationKey {
  kid: string | undefined
  /**
   * The token `alg` values this key verifies. One, except for an Ed25519 key: `EdDSA` and its
   * fully-specified name `Ed25519` (RFC 9864) are the same algorithm on the same key.
   */
  algs: readonly AsymmetricAlg[]
  key: CryptoKey
  /** Stable description of the public key, used to detect key-set changes. */
  fingerprint: string
}

const ED25519_NAMES: readonly AsymmetricAlg[] = ['EdDSA', 'Ed25519']

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function compatible (alg: AsymmetricAlg, kty: string, crv: unknown): boolean {
  switch (alg) {
    case 'EdDSA':
    case 'Ed25519': return kty === 'OKP' && crv === 'Ed25519'
    case 'ES256': return kty === 'EC' && crv === 'P-256'
    case 'ES384': return kty === 'EC' && crv === 'P-384'
    case 'ES512': return kty === 'EC' && crv === 'P-521'
    default: return kty === 'RSA'
  }
}

function defaultAlgs (kty: string, crv: unknown): readonly AsymmetricAlg[] {
  if (kty === 'OKP' && crv === 'Ed25519') return ED25519_NAMES
  if (kty === 'EC' && crv === 'P-256') return ['ES256']
  if (kty === 'EC' && crv === 'P-384') return ['ES384']
  if (kty === 'EC' && crv === 'P-521') return ['ES512']
  if (kty === 'RSA') return ['RS256']
  return []
}

/** Resolves to the bound key, or to a reason string when the JWK is unusable (the caller skips it). */
export async function importJwk (jwk: unknown, allowed: readonly AsymmetricAlg[]): Promise<VerificationKey | string> {
  if (!isRecord(jwk)) return 'not an object'
  const { kty, crv, kid } = jwk
  if (typeof kty !== 'string') return 'missing kty'
  if (kid !== undefined && typeof kid !== 'string') return 'kid is not a string'
  if (jwk.use !== undefined && jwk.use !== 'sig') return 'use is not "sig"'
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return 'key_ops lacks "verify"'
  if (jwk.d !== undefined || jwk.k !== undefined) return 'private or symmetric key material in a JWKS'
  let candidates: readonly AsymmetricAlg[]
  if (jwk.alg !== undefined) {
    if (typeof jwk.alg !== 'string' || !(allowed as readonly string[]).includes(jwk.alg)) return `alg ${String(jwk.alg)} not allowed`
    const alg = jwk.alg as AsymmetricAlg
    if (!compatible(alg, kty, crv)) return `alg ${alg} does not match kty ${kty}`
    candidates = ED25519_NAMES.includes(alg) ? ED25519_NAMES : [alg]
  } else {
    candidates = defaultAlgs(kty, crv)
  }
  const algs = candidates.filter((a) => allowed.includes(a))
  if (algs.length === 0) return `no allowed algorithm for kty ${kty}`
  const pub: JWK = { kty }
  for (const m of kty === 'RSA' ? ['n', 'e'] as const : kty === 'EC' ? ['crv', 'x', 'y'] as const : ['crv', 'x'] as const) {
    const v = jwk[m]
    if (typeof v !== 'string') return `missing ${m}`
    pub[m] = v
  }
  let key: CryptoKey
  try {
    key = await importJWK(pub, algs[0] as string) as CryptoKey
  } catch {
    return 'invalid key material'
  }
  if (kty === 'RSA') {
    const bits = (key.algorithm as { modulusLength?: number }).modulusLength ?? 0
    if (bits < 2048) return 'RSA key shorter than 2048 bits'
  }
  return { kid: kid as string | undefined, algs, key, fingerprint: `${kid ?? ''}|${algs.join(',')}|${JSON.stringify(pub)}` }
}
