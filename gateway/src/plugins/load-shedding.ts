// Load shedding (@fastify/under-pressure): when the process is saturated, answer 503 at once instead of
// queueing work until the event loop stalls.
//
// Every LOAD_SHED_SAMPLE_INTERVAL_MS the process is sampled: mean event-loop delay, event-loop utilization
// over that interval, heap in use. While the last sample is over a threshold, every request except
// GET /healthz gets 503 JSON `overloaded` with Retry-After, in onRequest (before a token is verified or a
// byte is forwarded). /readyz is shed too, which tells a load balancer to send traffic elsewhere.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { errorBody } from '../errors.js'
import type { LoadSheddingSettings } from '../limits-config.js'
import { pathWithoutQuery } from '../url-path.js'

export const loadShedding = fp<LoadSheddingSettings>(async function loadShedding (app, settings) {
  if (settings.maxEventLoopDelayMs === 0 && settings.maxEventLoopUtilization === 0 && settings.maxHeapUsedBytes === 0) return

  // under-pressure sends a non-null return value of the handler as the body; returning nothing would let
  // the request through. Its type says void, hence the cast.
  const pressureHandler = (request: FastifyRequest, reply: FastifyReply, type: string): string | undefined => {
    if (request.method === 'GET' && pathWithoutQuery(request.url) === '/healthz') return undefined
    request.server.gatewayMetrics?.loadShed(type)
    request.log.warn({ pressure: type }, 'shedding load')
    reply
      .code(503)
      .header('retry-after', String(settings.retryAfterSec))
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', 'no-store')
    return JSON.stringify(errorBody('overloaded', 'the gateway is overloaded; retry shortly', String(request.id)))
  }

  await app.register(underPressure, {
    maxEventLoopDelay: settings.maxEventLoopDelayMs,
    maxEventLoopUtilization: settings.maxEventLoopUtilization,
    eventLoopUtilizationMode: 'interval',
    maxHeapUsedBytes: settings.maxHeapUsedBytes,
    sampleInterval: settings.sampleIntervalMs,
    retryAfter: settings.retryAfterSec,
    exposeStatusRoute: false,
    pressureHandler: pressureHandler as never
  })
}, { name: 'gateway-load-shedding', fastify: '5.x' })
