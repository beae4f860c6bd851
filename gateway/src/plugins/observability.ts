// Metrics and trace context. Registered right after logging, so that its onRequest hook is the first to see a
// request (load shedding and rate limits included).
//  - app.gatewayMetrics (metrics.ts): the pipeline reports through it (access line → request count and duration,
//    authentication failures, limit refusals, upstream timings); undefined with METRICS_PORT=0, and then no
//    hook is added at all. The listener that serves it is started by server.ts (metrics-server.ts).
//  - request.traceContext (trace-context.ts): made on first use — forwarding, or the access line.
import fp from 'fastify-plugin'
import { createGatewayMetrics, type GatewayMetrics } from '../metrics.js'
import type { OutgoingTraceContext } from '../trace-context.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Prometheus metrics of this gateway; undefined when METRICS_PORT=0. */
    gatewayMetrics: GatewayMetrics | undefined
  }
  interface FastifyRequest {
    /** The W3C trace context of this request, once made (trace-context.ts). */
    traceContext: OutgoingTraceContext | null
  }
}

export const observability = fp<{ metrics: boolean }>(function observability (app, opts, next) {
  app.decorateRequest('traceContext', null)
  if (!opts.metrics) {
    app.decorate('gatewayMetrics', undefined)
    next()
    return
  }
  const metrics = createGatewayMetrics()
  app.decorate('gatewayMetrics', metrics)
  app.addHook('onRequest', (_request, _reply, done) => {
    metrics.requestStarted()
    done()
  })
  next()
}, { name: 'gateway-observability', fastify: '5.x' })
