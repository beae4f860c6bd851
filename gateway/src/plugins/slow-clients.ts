// Slow and greedy clients: connection cap and an early body-size check.
//
// The header and whole-request timeouts (SERVER_HEADERS_TIMEOUT_MS, SERVER_REQUEST_TIMEOUT_MS) are server
// options, set when the server is created (server-options.ts). Here:
//  - SERVER_MAX_CONNECTIONS: connections beyond it are closed by Node as soon as they are accepted;
//  - MAX_BODY_BYTES: a request whose Content-Length announces more is answered 413 JSON before it is
//    authenticated or forwarded (the gateway never parses bodies; a chunked body streams to the task
//    service, which refuses more than 64 KiB, and must arrive within SERVER_REQUEST_TIMEOUT_MS).
import fp from 'fastify-plugin'
import { sendError } from '../errors.js'
import type { ServerLimitSettings } from '../limits-config.js'

export const slowClients = fp<ServerLimitSettings>(function slowClients (app, settings, next) {
  if (settings.maxConnections > 0) app.server.maxConnections = settings.maxConnections

  app.addHook('onRequest', (request, reply, done) => {
    const cl = request.headers['content-length']
    if (cl !== undefined) {
      const n = Number(cl)
      if (Number.isFinite(n) && n > settings.maxBodyBytes) {
        reply.header('connection', 'close')
        sendError(reply, 413, 'payload_too_large', `request body larger than ${settings.maxBodyBytes} bytes`)
        return
      }
    }
    done()
  })
  next()
}, { name: 'gateway-slow-clients', fastify: '5.x' })
