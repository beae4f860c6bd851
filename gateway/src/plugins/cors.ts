// CORS (@fastify/cors) for the frontend origins in CORS_ORIGINS: credentials allowed, preflights
// answered by the gateway and never forwarded.
//
// Registered before every other plugin, so its onRequest hook runs first:
//  - every answer to an allowed origin carries the CORS headers, whoever makes it afterwards — a limit
//    (503 shedding or closing, 413, 429), authentication (401), the router, the error handler, the
//    forwarder (502/504 and the task service's own answers copy the reply's headers);
//  - a preflight is answered here, before load shedding and the rate limits, which never count it.
// A request from an origin that is not allowed (every origin, with no CORS_ORIGINS) or without Origin
// gets no Access-Control-* header; its preflight is still answered here (204): a browser reports a CORS
// refusal, never a 401. Without CORS_ORIGINS @fastify/cors is not registered at all: it would grant
// nothing, yet run on every request and add `Vary: Origin` to answers that do not vary by origin.
// Answers made where no hook runs (a URL the router refuses, malformed HTTP on the raw socket) take
// their CORS headers from app.corsHeaders() instead.
import fp from 'fastify-plugin'
import fastifyCors from '@fastify/cors'

/** Response headers a frontend's JavaScript may read (besides the CORS-safelisted ones). */
export const EXPOSED_HEADERS: readonly string[] = [
  'Location', 'Link', 'X-Request-Id', 'WWW-Authenticate', 'Retry-After',
  'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Allow'
]

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The CORS headers of an answer to a request from `origin` ([name, value] pairs, those @fastify/cors
     * sets; with `preflight`, those of a preflight answer): none when the origin is not allowed.
     */
    corsHeaders: (origin: string | undefined, preflight?: boolean) => ReadonlyArray<readonly [string, string]>
  }
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'X-Request-Id']
/** Seconds a browser may reuse a preflight's answer. */
const MAX_AGE = 600

export const cors = fp<{ origins: string[] }>(async function cors (app, opts) {
  const allowed = new Set(opts.origins)
  // An OPTIONS request from an origin that is not allowed (or without Origin) is answered here, as a
  // preflight that grants nothing: 204 without any Access-Control-* header, never forwarded, never a 401.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.method !== 'OPTIONS' || allowed.has(request.headers.origin ?? '')) { done(); return }
    reply.code(204).header('content-length', '0').send()
  })
  if (allowed.size > 0) {
    await app.register(fastifyCors, {
      // Only an allowed origin gets CORS headers; any other request gets none at all.
      origin: (origin, cb) => { cb(null, origin !== undefined && allowed.has(origin)) },
      credentials: true,
      methods: METHODS,
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: [...EXPOSED_HEADERS],
      maxAge: MAX_AGE,
      // Every OPTIONS request is answered as a preflight (204), also one without
      // Access-Control-Request-Method: the strict mode's answer to that is a text/plain 400, outside the
      // gateway's error contract.
      strictPreflight: false
    })
  }
  const always: Array<readonly [string, string]> = [
    ['access-control-allow-credentials', 'true'],
    ['access-control-expose-headers', EXPOSED_HEADERS.join(', ')],
    ['vary', 'Origin']
  ]
  const preflightOnly: Array<readonly [string, string]> = [
    ['access-control-allow-methods', METHODS.join(', ')],
    ['access-control-allow-headers', ALLOWED_HEADERS.join(', ')],
    ['access-control-max-age', String(MAX_AGE)]
  ]
  app.decorate('corsHeaders', (origin: string | undefined, preflight = false) => {
    if (origin === undefined || !allowed.has(origin)) return []
    return [['access-control-allow-origin', origin], ...always, ...(preflight ? preflightOnly : [])]
  })
}, { name: 'gateway-cors', fastify: '5.x' })

/** Answered as a CORS preflight: every OPTIONS request (see strictPreflight above). */
export function isPreflight (method: string): boolean {
  return method === 'OPTIONS'
}
