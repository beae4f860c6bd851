// The gateway, composed: each plugin below is one concern, registered in the order a request meets it.
// A request to /api goes: CORS → limits → authenticate → authorize → rewrite headers → forward
// (plugins/proxy.ts and pipeline/). buildApp() assembles; the caller (server.ts, or a test) listens.
import Fastify, { type FastifyInstance } from 'fastify'
import type { GatewayConfig } from './config.js'
import { serverOptions } from './server-options.js'
import { logging, loggingOptions, type LoggingSetupOptions } from './plugins/logging.js'
import { observability } from './plugins/observability.js'
import { limits } from './plugins/limits.js'
import { cors } from './plugins/cors.js'
import { securityHeaders } from './plugins/security-headers.js'
import { errorHandler } from './plugins/error-handler.js'
import { authentication } from './plugins/authentication.js'
import { forwarder } from './plugins/forwarder.js'
import type { registerForwarder } from './pipeline/forward.js'
import { answerUnroutable, proxy } from './plugins/proxy.js'
import { operationalRoutes } from './plugins/operational-routes.js'
import { fastifyTrustProxy, trustFunction } from './trust-proxy.js'

export interface BuildAppOptions extends LoggingSetupOptions {
  /** Wait for the first JWKS load before resolving (default true; bounded by JWKS_TIMEOUT_MS). */
  awaitKeys?: boolean
  /** The forwarding engine (default: the dispatcher forwarder). Only the forwarder A/B bench passes another. */
  registerForwarder?: typeof registerForwarder
}

export async function buildApp (config: GatewayConfig, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const log = loggingOptions(config, options)
  const app: FastifyInstance = Fastify({
    ...log.serverOptions,
    ...serverOptions(config.limits.server),
    // Off unless TRUST_PROXY names the proxies in front: the client address is then the socket's.
    trustProxy: fastifyTrustProxy(config.trustProxy),
    // While closing, plugins/drain.ts answers 503 shutting_down in the error shape (Fastify's own body has another).
    return503OnClosing: false,
    frameworkErrors: (error, request, reply) => { answerUnroutable(app, error, request, reply) }
  })

  await app.register(logging, { destination: log.destination })
  if (config.trustProxy.kind === 'hops') {
    app.log.warn({ trustProxyHops: config.trustProxy.hops }, 'TRUST_PROXY is a hop count: X-Forwarded-For is trusted from any peer; make sure only the proxies can reach the gateway, or list their addresses instead')
  }
  await app.register(observability, { metrics: config.metricsPort !== 0 })
  // First: every later answer to an allowed origin carries its headers; preflights end here (plugins/cors.ts).
  await app.register(cors, { origins: config.corsOrigins })
  await app.register(limits, { ...config.limits, trustedPeer: trustFunction(config.trustProxy) })
  await app.register(securityHeaders)
  await app.register(errorHandler)
  await app.register(authentication, { jwt: config.jwt, cacheMaxEntries: config.verificationCacheMaxEntries, awaitKeys: options.awaitKeys ?? true })
  await app.register(forwarder, {
    engine: options.registerForwarder,
    origin: config.taskServiceUrl,
    publicUrl: config.publicUrl,
    timeoutMs: config.upstreamTimeoutMs,
    connections: config.upstreamConnections,
    stallTimeoutMs: config.limits.server.responseStallTimeoutMs,
    maxBodyBytes: config.limits.server.maxBodyBytes
  })
  await app.register(proxy, { forwardAuthorization: config.forwardAuthorization, assertionPrivateKey: config.assertionPrivateKey })
  await app.register(operationalRoutes, { readinessTimeoutMs: Math.min(2_000, config.upstreamTimeoutMs) })
  return app
}
