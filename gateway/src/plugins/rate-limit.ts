// Rate limiting (@fastify/rate-limit's counters, our hooks and our error shape).
//
// Two limits, each a fixed window of RATE_LIMIT_WINDOW_MS:
//  - per client IP (the socket address; the gateway is the public endpoint, trustProxy is off), counted in
//    onRequest BEFORE authentication, so a flood of bad tokens costs no signature checks past the limit;
//  - per user (`sub`), counted after authentication, just before the request is forwarded.
// Over a limit → 429 JSON `rate_limited` with Retry-After (seconds until the window resets); nothing is
// forwarded. /healthz and /readyz are not limited (probes).
//
// With REDIS_URL the counters live in Redis (one atomic Lua INCR+PEXPIRE per request), so every replica
// sharing that Redis enforces one limit. Redis never makes a request fail or hang: commands time out after
// 500 ms, are never queued while disconnected, and on any Redis error the request is let through (fail
// open, logged at most once per 10 s) — availability of the API outranks exactness of the limit.
// Counting is @fastify/rate-limit's own stores (LocalStore: an LRU of fixed windows in memory;
// RedisStore: one atomic Lua INCR+PEXPIRE per request), called from our callback-style hooks. The
// plugin's hook path (createRateLimit) awaits three promises per limiter per request, a cost that showed
// in the benchmark (docs/performance.md, "Hot-path choices"), and the in-memory store answers
// synchronously anyway.
import { createRequire } from 'node:module'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import { errorBody } from '../errors.js'
import type { RateLimitSettings } from '../limits-config.js'
import { pathWithoutQuery } from '../url-path.js'

type CounterStore = Pick<FastifyRateLimitStore, 'incr'>
type LocalStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, cacheSize: number) => CounterStore
type RedisStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, keyPrefix: string) => CounterStore
const require = createRequire(import.meta.url)
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as LocalStoreCtor
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as RedisStoreCtor

const UNLIMITED_PATHS = new Set(['/healthz', '/readyz'])

/** How long start-up waits for the first Redis connection before going on without it (fail open). */
export const REDIS_READY_WAIT_MS = 2_000

/** Distinct keys (IPs, users) each in-memory limiter tracks; the least recently seen is forgotten. */
export const LOCAL_STORE_KEYS = 10_000

interface Limiter {
  /** Which limit this is (the metrics label). */
  name: 'ip' | 'user'
  store: CounterStore
  max: number
  windowMs: number
}

/**
 * Counts one request against `key`; calls `done` to go on, or answers 429 itself. A store error lets
 * the request through (fail open; the Redis client logs the outage).
 */
function count (limiter: Limiter, key: string, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  limiter.store.incr(key, (err, result) => {
    if (err !== null || result === undefined) { done(); return }
    const remaining = Math.max(0, limiter.max - result.current)
    const resetSec = Math.ceil(result.ttl / 1000)
    // Two limiters may count one request (per IP, then per user): the headers describe the one with
    // fewer requests left, the one a client must pace itself by — and on a 429, the one that refused.
    const refused = result.current > limiter.max
    const shown = reply.getHeader('ratelimit-remaining')
    if (refused || shown === undefined || remaining < Number(shown)) {
      reply.header('ratelimit-limit', limiter.max)
      reply.header('ratelimit-remaining', remaining)
      reply.header('ratelimit-reset', resetSec)
    }
    if (!refused) { done(); return }
    request.server.gatewayMetrics?.rateLimited(limiter.name)
    const retryAfter = Math.max(1, resetSec)
    reply
      .code(429)
      .header('retry-after', String(retryAfter))
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(JSON.stringify(errorBody('rate_limited', `too many requests; retry in ${retryAfter} s`, String(request.id))))
  }, limiter.windowMs, limiter.max)
}

export const rateLimit = fp<RateLimitSettings>(async function rateLimit (app, settings) {
  if (settings.userMax === 0 && settings.ipMax === 0) return

  let redis: Redis | undefined
  let lastRedisWarning = 0
  if (settings.redisUrl !== undefined) {
    redis = new Redis(settings.redisUrl, {
      connectTimeout: 1_000,
      commandTimeout: 500,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: false,
      // Keep trying to reconnect in the background, at most every 2 s.
      retryStrategy: (times) => Math.min(times * 200, 2_000)
    })
    redis.on('error', (err: Error) => {
      const now = Date.now()
      if (now - lastRedisWarning > 10_000) {
        lastRedisWarning = now
        app.log.warn({ redisError: err.message }, 'rate-limit store unavailable; requests are let through until it returns')
      }
    })
    const r = redis
    app.addHook('onClose', async () => { r.disconnect() })
    // Wait, bounded, for the first connection: a replica that has just started then counts from its first
    // request instead of letting its first requests through uncounted while it connects. Redis being down
    // at start delays start-up by at most REDIS_READY_WAIT_MS and then fails open like any later outage.
    await new Promise<void>((resolve) => {
      if (r.status === 'ready') { resolve(); return }
      const done = (): void => { clearTimeout(timer); r.off('ready', done); resolve() }
      const timer = setTimeout(done, REDIS_READY_WAIT_MS)
      r.once('ready', done)
    })
  }

  const newStore = (): CounterStore => redis !== undefined
    ? new RedisStore(false, false, redis, 'gateway-rate-limit:')
    : new LocalStore(false, false, LOCAL_STORE_KEYS)
  const perIp: Limiter | undefined = settings.ipMax > 0 ? { name: 'ip', store: newStore(), max: settings.ipMax, windowMs: settings.windowMs } : undefined
  const perUser: Limiter | undefined = settings.userMax > 0 ? { name: 'user', store: newStore(), max: settings.userMax, windowMs: settings.windowMs } : undefined

  if (perIp !== undefined) {
    app.addHook('onRequest', (request, reply, done) => {
      // Only the probes' own methods are exempt: any other method on these paths is a proxied request
      // (authenticated, 404/405) and counts like one.
      if ((request.method === 'GET' || request.method === 'HEAD') && UNLIMITED_PATHS.has(pathWithoutQuery(request.url))) { done(); return }
      count(perIp, 'ip:' + request.ip, request, reply, done)
    })
  }
  if (perUser !== undefined) {
    // preHandler: after the proxy route's onRequest stage has authenticated the caller, before forwarding.
    app.addHook('preHandler', (request, reply, done) => {
      if (request.access === null || reply.sent) { done(); return }
      count(perUser, 'user:' + request.access.identity.sub, request, reply, done)
    })
  }
}, { name: 'gateway-rate-limit', fastify: '5.x' })
