// The task service as a Fastify instance composed of plugins. The caller decides whether to listen or inject.
import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import { wellFormedRequestId } from 'identity-rules'
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { TaskServiceConfig } from './config.js'
import { openDatabase, type Database } from './db.js'
import { clientErrorHandler, frameworkErrors, loggableError, registerErrorHandling } from './errors.js'
import { createMetrics, metricsPlugin } from './metrics.js'
import { allowedHosts } from './plugins/allowed-hosts.js'
import { gatewayAssertion } from './plugins/gateway-assertion.js'
import { traceIdOf } from './trace-context.js'
import { healthRoutes } from './routes/health.js'
import { tasksRoutes } from './routes/tasks.js'

/** 64 KiB: larger bodies are answered with 413. */
export const BODY_LIMIT = 64 * 1024

declare module 'fastify' {
  interface FastifyInstance {
    /** The database this app talks to. */
    db: Database
  }
}

export interface BuildAppOptions {
  /**
   * An already-open database (tests). The caller keeps ownership and closes it after app.close().
   * Without it the app opens one from the config (PostgreSQL or PGlite) and closes it on app.close().
   */
  db?: Database
  /** Where log lines go (default stdout). Tests pass a stream to inspect them. */
  logStream?: { write(line: string): void }
}

export async function buildApp (config: TaskServiceConfig, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Defense in depth: request headers are not logged at all, but should anything log them, these stay hidden.
      redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'],
      ...(options.logStream ? { stream: options.logStream } : {})
    },
    // One line per request is written by the onResponse hook below, with the user id.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Keep a well-formed X-Request-Id from the gateway, else make one.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return wellFormedRequestId(given) ? given : randomUUID()
    },
    // Requests on open connections while closing get 503 in the error shape (errors.ts), not Fastify's own body.
    return503OnClosing: false,
    clientErrorHandler,
    frameworkErrors
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.setValidatorCompiler(TypeBoxValidatorCompiler)

  const ownsDb = options.db === undefined
  const db = options.db ?? (await openDatabase(config, (err) => app.log.warn({ err: loggableError(err) }, 'idle database connection lost')))
  app.decorate('db', db)
  app.decorateRequest('userId', '')
  if (ownsDb) app.addHook('onClose', async () => db.close())

  // JSON is the only body type (anything else → 415). The hardened default parser, except that an empty body counts as "no body" (so a bodiless
  // PATCH /tasks/:id/complete sent with Content-Type: application/json works; routes that need a body say so).
  const defaultJson = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text.trim() === '') {
      done(null, undefined)
      return
    }
    defaultJson(request, text, done)
  })

  registerErrorHandling(app)

  // Request and database metrics (metrics.ts), unless METRICS_PORT=0; routes query through the timed database.
  const metrics = config.metricsPort !== 0 ? createMetrics(db) : undefined
  if (metrics !== undefined) await app.register(metricsPlugin, { metrics })
  else app.decorate('metrics', undefined)
  const routesDb = metrics?.instrument(db) ?? db

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id)
  })
  // Before any route: the Host allow-list (no DNS rebinding), then the gateway's signed identity on /tasks….
  await app.register(allowedHosts, { patterns: config.allowedHosts })
  await app.register(gatewayAssertion, { publicKeys: config.assertionPublicKeys })
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        userId: request.userId === '' ? undefined : request.userId,
        traceId: traceIdOf(request),
        method: request.method,
        url: request.url,
        statusCode: reply.statusCode,
        responseTime: Math.round(reply.elapsedTime * 10) / 10
      },
      'request completed'
    )
  })

  await app.register(swagger, {
    // Shared schemas (the one Error schema) become components named by their $id.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'task-service',
        version: '0.1.0',
        description: 'Private, user-scoped task store. Identity comes only from the X-User-Id header set by the gateway, proven by the identity assertion the gateway signs (X-Gateway-Assertion). ' +
          'Every error is {"error":{"code","message","requestId","details"?}} (components.schemas.Error); an unknown ' +
          'route is 404 route_not_found.'
      }
    }
  })
  await app.register(healthRoutes, { db: routesDb })
  await app.register(tasksRoutes, { db: routesDb })

  return app as unknown as FastifyInstance
}
