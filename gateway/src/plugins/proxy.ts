// The proxy route: every /api request goes authenticate → authorize → rewrite headers → forward, each a
// module in pipeline/. `request.access` carries the caller and the route from stage to stage.
//
// Stages 1+2 run in onRequest: before any body byte is read, before content-type handling. Stage 1
// (app.authenticate) also counts the request against the rate limits (plugins/rate-limit.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { sendError } from '../errors.js'
import type { Access } from '../pipeline/access.js'
import { authorize, isRejection, type AuthorizedRoute } from '../pipeline/authorize.js'
import { rewriteHeaders } from '../pipeline/rewrite-headers.js'
import { IdentityAssertionSigner } from '../pipeline/identity-assertion.js'
import { setGatewayHeaders } from '../response-headers.js'
import { isPreflight } from './cors.js'
import { isDraining } from './drain.js'
import { traceContextOf, traceIdOf } from '../trace-context.js'

export interface ProxyOptions {
  /** Forward the client's Authorization header too (FORWARD_AUTHORIZATION). */
  forwardAuthorization: boolean
  /** Signs the identity assertion the task service demands (GATEWAY_ASSERTION_PRIVATE_KEY, PKCS#8 PEM). */
  assertionPrivateKey: string
}

export async function proxy (app: FastifyInstance, opts: ProxyOptions): Promise<void> {
  // Bodies are never parsed: every content type streams through as it came.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })

  // Stages 1+2 (callback-style, no promise per request).
  function admit (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    app.authenticate(request, reply, authorizeRequest, done)
  }

  // Stages 3+4. The identity assertion is cached per user: synchronous except on a user's first request
  // (and once every few minutes after), when it is signed.
  const signer = await IdentityAssertionSigner.create(opts.assertionPrivateKey)
  function forward (request: FastifyRequest, reply: FastifyReply): void {
    const assertion = signer.assertionFor((request.access as Access).identity.sub)
    if (typeof assertion === 'string') forwardWith(request, reply, assertion)
    else assertion.then((a) => { forwardWith(request, reply, a) }, (err: unknown) => { reply.send(err) })
  }
  function forwardWith (request: FastifyRequest, reply: FastifyReply, assertion: string): void {
    const access = request.access as Access
    if (!app.acquireUserSlot(request, reply, access.identity.sub)) return
    // W3C trace context: the gateway's own (trace-context.ts), never the client's as sent.
    const trace = traceContextOf(request)
    const headers = rewriteHeaders({
      rawHeaders: request.raw.rawHeaders,
      sub: access.identity.sub,
      assertion,
      requestId: String(request.id),
      // The client as TRUST_PROXY defines it (the socket's peer when no proxy is trusted); the scheme
      // from a trusted proxy's X-Forwarded-Proto, else the socket's.
      clientIp: request.ip,
      proto: request.protocol === 'https' ? 'https' : 'http',
      forwardAuthorization: opts.forwardAuthorization,
      traceparent: trace.traceparent,
      tracestate: trace.tracestate
    })
    app.forwarder.forward(request, reply, access.route as AuthorizedRoute, headers)
  }

  app.route({
    // Every method Fastify knows except OPTIONS (CORS preflights, plugins/cors.ts).
    method: app.supportedMethods.filter((m) => m !== 'OPTIONS'),
    url: '/*',
    onRequest: admit,
    handler: forward
  })
  // Whatever the route above does not take (methods Fastify does not route, targets that are not a
  // path) goes through the same stages: 401, then 404/405.
  app.setNotFoundHandler({ preHandler: admit }, (request, reply) => {
    if (request.access?.route != null) { forward(request, reply); return }
    return sendError(reply, 404, 'not_found', 'no such route')
  })
}

/** Stage 2, once authenticated: the route the request may take, or its answer (403/404/405, 400 for an upgrade). */
function authorizeRequest (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const access = request.access as Access
  const route = authorize(request.method, request.raw.url ?? '', access.identity)
  if (isRejection(route)) {
    if (route.allow !== undefined) reply.header('allow', route.allow)
    sendError(reply, route.status, route.code, route.message)
    return
  }
  if (request.headers.upgrade !== undefined) {
    sendError(reply, 400, 'upgrade_not_supported', 'protocol upgrades are not supported')
    return
  }
  access.route = route
  done()
}

/**
 * Fastify's frameworkErrors: a URL the router cannot take (FST_ERR_BAD_URL: malformed percent-encoding;
 * a parameter too long), found before any hook runs. Fastify's default would echo the raw URL (a token
 * pasted into it included), and no hook runs here (CORS's included), so this sets the response headers
 * and writes the one log line itself. A CORS preflight is answered as one (204). Otherwise
 * authentication still comes first: 401 without a valid token; with one, 404 — a path that cannot be
 * normalized is outside the route table. Neither the URL nor the path is echoed or logged.
 */
export function answerUnroutable (app: FastifyInstance, error: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
  setGatewayHeaders(reply, isDraining(app))
  const preflight = isPreflight(request.method)
  for (const [name, value] of app.corsHeaders(request.headers.origin, preflight)) reply.header(name, value)
  reply.raw.once('finish', () => {
    // No onRequest hook ran for this request: it was never counted as in flight.
    app.gatewayMetrics?.requestCompleted(request, reply, false, false)
    request.log.info({ clientIp: request.ip, method: request.method, statusCode: reply.statusCode, errCode: error.code, traceId: traceIdOf(request), responseTimeMs: Math.round(reply.elapsedTime * 100) / 100 }, 'request completed')
  })
  if (preflight) {
    reply.code(204).header('content-length', '0').send()
    return
  }
  app.authenticate(request, reply, answerRoutingError, error)
}

/** A request the router could not take, once authenticated: 404 for a path outside the route table, else 400. */
function answerRoutingError (_request: FastifyRequest, reply: FastifyReply, error: Error & { code?: string }): void {
  if (error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH') sendError(reply, 404, 'not_found', 'no such route')
  else sendError(reply, 400, 'bad_request', 'bad request')
}
