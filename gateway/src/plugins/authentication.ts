// Authentication: the JWKS key store, the verification cache and the authenticator
// (pipeline/authenticate.ts), put together once; decorates the instance with
//  - authenticate(request, reply, next, context): the one way a request is authenticated, used by the proxy route
//    and by the answer to a URL that cannot be routed (proxy.ts). It is also where the rate limits count
//    (plugins/rate-limit.ts): a cut-off address is refused before its token is read (unless the token is
//    already in the verification cache), a valid token counts against its user, a failure against the
//    client address — so every route and method that authenticates counts, and nothing else needs to;
//  - signingKeys(): the key store's state, for /readyz.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { GatewayConfig } from '../config.js'
import { AuthError, sendAuthError, sendError } from '../errors.js'
import { JwksKeyStore, plaintextJwksWarning } from '../keys/jwks.js'
import type { Proceed } from '../pipeline/access.js'
import { createAuthenticator, type Identity } from '../pipeline/authenticate.js'
import { withBinding } from '../request-logger.js'
import { VerificationCache } from '../verification-cache.js'
import type { RateLimits } from './rate-limit.js'

export type SigningKeysState = 'ok' | 'unavailable' | 'not_used'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Authenticates `request` by its Authorization header and counts it against the rate limits. On
     * success sets `request.access` (identity, no route yet), binds the user id to the request's logger
     * and calls `next(request, reply, context)` — at once for an HMAC or cached token with in-memory
     * counters, later when the JWKS must be fetched or the counters live in Redis. Otherwise it answers the
     * request itself (429 over a limit; 401 with WWW-Authenticate; 500 for an unexpected error) and never
     * calls `next`.
     */
    authenticate: <C>(request: FastifyRequest, reply: FastifyReply, next: Proceed<C>, context: C) => void
    signingKeys: () => SigningKeysState
  }
}

export interface AuthenticationOptions {
  jwt: GatewayConfig['jwt']
  cacheMaxEntries: number
  /** Wait for the first JWKS load before going on (bounded by JWKS_TIMEOUT_MS). */
  awaitKeys: boolean
}

export const authentication = fp<AuthenticationOptions>(async function authentication (app, opts) {
  const { jwt } = opts
  const cache = opts.cacheMaxEntries > 0 ? new VerificationCache(opts.cacheMaxEntries) : undefined
  let store: JwksKeyStore | undefined
  if (jwt.jwks !== undefined && jwt.asymmetricAlgorithms.length > 0) {
    store = new JwksKeyStore({
      ...jwt.jwks,
      algorithms: jwt.asymmetricAlgorithms,
      logger: { warn: (o, m) => { app.log.warn(o, m) }, info: (o, m) => { app.log.info(o, m) } }
    })
    store.onChange(() => cache?.clear())
    const s = store
    app.gatewayMetrics?.watchKeyStore(() => s.stats())
    const plaintext = plaintextJwksWarning(jwt.jwks.url)
    if (plaintext !== undefined) app.log.warn({ jwksHost: new URL(jwt.jwks.url).host }, plaintext)
  }
  if (jwt.audience === undefined) app.log.warn('JWT_AUDIENCE=*: tokens for any audience are accepted, including tokens issued to other applications by the same keys; set JWT_AUDIENCE to this API\'s audience')
  if (cache !== undefined) app.gatewayMetrics?.watchCache(() => cache.stats())
  const keys = store
  const authenticator = createAuthenticator({
    secret: jwt.secret,
    hmacAlgorithms: jwt.hmacAlgorithms,
    asymmetricAlgorithms: jwt.asymmetricAlgorithms,
    keys,
    issuer: jwt.issuer,
    audience: jwt.audience,
    clockToleranceSec: jwt.clockToleranceSec,
    cache,
    keyGeneration: keys !== undefined ? () => keys.generation : undefined,
    keysUsable: keys !== undefined ? () => keys.isReady() : undefined
  })

  app.decorateRequest('access', null)
  const limits = app.rateLimits

  // Callback-style (no promise per request): a cached verification completes synchronously.
  app.decorate('authenticate', function authenticate<C> (request: FastifyRequest, reply: FastifyReply, next: Proceed<C>, context: C): void {
    if (limits.addressBlocked(request)) {
      // A cut-off address: no signature check, no key fetch. Only a token verified earlier passes.
      const cached = authenticator.cachedIdentity(request.raw.rawHeaders)
      if (cached === undefined) limits.refuseAddress(request, reply)
      else admit(limits, request, reply, cached, next, context)
      return
    }
    let result: Identity | Promise<Identity>
    try {
      result = authenticator.authenticate(request.raw.rawHeaders)
    } catch (err) {
      refuse(request, reply, err)
      return
    }
    if (result instanceof Promise) {
      result.then((identity) => {
        // A throw here would otherwise be an unhandled rejection (which stops the process): a 500 instead.
        try {
          admit(limits, request, reply, identity, next, context)
        } catch (err) {
          refuse(request, reply, err)
        }
      }, (err: unknown) => { refuse(request, reply, err) })
    } else {
      admit(limits, request, reply, result, next, context)
    }
  })

  app.decorate('signingKeys', (): SigningKeysState => keys === undefined ? 'not_used' : keys.isReady() ? 'ok' : 'unavailable')

  if (keys !== undefined) {
    app.addHook('onClose', async () => { keys.stop() })
    if (opts.awaitKeys) await keys.start()
    else void keys.start()
  }
}, { name: 'gateway-authentication', fastify: '5.x' })

/** The request's identity is known: recorded, bound to its logger, counted against the user's rate limit. */
function admit<C> (limits: RateLimits, request: FastifyRequest, reply: FastifyReply, identity: Identity, next: Proceed<C>, context: C): void {
  request.access = { identity, route: null }
  request.log = withBinding(request.log, 'userId', identity.sub)
  limits.countUser(request, reply, identity.sub, next, context)
}

/**
 * 401 for a token that fails verification, counted against the client address (429 instead when the
 * address's budget was already used up, here or by another replica); 500 (logged) for anything else.
 */
function refuse (request: FastifyRequest, reply: FastifyReply, err: unknown): void {
  if (err instanceof AuthError) {
    const code = err.code
    request.server.gatewayMetrics?.authenticationFailed(code)
    request.log.info({ authError: code }, 'authentication failed')
    request.server.rateLimits.countAddress(request, reply, () => { sendAuthError(reply, code) })
    return
  }
  request.log.error({ err }, 'unexpected error')
  sendError(reply, 500, 'internal_error', 'internal error')
}
