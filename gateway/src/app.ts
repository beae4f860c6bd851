// The gateway application: authenticate → authorize → rewrite headers → forward.
// buildApp() assembles the pipeline; the caller (server.ts, or a test) listens.
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type HookHandlerDoneFunction } from 'fastify'
import cors from '@fastify/cors'
import type { GatewayConfig } from './config.js'
import { AuthError, errorBody, sendAuthError, sendError } from './errors.js'
import { JwksKeyStore, plaintextJwksWarning } from './keys/jwks.js'
import { openapiDocument } from './openapi.js'
import { createAuthenticator, type Identity } from './pipeline/authenticate.js'
import { authorize, isRejection, type AuthorizedRoute } from './pipeline/authorize.js'
import { registerForwarder } from './pipeline/forward.js'
import { rewriteHeaders, wellFormedRequestId } from './pipeline/rewrite-headers.js'
import { VerificationCache } from './verification-cache.js'
import { loadLimitsConfig } from './plugins/limits-config.js'
import { registerLoadShedding } from './plugins/load-shedding.js'
import { registerRateLimit } from './plugins/rate-limit.js'
import { registerSlowClientLimits } from './plugins/slow-clients.js'
import { isDraining, registerDrain } from './plugins/drain.js'
import { setGatewayHeaders } from './response-headers.js'
import { lazyChildLoggerFactory, withBinding } from './request-logger.js'
import { bufferedStdout } from './log-destination.js'
import { logAccess } from './access-log.js'

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity | null
    route: AuthorizedRoute | null
  }
}

export interface BuildAppOptions {
  /** Fastify logger option (default: pino at config.logLevel, with redaction). */
  logger?: FastifyServerOptions['logger']
  /** Destination for the default pino logger (default: stdout). Lets tests read the real log lines. */
  logStream?: { write: (line: string) => void }
  /** Wait for the first JWKS load before resolving (default true; bounded by JWKS_TIMEOUT_MS). */
  awaitKeys?: boolean
}

/** Server timeouts, set on purpose (slow clients cannot hold the gateway). */
export const SERVER_TIMEOUTS = {
  /** Whole request (headers + body) must arrive within this. */
  requestTimeoutMs: 30_000,
  /** Request headers must arrive within this. */
  headersTimeoutMs: 10_000,
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: 72_000,
  /** Max requests per keep-alive socket (0 = unlimited). */
  maxRequestsPerSocket: 0
}

function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  let status = 400
  let reason = 'Bad Request'
  let message = 'malformed HTTP request'
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408; reason = 'Request Timeout'; message = 'request not received in time'
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431; reason = 'Request Header Fields Too Large'; message = 'request headers too large'
  }
  const body = JSON.stringify(errorBody('bad_request', message, 'none'))
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

export async function buildApp (config: GatewayConfig, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  // stdout in batches (log-destination.ts) unless a test gives its own stream or LOG_BUFFER_BYTES=0.
  const logDestination = options.logger === undefined && options.logStream === undefined && config.logBufferBytes > 0
    ? bufferedStdout(config.logBufferBytes)
    : undefined
  const logStream = options.logStream ?? logDestination?.stream
  const logger: FastifyServerOptions['logger'] = options.logger ?? {
    level: config.logLevel,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]', 'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie'],
      censor: '[redacted]'
    },
    ...(logStream !== undefined ? { stream: logStream } : {})
  }

  const limits = config.limits ?? loadLimitsConfig({})
  const app = Fastify({
    logger,
    // One log line per request (onResponse below) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    childLoggerFactory: lazyChildLoggerFactory,
    requestIdHeader: false,
    genReqId: (req) => {
      const v = req.headers['x-request-id']
      return wellFormedRequestId(v) ? v : randomUUID()
    },
    trustProxy: false,
    requestTimeout: limits.server.requestTimeoutMs,
    keepAliveTimeout: SERVER_TIMEOUTS.keepAliveTimeoutMs,
    maxRequestsPerSocket: SERVER_TIMEOUTS.maxRequestsPerSocket,
    http: { headersTimeout: limits.server.headersTimeoutMs, connectionsCheckingInterval: limits.server.connectionsCheckingIntervalMs } as never,
    return503OnClosing: true,
    clientErrorHandler,
    // Malformed percent-encoding and the like, found by the router before any hook runs.
    frameworkErrors: (error, request, reply) => { answerFrameworkError(error, request, reply) }
  })

  // Registered first, so it runs last: every other onClose hook can still log.
  if (logDestination !== undefined) app.addHook('onClose', (_instance, done) => { logDestination.close(); done() })

  app.decorateRequest('identity', null)
  app.decorateRequest('route', null)

  // ---- keys, cache, authenticator -------------------------------------------------------------
  const cache = config.verificationCacheMaxEntries > 0 ? new VerificationCache(config.verificationCacheMaxEntries) : undefined
  let keyStore: JwksKeyStore | undefined
  if (config.jwt.jwks !== undefined && config.jwt.asymmetricAlgorithms.length > 0) {
    keyStore = new JwksKeyStore({
      ...config.jwt.jwks,
      algorithms: config.jwt.asymmetricAlgorithms,
      logger: { warn: (o, m) => { app.log.warn(o, m) }, info: (o, m) => { app.log.info(o, m) } }
    })
    keyStore.onChange(() => cache?.clear())
    const plaintext = plaintextJwksWarning(config.jwt.jwks.url)
    if (plaintext !== undefined) app.log.warn({ jwksHost: new URL(config.jwt.jwks.url).host }, plaintext)
  }
  const store = keyStore
  const authenticator = createAuthenticator({
    secret: config.jwt.secret,
    hmacAlgorithms: config.jwt.hmacAlgorithms,
    asymmetricAlgorithms: config.jwt.asymmetricAlgorithms,
    keys: store,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    clockToleranceSec: config.jwt.clockToleranceSec,
    cache,
    keyGeneration: store !== undefined ? () => store.generation : undefined,
    keysUsable: store !== undefined ? () => store.isReady() : undefined
  })

  // ---- bodies are never parsed: every content type passes the raw stream through ----------------
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => { done(null, payload) })

  // ---- protective limits: shed load, cap connections and bodies, rate-limit (plugins/) ------------
  await registerLoadShedding(app, limits.loadShedding)
  registerSlowClientLimits(app, limits.server)
  await registerRateLimit(app, limits.rateLimit)
  registerDrain(app)

  // ---- CORS (preflight answered here, never forwarded) --------------------------------------------
  await app.register(cors, {
    origin: config.corsOrigins.length > 0 ? config.corsOrigins : false,
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposedHeaders: ['Location', 'Link', 'X-Request-Id', 'WWW-Authenticate'],
    maxAge: 600
  })

  // ---- response headers on every response (callback-style hooks: no promise per request) ----------
  // (Forwarded responses do not pass through onSend: the forwarder writes their head itself, with the
  // same headers — response-headers.ts.)
  app.addHook('onSend', (_request, reply, payload, done) => {
    setGatewayHeaders(reply)
    done(null, payload)
  })

  // One access line per request (access-log.ts); forwarded responses cut short are logged by the forwarder.
  app.addHook('onResponse', (request, reply, done) => {
    logAccess(app.log, request, reply, false)
    done()
  })

  // Errors the gateway itself raises (e.g. a malformed URL): JSON, no internals.
  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (status === 500) request.log.error({ err: error }, 'unexpected error')
    else request.log.info({ errCode: (error as { code?: string }).code }, 'request rejected')
    return sendError(reply, status, status === 500 ? 'internal_error' : 'bad_request', status === 500 ? 'internal error' : 'bad request')
  })

  // Router-level errors (FST_ERR_BAD_URL: malformed percent-encoding): Fastify's default would echo
  // the raw URL (a token pasted into it included), and no onSend/onResponse hook runs here, so this
  // sets the response headers and writes the one log line itself. Authentication still comes first:
  // 401 without a valid token; with one, 404 — a path that cannot be normalized is outside the route
  // table. Neither the URL nor the path is echoed or logged.
  function answerFrameworkError (error: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
    setGatewayHeaders(reply)
    const done = (): void => {
      request.log.info({ method: request.method, statusCode: reply.statusCode, errCode: error.code, responseTimeMs: Math.round(reply.elapsedTime * 100) / 100 }, 'request completed')
    }
    const answer = (identity: Identity | undefined, authError: unknown): void => {
      if (authError instanceof AuthError) {
        request.log.info({ authError: authError.code }, 'authentication failed')
        sendAuthError(reply, authError.code)
      } else if (identity === undefined) {
        request.log.error({ err: authError }, 'unexpected error')
        sendError(reply, 500, 'internal_error', 'internal error')
      } else {
        request.log = request.log.child({ userId: identity.sub })
        if (error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH') sendError(reply, 404, 'not_found', 'no such route')
        else sendError(reply, 400, 'bad_request', 'bad request')
      }
      reply.raw.once('finish', done)
    }
    try {
      const r = authenticator.authenticate(request.raw.rawHeaders)
      if (r instanceof Promise) r.then((identity) => { answer(identity, undefined) }, (err: unknown) => { answer(undefined, err) })
      else answer(r, undefined)
    } catch (err) {
      answer(undefined, err)
    }
  }

  // ---- forwarding engine --------------------------------------------------------------------------
  const forwarder = await registerForwarder(app, {
    origin: config.taskServiceUrl,
    timeoutMs: config.upstreamTimeoutMs,
    connections: config.upstreamConnections,
    stallTimeoutMs: limits.server.responseStallTimeoutMs,
    closeConnections: () => isDraining(app)
  })

  // ---- the pipeline -------------------------------------------------------------------------------
  // Stages 1+2 run in onRequest: before any body byte is read, before content-type handling.
  // Callback-style (no promise per request): a cached or HMAC verification completes synchronously;
  // only a JWKS refetch makes authentication wait.
  function authenticateAndAuthorize (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    let result: Identity | Promise<Identity>
    try {
      result = authenticator.authenticate(request.raw.rawHeaders)
    } catch (err) {
      refuseAuthentication(request, reply, err, done)
      return
    }
    if (result instanceof Promise) {
      result.then((identity) => {
        // A throw here would otherwise be an unhandled rejection (which stops the process): a 500 instead.
        try {
          authorizeIdentity(request, reply, identity, done)
        } catch (err) {
          done(err instanceof Error ? err : new Error(String(err)))
        }
      }, (err: unknown) => { refuseAuthentication(request, reply, err, done) })
    } else {
      authorizeIdentity(request, reply, result, done)
    }
  }

  function refuseAuthentication (request: FastifyRequest, reply: FastifyReply, err: unknown, done: HookHandlerDoneFunction): void {
    if (err instanceof AuthError) {
      request.log.info({ authError: err.code }, 'authentication failed')
      sendAuthError(reply, err.code)
      return
    }
    done(err instanceof Error ? err : new Error(String(err)))
  }

  function authorizeIdentity (request: FastifyRequest, reply: FastifyReply, identity: Identity, done: HookHandlerDoneFunction): void {
    request.identity = identity
    request.log = withBinding(request.log, 'userId', identity.sub)
    const route = authorize(request.method, request.raw.url ?? '', identity)
    if (isRejection(route)) {
      if (route.allow !== undefined) reply.header('allow', route.allow)
      sendError(reply, route.status, route.code, route.message)
      return
    }
    if (request.headers.upgrade !== undefined) {
      sendError(reply, 400, 'upgrade_not_supported', 'protocol upgrades are not supported')
      return
    }
    request.route = route
    done()
  }

  // Stages 3+4.
  function rewriteAndForward (request: FastifyRequest, reply: FastifyReply): void {
    const identity = request.identity as Identity
    const route = request.route as AuthorizedRoute
    const socket = request.raw.socket as Socket & { encrypted?: boolean }
    const headers = rewriteHeaders({
      rawHeaders: request.raw.rawHeaders,
      sub: identity.sub,
      requestId: String(request.id),
      clientIp: socket.remoteAddress,
      proto: socket.encrypted === true ? 'https' : 'http',
      forwardAuthorization: config.forwardAuthorization
    })
    forwarder.forward(request, reply, route, headers)
  }

  app.route({
    // Every method Fastify knows except OPTIONS (answered by @fastify/cors).
    method: app.supportedMethods.filter((m) => m !== 'OPTIONS'),
    url: '/*',
    onRequest: authenticateAndAuthorize,
    handler: rewriteAndForward
  })
  app.setNotFoundHandler({ preHandler: authenticateAndAuthorize }, (request, reply) => {
    if (request.route !== null) { rewriteAndForward(request, reply); return }
    return sendError(reply, 404, 'not_found', 'no such route')
  })

  // ---- unauthenticated operational routes ---------------------------------------------------------
  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const keysReady = store === undefined || store.isReady()
    const upstreamReady = await forwarder.upstreamReady(Math.min(2_000, config.upstreamTimeoutMs))
    const ready = keysReady && upstreamReady
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not_ready',
      checks: { taskService: upstreamReady ? 'ok' : 'unavailable', signingKeys: store === undefined ? 'not_used' : keysReady ? 'ok' : 'unavailable' }
    })
  })
  app.get('/openapi.json', async (_request, reply) => reply.send(openapiDocument))

  // ---- key store lifecycle --------------------------------------------------------------------------
  if (store !== undefined) {
    app.addHook('onClose', async () => { store.stop() })
    if (options.awaitKeys === false) void store.start()
    else await store.start()
  }

  return app
}
