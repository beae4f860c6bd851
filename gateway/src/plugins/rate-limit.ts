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
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import { errorBody } from '../errors.js'
import type { RateLimitSettings } from './limits-config.js'

const UNLIMITED_PATHS = new Set(['/healthz', '/readyz'])

/** How long start-up waits for the first Redis connection before going on without it (fail open). */
export const REDIS_READY_WAIT_MS = 2_000

type Limiter = (req: FastifyRequest) => Promise<{ isAllowed: boolean, isExceeded?: boolean, max?: number, remaining?: number, ttlInSeconds?: number }>

export interface RateLimitHandle {
  redis: Redis | undefined
}

function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

async function apply (limiter: Limiter, request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  const r = await limiter(request)
  if (r.isAllowed || r.max === undefined) return true
  reply.header('ratelimit-limit', r.max)
  reply.header('ratelimit-remaining', r.remaining ?? 0)
  reply.header('ratelimit-reset', r.ttlInSeconds ?? 0)
  if (r.isExceeded !== true) return true
  const retryAfter = Math.max(1, r.ttlInSeconds ?? 1)
  await reply
    .code(429)
    .header('retry-after', String(retryAfter))
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(JSON.stringify(errorBody('rate_limited', `too many requests; retry in ${retryAfter} s`, String(request.id))))
  return false
}

export async function registerRateLimit (app: FastifyInstance, settings: RateLimitSettings): Promise<RateLimitHandle> {
  if (settings.userMax === 0 && settings.ipMax === 0) return { redis: undefined }

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

  await app.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(redis !== undefined ? { redis, nameSpace: 'gateway-rate-limit:' } : {})
  })

  const perIp: Limiter | undefined = settings.ipMax > 0
    ? app.createRateLimit({ max: settings.ipMax, timeWindow: settings.windowMs, keyGenerator: (req) => 'ip:' + req.ip }) as Limiter
    : undefined
  const perUser: Limiter | undefined = settings.userMax > 0
    ? app.createRateLimit({ max: settings.userMax, timeWindow: settings.windowMs, keyGenerator: (req) => 'user:' + (req.identity?.sub ?? '') }) as Limiter
    : undefined

  if (perIp !== undefined) {
    app.addHook('onRequest', async (request, reply) => {
      if (UNLIMITED_PATHS.has(pathOf(request.url))) return
      await apply(perIp, request, reply)
    })
  }
  if (perUser !== undefined) {
    // preHandler: after the route's onRequest stage has authenticated the caller, before forwarding.
    app.addHook('preHandler', async (request, reply) => {
      if (request.identity === null || reply.sent) return
      await apply(perUser, request, reply)
    })
  }
  return { redis }
}
