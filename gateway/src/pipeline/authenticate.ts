// Stage 1 — authenticate: `Authorization: Bearer <jwt>` → identity.
// The ONLY place in the gateway where a JWT is decoded or verified.
//
// Order of checks: header syntax → JOSE header (alg allow-list, crit) → key (HS only against the
// secret, asymmetric only against JWKS keys bound to that alg) → signature → claims (exp required,
// nbf, iss, aud, sub). Embedded keys (`jwk`, `jku`, `x5u`, `x5c`) are never read.
// Signatures are checked with node:crypto directly (KeyObjects imported once), the cheapest correct
// path on Node 20; successful results are cached by exact token string (verification-cache.ts).
import { constants, createHmac, createSecretKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto'
import type { AsymmetricAlg, HmacAlg } from '../config.js'
import { AuthError, type AuthErrorCode } from '../errors.js'
import type { VerificationCache } from '../verification-cache.js'
import type { ResolveResult } from '../keys/jwks.js'
import type { VerificationKey } from '../keys/import.js'

export interface Identity {
  /** The token's `sub`: the only identity the gateway forwards. */
  sub: string
}

export interface KeyResolver {
  resolve: (kid: string | undefined, alg: string) => ResolveResult | Promise<ResolveResult>
}

export interface AuthenticatorOptions {
  secret?: Buffer | undefined
  hmacAlgorithms: readonly HmacAlg[]
  asymmetricAlgorithms: readonly AsymmetricAlg[]
  keys?: KeyResolver | undefined
  issuer?: string | undefined
  audience?: readonly string[] | undefined
  clockToleranceSec: number
  cache?: VerificationCache | undefined
  /** Current key-set generation (JWKS); a result verified under an older generation is not cached. */
  keyGeneration?: (() => number) | undefined
  /** False once the JWKS key set is past its stale bound: cached JWKS results are then not served. */
  keysUsable?: (() => boolean) | undefined
}

export const MAX_TOKEN_LENGTH = 8192
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i
const JWS = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/
// Unicode Cc: U+0000–U+001F and U+007F–U+009F.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
// With the u flag a surrogate pair is one code point; only a lone surrogate matches (= !isWellFormed()).
const LONE_SURROGATE = /\p{Cs}/u

const HASH: Record<string, string> = {
  HS256: 'sha256',
  HS384: 'sha384',
  HS512: 'sha512',
  ES256: 'sha256',
  ES384: 'sha384',
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512'
}
const ECDSA_SIG_LEN: Record<string, number> = { ES256: 64, ES384: 96 }

function fail (code: AuthErrorCode): never {
  throw new AuthError(code)
}

function decodeJson (part: string): Record<string, unknown> {
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
  } catch {
    return fail('malformed_token')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('malformed_token')
  return v as Record<string, unknown>
}

export function verifyAsymmetric (alg: string, key: KeyObject, data: Buffer, sig: Buffer): boolean {
  switch (alg) {
    case 'EdDSA':
      return verify(null, data, key, sig)
    case 'ES256':
    case 'ES384':
      if (sig.length !== ECDSA_SIG_LEN[alg]) return false
      return verify(HASH[alg] as string, data, { key, dsaEncoding: 'ieee-p1363' }, sig)
    case 'RS256':
    case 'RS384':
    case 'RS512':
      return verify(HASH[alg] as string, data, key, sig)
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return verify(HASH[alg] as string, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig)
    default:
      return false
  }
}

/**
 * Validates `sub`: a non-empty string of at most 255 characters (code points) without control
 * characters and well-formed Unicode (no lone surrogate). Leading or trailing whitespace is refused
 * too: HTTP header parsing trims it, so " alice" would reach the task service as "alice" — another user.
 */
export function validSubject (sub: unknown): sub is string {
  if (typeof sub !== 'string' || sub.length === 0) return false
  if (sub.length > 255 && [...sub].length > 255) return false
  if (CONTROL.test(sub)) return false
  // A lone UTF-16 surrogate cannot be encoded as UTF-8: it would reach the task service as U+FFFD,
  // so "alice\ud800" and "alice\udfff" would both become "alice\ufffd" — one user.
  if (LONE_SURROGATE.test(sub)) return false
  return sub.trim() === sub
}

export interface Authenticator {
  /**
   * Authenticates the raw header list of a request (duplicates visible). Returns the identity, or a
   * Promise of it when a JWKS refetch is needed; throws/rejects with AuthError.
   */
  authenticate: (rawHeaders: readonly string[]) => Identity | Promise<Identity>
  /** Verifies a bare compact JWS. */
  verifyToken: (token: string) => Identity | Promise<Identity>
}

export function createAuthenticator (opts: AuthenticatorOptions): Authenticator {
  const secretKey = opts.secret !== undefined ? createSecretKey(opts.secret) : undefined
  const hmac = new Set<string>(secretKey !== undefined ? opts.hmacAlgorithms : [])
  const asym = new Set<string>(opts.keys !== undefined ? opts.asymmetricAlgorithms : [])
  const tolerance = opts.clockToleranceSec
  const cache = opts.cache
  const currentGeneration = opts.keyGeneration ?? (() => 0)
  const keysUsable = opts.keysUsable ?? (() => true)

  function extractToken (rawHeaders: readonly string[]): string {
    let value: string | undefined
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string
      if (name.length === 13 && name.toLowerCase() === 'authorization') {
        if (value !== undefined) fail('malformed_token') // more than one Authorization header
        value = rawHeaders[i + 1] as string
      }
    }
    if (value === undefined || value.trim() === '') fail('missing_token')
    if (value.length > MAX_TOKEN_LENGTH + 7) fail('malformed_token')
    const m = BEARER.exec(value)
    if (m === null) {
      // Another scheme (Basic, …) carries no bearer token.
      if (!/^bearer(\s|$)/i.test(value)) fail('missing_token')
      fail('malformed_token')
    }
    return m[1] as string
  }

  function checkClaims (token: string, payloadPart: string, keyGeneration: number | undefined): Identity {
    const p = decodeJson(payloadPart)
    const now = Date.now() / 1000
    const { exp, nbf, iat, sub } = p
    if (typeof exp !== 'number' || !Number.isFinite(exp)) fail('invalid_claims')
    if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf))) fail('invalid_claims')
    if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) fail('invalid_claims')
    if (exp <= now - tolerance) fail('token_expired')
    if (typeof nbf === 'number' && nbf > now + tolerance) fail('token_not_yet_valid')
    if (opts.issuer !== undefined && p.iss !== opts.issuer) fail('invalid_issuer')
    if (opts.audience !== undefined) {
      const aud = p.aud
      const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
      if (!auds.some((a) => typeof a === 'string' && opts.audience?.includes(a))) fail('invalid_audience')
    }
    if (!validSubject(sub)) fail('invalid_subject')
    // Cache until exp at the latest, and only if the key set did not change while we verified.
    if (cache !== undefined && (keyGeneration === undefined || keyGeneration === currentGeneration())) {
      cache.set(token, { identity: Object.freeze({ sub }), expiresAtMs: exp * 1000, viaJwks: keyGeneration !== undefined })
    }
    return { sub }
  }

  function verifyToken (token: string): Identity | Promise<Identity> {
    if (cache !== undefined) {
      const hit = cache.get(token)
      if (hit !== undefined && (!hit.viaJwks || keysUsable())) return hit.identity
    }
    if (token.length > MAX_TOKEN_LENGTH) fail('malformed_token')
    const m = JWS.exec(token)
    if (m === null) fail('malformed_token')
    const headerPart = m[1] as string
    const payloadPart = m[2] as string
    const sig = Buffer.from(m[3] as string, 'base64url')
    const header = decodeJson(headerPart)
    const alg = header.alg
    if (typeof alg !== 'string') fail('malformed_token')
    if (header.crit !== undefined) fail('unsupported_critical_header')
    if (header.b64 !== undefined) fail('unsupported_critical_header')
    const kid = header.kid
    if (kid !== undefined && typeof kid !== 'string') fail('malformed_token')
    const signingInput = Buffer.from(token.slice(0, headerPart.length + 1 + payloadPart.length), 'latin1')

    if (hmac.has(alg)) {
      const expected = createHmac(HASH[alg] as string, secretKey as KeyObject).update(signingInput).digest()
      if (expected.length !== sig.length || !timingSafeEqual(expected, sig)) fail('invalid_signature')
      return checkClaims(token, payloadPart, undefined)
    }
    if (!asym.has(alg)) fail('unsupported_algorithm')
    const generation = currentGeneration()
    const finish = (r: ResolveResult): Identity => {
      if (typeof r === 'string') fail(r)
      if (!verifyAsymmetric(alg, (r as VerificationKey).key, signingInput, sig)) fail('invalid_signature')
      return checkClaims(token, payloadPart, generation)
    }
    const r = (opts.keys as KeyResolver).resolve(kid, alg)
    return r instanceof Promise ? r.then(finish) : finish(r)
  }

  return {
    authenticate (rawHeaders) {
      return verifyToken(extractToken(rawHeaders))
    },
    verifyToken
  }
}
