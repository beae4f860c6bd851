// Prometheus metrics (prom-client): one Registry per app (tests build several gateways in one process), served
// only by the separate metrics listener, never on the public port. The HTTP request series, the process metrics
// and the listener are the ones both services share (packages/observability); the gateway adds its own.
//
// Label values come from closed sets only, so the number of series is bounded by construction:
//   route       a route template: /api/tasks, /api/tasks/:id, /api/tasks/:id/complete, the same under
//               /api/:user_id, /healthz, /readyz, /openapi.json — or "unmatched". Never a raw path, id or user.
//   code        an authentication error code (errors.ts), limit "ip" | "user", kind of an upstream error
// Everything read from the key store and the verification cache is read at scrape time.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createHttpMetrics, listenMetrics, PositionalHistogram, scrapedCounter, scrapedGauge, withProcessMetrics, type MetricsListener } from 'observability'
import { Counter, Registry } from 'prom-client'
import type { ErrorCode } from './errors.js'
import { normalizePath } from './pipeline/authorize.js'

/** Seconds: the gateway's own work is sub-millisecond, a forwarded request takes what the task service takes. */
export const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** What the metrics listener answers for any path but /metrics: the gateway's own code for an unknown route. */
const NOT_FOUND: ErrorCode = 'not_found'

/**
 * The route-table template a raw request target falls under, by the same normalization as authorize.ts
 * (so "/api//tasks/./x" is "/api/tasks/:id"), whatever the answer was (401, 403, 404, 405 included).
 */
export function routeTemplate (rawUrl: string): string {
  let end = rawUrl.length
  const q = rawUrl.indexOf('?')
  if (q !== -1) end = q
  const h = rawUrl.indexOf('#')
  if (h !== -1 && h < end) end = h
  const segs = normalizePath(rawUrl.slice(0, end))
  if (segs === undefined || segs.length < 2 || segs[0] !== 'api') return 'unmatched'
  let prefix: string
  let rest: number
  if (segs[1] === 'tasks') {
    prefix = '/api/tasks'
    rest = 2
  } else if (segs[2] === 'tasks') {
    prefix = '/api/:user_id/tasks'
    rest = 3
  } else {
    return 'unmatched'
  }
  const extra = segs.length - rest
  if (extra === 0) return prefix
  if ((segs[rest] as string).startsWith('..')) return 'unmatched'
  if (extra === 1) return prefix + '/:id'
  if (extra === 2 && segs[rest + 1] === 'complete') return prefix + '/:id/complete'
  return 'unmatched'
}

/** What the key store reports at scrape time (keys/jwks.ts). */
export interface KeyStoreStats {
  fetches: number
  failures: number
  keys: number
  /** Epoch ms of the last successful fetch; 0 before the first. */
  lastSuccessAt: number
}

/** What the verification cache reports at scrape time (verification-cache.ts). */
export interface CacheStats {
  hits: number
  misses: number
  size: number
  maxEntries: number
}

export type UpstreamErrorKind = 'unavailable' | 'timeout' | 'failed_mid_body'

/** The interface the pipeline reports through; every method is cheap and never throws. */
export interface GatewayMetrics {
  readonly registry: Registry
  /** Starts the metrics listener for this registry (rejects when the port cannot be bound). */
  listen: (at: { port: number, host: string }) => Promise<MetricsListener>
  /** onRequest: one more request in flight. */
  requestStarted: () => void
  /** Once per request, with its access line: count and duration; one fewer in flight when `started`. */
  requestCompleted: (request: FastifyRequest, reply: FastifyReply, aborted: boolean, started: boolean) => void
  authenticationFailed: (code: string) => void
  rateLimited: (limit: 'ip' | 'user') => void
  loadShed: (reason: string) => void
  /** The task service's response head arrived, `seconds` after the request was handed to the pool. */
  upstreamResponded: (statusCode: number, seconds: number) => void
  upstreamFailed: (kind: UpstreamErrorKind) => void
  /** Read at scrape time; set once the key store / cache exist. */
  watchKeyStore: (stats: () => KeyStoreStats) => void
  watchCache: (stats: () => CacheStats) => void
}

const AUTHORIZED_TEMPLATES = {
  '/api': { collection: '/api/tasks', item: '/api/tasks/:id', complete: '/api/tasks/:id/complete' },
  '/api/:user_id': { collection: '/api/:user_id/tasks', item: '/api/:user_id/tasks/:id', complete: '/api/:user_id/tasks/:id/complete' }
} as const

/** Route template of a request: the authorized route's, a Fastify route's own (operational routes), else the route table's. */
function routeOf (request: FastifyRequest): string {
  const route = request.access?.route
  if (route != null) return AUTHORIZED_TEMPLATES[route.publicPrefix === '/api' ? '/api' : '/api/:user_id'][route.kind]
  const url = request.routeOptions.url
  if (url !== undefined && url !== '/*') return url
  return routeTemplate(request.url)
}

const LOAD_SHED_REASONS = new Set(['eventLoopDelay', 'eventLoopUtilization', 'heapUsedBytes', 'rssBytes'])

export function createGatewayMetrics (): GatewayMetrics {
  const own = new Registry()
  const http = createHttpMetrics(own, { buckets: HTTP_BUCKETS })
  const authFailures = new Counter({
    name: 'gateway_authentication_failures_total',
    help: 'Requests refused with 401, by error code (missing_token, token_expired, invalid_signature, …)',
    labelNames: ['code'] as const,
    registers: [own]
  })
  const rateLimited = new Counter({
    name: 'gateway_rate_limited_total',
    help: 'Requests refused with 429, by the limit that refused them (user: a valid token over its per-user budget; ip: a client address over its budget of requests without a valid token)',
    labelNames: ['limit'] as const,
    registers: [own]
  })
  const shed = new Counter({
    name: 'gateway_load_shed_total',
    help: 'Requests refused with 503 because the process was saturated, by the measure over its threshold',
    labelNames: ['reason'] as const,
    registers: [own]
  })
  const upstreamDuration = new PositionalHistogram({
    name: 'gateway_upstream_duration_seconds',
    help: 'Time from handing a request to the task-service pool to its response head (queueing and connecting included), by status code',
    labelNames: ['status_code'],
    buckets: HTTP_BUCKETS,
    registers: [own]
  })
  const upstreamErrors = new Counter({
    name: 'gateway_upstream_errors_total',
    help: 'Forwarded requests that got no whole answer from the task service: unavailable (502), timeout (504), failed_mid_body (connection cut)',
    labelNames: ['kind'] as const,
    registers: [own]
  })
  for (const kind of ['unavailable', 'timeout', 'failed_mid_body']) upstreamErrors.inc({ kind }, 0)

  let keyStats: (() => KeyStoreStats) | undefined
  let cacheStats: (() => CacheStats) | undefined
  scrapedCounter(own, {
    name: 'gateway_jwks_fetches_total',
    help: 'JWKS fetches, by result (success, failure)',
    label: 'result',
    read: () => {
      const s = keyStats?.()
      return s === undefined ? undefined : { success: s.fetches - s.failures, failure: s.failures }
    }
  })
  scrapedGauge(own, {
    name: 'gateway_jwks_keys',
    help: 'Usable signing keys in the JWKS key set held now',
    read: () => keyStats?.().keys
  })
  scrapedGauge(own, {
    name: 'gateway_jwks_age_seconds',
    help: 'Seconds since the JWKS key set was last fetched successfully (-1 before the first success)',
    read: () => {
      const at = keyStats?.().lastSuccessAt
      return at === undefined ? undefined : at === 0 ? -1 : (Date.now() - at) / 1000
    }
  })
  scrapedCounter(own, {
    name: 'gateway_verification_cache_requests_total',
    help: 'Token verification cache lookups, by result (hit: no signature check; miss: verified)',
    label: 'result',
    read: () => {
      const s = cacheStats?.()
      return s === undefined ? undefined : { hit: s.hits, miss: s.misses }
    }
  })
  scrapedGauge(own, {
    name: 'gateway_verification_cache_entries',
    help: 'Verified tokens held in the verification cache',
    read: () => cacheStats?.().size
  })
  scrapedGauge(own, {
    name: 'gateway_verification_cache_max_entries',
    help: 'The verification cache\'s capacity (JWT_CACHE_MAX_ENTRIES)',
    read: () => cacheStats?.().maxEntries
  })

  const registry = withProcessMetrics(own)
  return {
    registry,
    listen: (at) => listenMetrics(registry, { ...at, notFoundCode: NOT_FOUND }),
    requestStarted: http.requestStarted,
    requestCompleted (request, reply, aborted, started) { http.requestCompleted(request, reply, routeOf(request), aborted, started) },
    authenticationFailed (code) { authFailures.inc({ code }) },
    rateLimited (limit) { rateLimited.inc({ limit }) },
    loadShed (reason) { shed.inc({ reason: LOAD_SHED_REASONS.has(reason) ? reason : 'other' }) },
    upstreamResponded (statusCode, seconds) { upstreamDuration.observe(seconds, String(statusCode)) },
    upstreamFailed (kind) { upstreamErrors.inc({ kind }) },
    watchKeyStore (stats) { keyStats = stats },
    watchCache (stats) { cacheStats = stats }
  }
}
