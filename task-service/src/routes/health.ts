// Liveness, readiness and the OpenAPI document. No identity needed.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Database } from '../db.js'
import { errorBody, errorResponses, loggableError } from '../errors.js'
import { HealthResponse } from '../schemas.js'

/** How long /readyz waits for the database before calling it unavailable. */
export const READY_TIMEOUT_MS = 2000

async function ping (db: Database): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('database did not answer in time')), READY_TIMEOUT_MS)
  })
  try {
    await Promise.race([db.query('SELECT 1'), timeout])
  } finally {
    clearTimeout(timer)
  }
}

export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, opts) => {
  app.get(
    '/healthz',
    { schema: { summary: 'The process is up', tags: ['health'], response: { 200: HealthResponse, ...errorResponses(503) } } },
    async () => ({ status: 'ok' })
  )

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'The database answers',
        tags: ['health'],
        response: { 200: HealthResponse, ...errorResponses(500, 503) }
      }
    },
    async (request, reply) => {
      try {
        await ping(opts.db)
        return { status: 'ready' }
      } catch (err) {
        request.log.warn({ err: loggableError(err) }, 'readiness check failed')
        return reply
          .code(503)
          .header('retry-after', '1')
          .send(errorBody('database_unavailable', 'the database is unavailable; retry shortly', String(request.id)))
      }
    }
  )

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
