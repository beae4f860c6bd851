// Zero trust on the private side: X-User-Id is believed only together with an identity assertion the gateway
// signed for that user (X-Gateway-Assertion). The contract:
//   compact JWS, alg EdDSA (Ed25519), protected header typ "gateway-assertion+jwt",
//   claims iss "gateway", aud "task-service", sub = X-User-Id, iat, exp ≤ iat + 300 s.
// Checked in onRequest, before the body is read and before any database access; a request on /tasks… that
// fails any part of it gets 401. GATEWAY_ASSERTION_PUBLIC_KEY may hold two keys while the pair is rotated.
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { errors as joseErrors, importSPKI, jwtVerify, type CryptoKey, type JWTPayload } from 'jose'
import { HttpError } from '../errors.js'
import { readUserId, USER_ID_HEADER } from '../identity.js'

export const ASSERTION_HEADER = 'x-gateway-assertion'
export const ASSERTION_TYP = 'gateway-assertion+jwt'
export const ASSERTION_ISSUER = 'gateway'
export const ASSERTION_AUDIENCE = 'task-service'
/** The longest lifetime (exp − iat) an assertion may claim. */
export const ASSERTION_MAX_LIFETIME_SEC = 300
/** Clock skew tolerated between the gateway and this service. */
export const ASSERTION_CLOCK_TOLERANCE_SEC = 5
/** Longer header values are refused unread (a real assertion is ~250 characters). */
const MAX_ASSERTION_LENGTH = 4096
/** Verified assertions remembered (the gateway reuses one per user for minutes): bounded LRU. */
const CACHE_MAX_ENTRIES = 10_000

/** True for paths the assertion guards: /tasks and everything under it, matched or not. */
export function isTasksPath (url: string): boolean {
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  return path === '/tasks' || path.startsWith('/tasks/')
}

/** A 401: rendered by the service's error handler in the one error shape, like every other error. */
class AssertionError extends HttpError {
  constructor (code: string, message: string) {
    super(401, code, message)
  }
}

function describe (err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired'
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `its ${err.claim} ${err.reason === 'missing' ? 'is missing' : 'is not accepted'}`
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'it is not signed by a gateway key this service trusts'
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'its alg must be EdDSA'
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'it is not a well-formed compact JWS'
  if (err instanceof joseErrors.JOSENotSupported) return 'it uses an unsupported JOSE feature'
  return 'it could not be verified'
}

interface Verified {
  sub: string
  /** Epoch ms after which the entry is no longer accepted: exp plus the clock tolerance. */
  expiresAtMs: number
}

/** Verifies assertions with the configured public key(s), remembering successes until they expire. */
export class AssertionVerifier {
  private readonly cache = new Map<string, Verified>()

  private constructor (private readonly keys: CryptoKey[], private readonly now: () => number) {}

  /** Imports each SPKI PEM once. */
  static async create (publicKeyPems: readonly string[], now: () => number = Date.now): Promise<AssertionVerifier> {
    const keys = await Promise.all(publicKeyPems.map((pem) => importSPKI(pem, 'EdDSA')))
    return new AssertionVerifier(keys, now)
  }

  /** The assertion's subject; throws AssertionError when it is not acceptable. */
  async verify (token: string): Promise<string> {
    const cached = this.cache.get(token)
    if (cached !== undefined) {
      if (this.now() < cached.expiresAtMs) {
        this.cache.delete(token)
        this.cache.set(token, cached)
        return cached.sub
      }
      this.cache.delete(token)
    }
    const payload = await this.verifySignatureAndClaims(token)
    const sub = payload.sub as string
    const expiresAtMs = (payload.exp as number + ASSERTION_CLOCK_TOLERANCE_SEC) * 1000
    while (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string)
    this.cache.set(token, { sub, expiresAtMs })
    return sub
  }

  private async verifySignatureAndClaims (token: string): Promise<JWTPayload> {
    let lastError: unknown
    // During a rotation two keys are trusted: a signature that fails with one is tried with the other.
    for (const key of this.keys) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['EdDSA'],
          typ: ASSERTION_TYP,
          issuer: ASSERTION_ISSUER,
          audience: ASSERTION_AUDIENCE,
          requiredClaims: ['sub', 'iat', 'exp'],
          clockTolerance: ASSERTION_CLOCK_TOLERANCE_SEC,
          currentDate: new Date(this.now())
        })
        if (typeof payload.sub !== 'string' || payload.sub === '') throw new AssertionError('invalid_gateway_assertion', 'X-Gateway-Assertion is invalid: its sub must be a non-empty string')
        if ((payload.exp as number) - (payload.iat as number) > ASSERTION_MAX_LIFETIME_SEC) {
          throw new AssertionError('invalid_gateway_assertion', `X-Gateway-Assertion is invalid: it may be valid for at most ${ASSERTION_MAX_LIFETIME_SEC} s after its iat`)
        }
        if ((payload.iat as number) * 1000 > this.now() + ASSERTION_CLOCK_TOLERANCE_SEC * 1000) {
          throw new AssertionError('invalid_gateway_assertion', 'X-Gateway-Assertion is invalid: its iat is in the future')
        }
        return payload
      } catch (err) {
        if (err instanceof AssertionError) throw err
        lastError = err
        if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) break
      }
    }
    throw new AssertionError('invalid_gateway_assertion', `X-Gateway-Assertion is invalid: ${describe(lastError)}`)
  }
}

/** The single X-Gateway-Assertion value, or an AssertionError. */
function readAssertion (request: FastifyRequest): string {
  let count = 0
  const raw = request.raw.rawHeaders
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === ASSERTION_HEADER) count++
  const value = request.headers[ASSERTION_HEADER]
  if (count > 1 || Array.isArray(value)) throw new AssertionError('invalid_gateway_assertion', 'X-Gateway-Assertion must be sent exactly once')
  if (value === undefined || value.trim() === '') {
    throw new AssertionError('missing_gateway_assertion', 'X-Gateway-Assertion header is required: requests reach this service only through the gateway')
  }
  if (value.length > MAX_ASSERTION_LENGTH) throw new AssertionError('invalid_gateway_assertion', 'X-Gateway-Assertion is invalid: it is too long')
  return value
}

export const gatewayAssertion = fp<{ publicKeys: readonly string[] }>(async (app, opts) => {
  const verifier = await AssertionVerifier.create(opts.publicKeys)

  app.addHook('onRequest', async (request) => {
    if (!isTasksPath(request.url)) return
    // X-User-Id first: its own 401s (missing, malformed) say precisely what is wrong.
    const userId = readUserId(request.headers[USER_ID_HEADER], request.raw.rawHeaders)
    try {
      const sub = await verifier.verify(readAssertion(request))
      if (sub !== userId) throw new AssertionError('gateway_assertion_mismatch', 'X-Gateway-Assertion was issued for another user than X-User-Id')
    } catch (err) {
      if (err instanceof AssertionError) request.log.warn({ code: err.code, reason: err.message }, 'identity assertion refused')
      throw err
    }
    request.userId = userId
  })
}, { name: 'gateway-assertion' })
