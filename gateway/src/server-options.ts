// Options of the HTTP server itself, fixed when it is created: timeouts that keep slow clients from
// holding the gateway, keep-alive, and the answer to a request Node's HTTP parser refuses.
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyHttpOptions, FastifyInstance } from 'fastify'
import { errorBody } from './errors.js'
import type { ServerLimitSettings } from './limits-config.js'

/** Server timeouts not taken from the environment. */
export const SERVER_TIMEOUTS = {
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: 72_000,
  /** Max requests per keep-alive socket (0 = unlimited). */
  maxRequestsPerSocket: 0
}

/**
 * Malformed HTTP (400), a request not received in time (408), headers too large (431): answered on
 * the raw socket, which is then closed. No Fastify hook runs for these.
 */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
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

/**
 * The server options for `settings`: header and whole-request timeouts (SERVER_HEADERS_TIMEOUT_MS,
 * SERVER_REQUEST_TIMEOUT_MS), checked every connectionsCheckingIntervalMs — Node's default of 30 s
 * would let a slowloris client hold a socket for headersTimeout + 30 s.
 */
export function serverOptions (settings: ServerLimitSettings): FastifyHttpOptions<Server> {
  return {
    requestTimeout: settings.requestTimeoutMs,
    keepAliveTimeout: SERVER_TIMEOUTS.keepAliveTimeoutMs,
    maxRequestsPerSocket: SERVER_TIMEOUTS.maxRequestsPerSocket,
    http: { headersTimeout: settings.headersTimeoutMs, connectionsCheckingInterval: settings.connectionsCheckingIntervalMs },
    clientErrorHandler
  }
}
