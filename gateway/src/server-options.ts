// Options of the HTTP server itself, fixed when it is created: timeouts that keep slow clients from
// holding the gateway, keep-alive, and the answer to a request Node's HTTP parser refuses.
import type { IncomingMessage, Server } from 'node:http'
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
 * the raw socket, which is then closed. No Fastify hook runs for these, so the CORS headers for an
 * allowed origin are added here, when the request's Origin can be known (originOf).
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
    let cors = ''
    // Absent until the CORS plugin has registered (a client error during start-up).
    if (typeof this.corsHeaders === 'function') for (const [name, value] of this.corsHeaders(originOf(err, socket))) cors += `${name}: ${value}\r\n`
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n${cors}Connection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

const ORIGIN_LINE = /\r\norigin:[ \t]*([^\r\n]*?)[ \t]*\r\n/i

/**
 * The Origin of the request a client error belongs to, where it can be known:
 *  - the bytes the parser refused (err.rawPacket: malformed HTTP, headers too large), when the Origin
 *    line is among them — it is not when it came in an earlier packet than the error;
 *  - a request whose headers were read but whose body did not arrive in time (408): Node's parser still
 *    holds it (an undocumented property, read defensively).
 * Unknown for a request whose headers did not arrive in time (408): its Origin line may not even have
 * been sent; that answer carries no CORS headers.
 */
function originOf (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): string | undefined {
  if (err.rawPacket !== undefined) return ORIGIN_LINE.exec(err.rawPacket.toString('latin1'))?.[1]
  const incoming = (socket as Socket & { parser?: { incoming?: IncomingMessage | null } }).parser?.incoming
  if (incoming == null || incoming.complete) return undefined
  const origin = incoming.headers.origin
  return typeof origin === 'string' ? origin : undefined
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
