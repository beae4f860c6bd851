// Errors raised inside the gateway (a request Fastify cannot take, e.g. an invalid Content-Type → 415;
// an unexpected throw → 500): the JSON error shape, no internals.
import fp from 'fastify-plugin'
import { sendError } from '../errors.js'

export const errorHandler = fp(function errorHandler (app, _opts, next) {
  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (status === 500) request.log.error({ err: error }, 'unexpected error')
    else request.log.info({ errCode: (error as { code?: string }).code }, 'request rejected')
    return sendError(reply, status, status === 500 ? 'internal_error' : 'bad_request', status === 500 ? 'internal error' : 'bad request')
  })
  next()
}, { name: 'gateway-error-handler', fastify: '5.x' })
