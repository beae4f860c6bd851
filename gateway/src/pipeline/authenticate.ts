// Stage 1 — authenticate: `Authorization: Bearer <jwt>` → identity.
// The ONLY place in the gateway where a JWT is decoded or verified.
//
// jose does every signature and claim check (jwtVerify: alg allow-list, crit, signature, exp/nbf/iat,
// iss, aud, required exp and sub). This module adds what is the gateway's own: bearer extraction, the
// key choice (HS only against the secret, asymmetric only against a JWKS key bound to that alg — embedded
// `jwk`, `jku`, `x5u`, `x5c` are never read), no `crit` or `b64` at all, the token type (`typ`), the
// `sub` rules, one table from jose's errors to the gateway's codes, and the verification cache (a hit
// is synchronous and verifies nothing). Keys are CryptoKeys imported once: the HMAC secret here, JWKS
// keys in keys/import.ts.
import { validSubject } from 'identity-rules'
import { errors as joseErrors, jwtVerify, type CryptoKey, type JWTHeaderParameters } from 'jose'
import type { AsymmetricAlg, HmacAlg } from '../config.js'
import { AuthError, type AuthErrorCode } from '../errors.js'
import type { VerificationCache } from '../verification-cache.js'
import type { ResolveResult } from '../keys/jwks.js'

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
// Three base64url parts: anything else is refused before jose sees it.
const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

function fail (code: AuthErrorCode): never {
  throw new AuthError(code)
}

/**
 * A `typ` header, when present, must say the token is a JWT or an OAuth access token (RFC 9068), compared
 * as a media type: case-insensitive, `application/` implied when absent (RFC 7515 §4.1.9). Any other
 * type (an id_token profile, `better-auth.session-cache+jwt`, …) is a token for another purpose
 * (RFC 8725 §3.11).
 */
const ACCEPTED_TYPES: ReadonlySet<string> = new Set(['application/jwt', 'application/at+jwt'])
function acceptedType (typ: unknown): boolean {
  if (typeof typ !== 'string') return false
  const t = typ.toLowerCase()
  return ACCEPTED_TYPES.has(t.includes('/') ? t : `application/${t}`)
}

export interface Authenticator {
  /**
   * Authenticates the raw header list of a request (duplicates visible). Returns the identity at once
   * for a cached token, else a Promise of it; throws/rejects with AuthError.
   */
  authenticate: (rawHeaders: readonly string[]) => Identity | Promise<Identity>
  /** Verifies a bare compact JWS. */
  verifyToken: (token: string) => Identity | Promise<Identity>
  /**
   * The identity of the request's token when the verification cache holds it (verified earlier, nothing
   * left to check), else undefined. Never verifies, never fetches keys, never throws.
   */
  cachedIdentity: (rawHeaders: readonly string[]) => Identity | undefined
}

/**
 * jose's error codes (and, for a failed claim check, the claim and reason) → the gateway's codes.
 * The most specific key wins: "code claim reason", then "code claim", then "code".
 */
const JOSE_ERRORS: Readonly<Record<string, AuthErrorCode>> = {
  ERR_JWS_INVALID: 'malformed_token',
  ERR_JWT_INVALID: 'malformed_token', // includes a header or payload that is not UTF-8 JSON (jose decodes with fatal: true)
  ERR_JOSE_ALG_NOT_ALLOWED: 'unsupported_algorithm',
  ERR_JOSE_NOT_SUPPORTED: 'unsupported_critical_header', // an extension named in `crit` that jose does not know
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'invalid_signature',
  ERR_JWT_EXPIRED: 'token_expired',
  ERR_JWT_CLAIM_VALIDATION_FAILED: 'invalid_claims', // exp missing; exp, nbf or iat not a number
  'ERR_JWT_CLAIM_VALIDATION_FAILED nbf check_failed': 'token_not_yet_valid',
  'ERR_JWT_CLAIM_VALIDATION_FAILED iss': 'invalid_issuer',
  'ERR_JWT_CLAIM_VALIDATION_FAILED aud': 'invalid_audience',
  'ERR_JWT_CLAIM_VALIDATION_FAILED sub': 'invalid_subject'
}

/** Maps a rejection of jwtVerify to an AuthError; anything that is not a jose error is a bug and propagates. */
function toAuthError (err: unknown): never {
  if (err instanceof AuthError) throw err
  if (err instanceof joseErrors.JOSEError) {
    const claim = err instanceof joseErrors.JWTClaimValidationFailed ? err : undefined
    const code = (claim !== undefined ? JOSE_ERRORS[`${err.code} ${claim.claim} ${claim.reason}`] ?? JOSE_ERRORS[`${err.code} ${claim.claim}`] : undefined) ??
      JOSE_ERRORS[err.code] ?? 'malformed_token'
    throw new AuthError(code)
  }
  throw err
}

const HMAC_HASH: Readonly<Record<HmacAlg, string>> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' }

export function createAuthenticator (opts: AuthenticatorOptions): Authenticator {
  const secret = opts.secret
  const hmacAlgs: readonly HmacAlg[] = secret !== undefined ? opts.hmacAlgorithms : []
  const asymAlgs: readonly AsymmetricAlg[] = opts.keys !== undefined ? opts.asymmetricAlgorithms : []
  const cache = opts.cache
  const currentGeneration = opts.keyGeneration ?? (() => 0)
  const keysUsable = opts.keysUsable ?? (() => true)

  // One CryptoKey per allowed HMAC algorithm (WebCrypto binds the hash to the key), imported once; jose
  // would import a raw secret again on every call. The import is asynchronous, so the first tokens wait on it.
  const hmacKeys = new Map<string, CryptoKey | Promise<CryptoKey>>()
  for (const alg of hmacAlgs) {
    const pending = crypto.subtle.importKey('raw', secret as Buffer, { name: 'HMAC', hash: HMAC_HASH[alg] }, false, ['verify'])
    hmacKeys.set(alg, pending)
    pending.then((key) => { hmacKeys.set(alg, key) }, () => {}) // a failed import stays in the map: tokens then fail (500), never pass
  }

  const verifyOptions = {
    algorithms: [...hmacAlgs, ...asymAlgs],
    issuer: opts.issuer,
    audience: opts.audience !== undefined ? [...opts.audience] : undefined,
    clockTolerance: opts.clockToleranceSec,
    requiredClaims: ['exp', 'sub']
  }

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

  /** The key for a token, chosen by jose's already-parsed protected header (alg is allow-listed by then). */
  function keyFor (generation: { value: number | undefined }) {
    return (header: JWTHeaderParameters): CryptoKey | Promise<CryptoKey> => {
      // No JWS extension is supported: jose knows `b64` (unencoded payloads), the gateway refuses it.
      if (header.crit !== undefined || header.b64 !== undefined) fail('unsupported_critical_header')
      if (header.typ !== undefined && !acceptedType(header.typ)) fail('invalid_token_type')
      const { alg, kid } = header
      if (kid !== undefined && typeof kid !== 'string') fail('malformed_token')
      const hmacKey = hmacKeys.get(alg)
      if (hmacKey !== undefined) return hmacKey
      generation.value = currentGeneration()
      const resolved = (opts.keys as KeyResolver).resolve(kid, alg)
      return resolved instanceof Promise ? resolved.then(keyOf) : keyOf(resolved)
    }
  }

  async function verify (token: string): Promise<Identity> {
    const generation: { value: number | undefined } = { value: undefined }
    let payload: Record<string, unknown>
    try {
      payload = (await jwtVerify(token, keyFor(generation), verifyOptions)).payload
    } catch (err) {
      return toAuthError(err)
    }
    const { sub, exp, nbf, iat } = payload
    // JSON numbers such as 1e400 parse to Infinity; a token that never expires is not one we accept.
    if (!Number.isFinite(exp) || (nbf !== undefined && !Number.isFinite(nbf)) || (iat !== undefined && !Number.isFinite(iat))) fail('invalid_claims')
    if (!validSubject(sub)) fail('invalid_subject')
    // Cache until exp at the latest, and only if the key set did not change while we verified.
    if (cache !== undefined && (generation.value === undefined || generation.value === currentGeneration())) {
      cache.set(token, { identity: Object.freeze({ sub }), expiresAtMs: (exp as number) * 1000, viaJwks: generation.value !== undefined })
    }
    return { sub }
  }

  function fromCache (token: string): Identity | undefined {
    if (cache === undefined) return undefined
    const hit = cache.get(token)
    return hit !== undefined && (!hit.viaJwks || keysUsable()) ? hit.identity : undefined
  }

  function verifyToken (token: string): Identity | Promise<Identity> {
    const hit = fromCache(token)
    if (hit !== undefined) return hit
    if (token.length > MAX_TOKEN_LENGTH || !JWS.test(token)) fail('malformed_token')
    return verify(token)
  }

  return {
    authenticate (rawHeaders) {
      return verifyToken(extractToken(rawHeaders))
    },
    verifyToken,
    cachedIdentity (rawHeaders) {
      if (cache === undefined) return undefined
      let token: string
      try {
        token = extractToken(rawHeaders)
      } catch {
        return undefined
      }
      return fromCache(token)
    }
  }
}

function keyOf (r: ResolveResult): CryptoKey {
  if (typeof r === 'string') fail(r)
  return r.key
}
