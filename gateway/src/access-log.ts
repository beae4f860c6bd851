// The access log: exactly one line per request, `request completed`, with reqId, and userId once
// authenticated. Written by the root logger with the bindings spelled out, so that no per-request child
// logger is made for it (request-logger.ts).
//
// Two writers: the onResponse hook (plugins/logging.ts) for every response that was sent whole, and the forwarder
// (pipeline/forward.ts) for a request to be forwarded that did not end with a whole response — the
// client went away (before forwarding, while waiting, or mid-body), the task service failed mid-body,
// or the client stopped reading. Fastify runs onResponse only on 'finish' or 'error', so without the
// second writer those requests would leave no line at all. Such a line carries `aborted: true`, and
// statusCode 499 ("client closed request", as nginx logs it) when no status had been sent yet. (Not
// covered: a client that leaves during the few microseconds in which the gateway writes one of its own
// small answers — 401, 403, 429 — for a request that is never forwarded.)
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { statusOf } from 'observability'
import { pathWithoutQuery } from './url-path.js'
import { traceIdOf } from './trace-context.js'

// The request metrics (metrics.ts) are counted here too: one count per access line.
export function logAccess (log: FastifyBaseLogger, request: FastifyRequest, reply: FastifyReply, aborted: boolean): void {
  request.server.gatewayMetrics?.requestCompleted(request, reply, aborted, true)
  // One object literal of one shape (pino leaves out the keys whose value is undefined).
  log.info({
    reqId: request.id,
    userId: request.access?.identity.sub,
    // The client address as TRUST_PROXY defines it (trust-proxy.ts).
    clientIp: request.ip,
    traceId: traceIdOf(request),
    method: request.method,
    path: pathWithoutQuery(request.url),
    statusCode: statusOf(reply, aborted),
    responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
    aborted: aborted ? true : undefined
  }, 'request completed')
}
