// Unauthenticated operational routes: liveness, readiness (GET/HEAD never rate-limited: probes), and the
// public API's description.
import type { FastifyInstance } from 'fastify'
import { openapiDocument } from '../openapi.js'
import { countUnauthenticated } from './rate-limit.js'

export async function operationalRoutes (app: FastifyInstance, opts: { readinessTimeoutMs: number }): Promise<void> {
  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }))
  // 200 when the task service is ready and (with a JWKS) signing keys are loaded.
  app.get('/readyz', async (_request, reply) => {
    const signingKeys = app.signingKeys()
    const keysReady = signingKeys !== 'unavailable'
    const upstreamReady = await app.forwarder.upstreamReady(opts.readinessTimeoutMs)
    const ready = keysReady && upstreamReady
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not_ready',
      checks: { taskService: upstreamReady ? 'ok' : 'unavailable', signingKeys }
    })
  })
  // Served to anyone, so counted against the client address like any request without a valid token.
  app.get('/openapi.json', { onRequest: countUnauthenticated }, async (_request, reply) => reply.send(openapiDocument))
}
