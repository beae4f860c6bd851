// Graceful stop without dropped requests behind a load balancer (or a client that watches readiness).
//
// On SIGTERM/SIGINT the gateway first DRAINS for SHUTDOWN_DRAIN_MS (default 0 = skip): it keeps serving,
// but /readyz answers 503 `draining` and every response carries `Connection: close`, so balancers take
// it out of rotation and keep-alive clients reconnect elsewhere. Then it closes: the listener stops
// accepting, in-flight requests finish and their connections close after the answer (a request arriving
// on a still-open connection gets 503 shutting_down), and the process exits — at the latest SHUTDOWN_DRAIN_MS + 10 s
// after the signal (server.ts). With SHUTDOWN_DRAIN_MS=0 the close starts at once.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { sendError } from '../errors.js'
import { pathWithoutQuery } from '../url-path.js'

const draining = new WeakSet<FastifyInstance>()

export const drain = fp(function drain (app, _opts, next) {
  // Every response sent once the stop has begun closes its connection — also those of requests that
  // were already in flight — so no keep-alive connection outlives the close (app.close() would wait for
  // it until the keep-alive timeout, past the grace period): setGatewayHeaders() (response-headers.ts)
  // asks isDraining() for the gateway's own answers and forwarded ones alike.
  // Callback-style hook: no promise per request on the hot path.
  // Once app.close() has begun, a request arriving on a still-open connection gets 503 in the one error shape
  // (return503OnClosing is off in app.ts).
  let closing = false
  app.addHook('preClose', (done) => { closing = true; done() })
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      reply.header('connection', 'close').header('retry-after', '1')
      sendError(reply, 503, 'shutting_down', 'the gateway is shutting down; retry shortly')
      return
    }
    if (!draining.has(app)) { done(); return }
    if (request.method === 'GET' && pathWithoutQuery(request.url) === '/readyz') {
      reply
        .code(503)
        .header('content-type', 'application/json; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(JSON.stringify({ status: 'draining', checks: { shutdown: 'draining' } }))
      return
    }
    done()
  })
  next()
}, { name: 'gateway-drain', fastify: '5.x' })

export function isDraining (app: FastifyInstance): boolean {
  return draining.has(app)
}

/** From now on /readyz answers 503 and every response closes its connection. */
export function beginDrain (app: FastifyInstance): void {
  draining.add(app)
}

/** Drains for `drainMs` (readiness 503, connections closed after each response), then closes the app. */
export async function drainAndClose (app: FastifyInstance, drainMs: number): Promise<void> {
  beginDrain(app)
  if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs))
  await app.close()
}
