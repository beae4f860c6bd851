// Errors raised inside the gateway (a request Fastify cannot take, e.g. an invalid Content-Type → 415;
// an unexpected throw → 500): the JSON error shape, no internals.
import fp from 'fastify-plugin'
import { sendError } from '../errors.js'

export const errorHandler = fp(function errorHandler (app, _opts, next) {
  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (status === 500) request.log.error({ err: error }, 'unexpected error')
    else request.log.info({ errCode: (error as { code?: string }).code }, 'request rejected')
    if (status === 500) return sendError(reply, 500, 'internal_error', 'internal error')
    // One code per status across the API: the task service answers its 415s unsupported_media_type too.
    if (status === 415) return sendError(reply, 415, 'unsupported_media_type', 'the Content-Type is not a valid media type')
    return sendError(reply, status, 'bad_request', 'bad request')
  })
  next()
}, { name: 'gateway-error-handler', fastify: '5.x' })
