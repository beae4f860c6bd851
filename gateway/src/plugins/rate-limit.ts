// Rate limiting: who is limited, by what. Two limits, each a fixed window of RATE_LIMIT_WINDOW_MS:
//  - per user (`sub`): every request with a valid token, counted right after authentication
//    (plugins/authentication.ts), whatever the route, method or answer (404, 405, a malformed URL).
//    Never by address: users behind one NAT or load balancer each have their own budget;
//  - per client address (request.ip as TRUST_PROXY defines it; an IPv6 client's /64, client-address.ts):
//    every request WITHOUT a valid token — each authentication failure (missing, malformed, bad
//    signature, expired, wrong audience or type…) and each request to the unauthenticated document
//    (/openapi.json). GET/HEAD /healthz and /readyz and CORS preflights never authenticate and never count.
//
// Cutting an address off costs nothing: when a failure uses up the address's budget, the address goes
// into a small in-process map of blocked addresses until its window resets. Authentication checks that
// map first, synchronously, before it looks at the token: a blocked address gets 429 with no signature
// check and no JWKS fetch. One exception: a token already in the verification cache (verified earlier,
// no signature work left) still passes and is counted against its user, so users behind a NAT shared
// with an attacker keep working with the tokens they hold; a token never seen before waits for the
// window like any other unverified request.
//
// Over a limit → 429 JSON `rate_limited` with Retry-After (seconds until the window resets) and
// RateLimit-Limit/-Remaining/-Reset of the limit that counted the request; nothing is forwarded.
//
// With REDIS_URL the counters live in Redis (one atomic Lua INCR+PEXPIRE per count), so every replica
// sharing that Redis enforces one budget per user and one failure budget per address; the blocked-address
// map stays per process (a replica learns of a block at its own next failure from that address). Redis
// never makes a request fail or hang: commands time out after 500 ms, are never queued while
// disconnected, and on any Redis error the request is let through (fail open, logged at most once per
// 10 s) — availability of the API outranks exactness of the limit.
// Counting is @fastify/rate-limit's own stores (LocalStore: an LRU of fixed windows in memory;
// RedisStore), called from callbacks: the plugin's hook path (createRateLimit) awaits three promises per
// limiter per request, a cost that showed in the benchmark (docs/performance.md, "Hot-path choices"),
// and the in-memory store answers synchronously anyway.
import { createRequire } from 'node:module'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import { addressKey } from '../client-address.js'
import type { Proceed } from '../pipeline/access.js'
import { errorBody } from '../errors.js'
import type { RateLimitSettings } from '../limits-config.js'

type CounterStore = Pick<FastifyRateLimitStore, 'incr'>
type LocalStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, cacheSize: number) => CounterStore
type RedisStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, keyPrefix: string) => CounterStore
const require = createRequire(import.meta.url)
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as LocalStoreCtor
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as RedisStoreCtor

/** How long start-up waits for the first Redis connection before going on without it (fail open). */
export const REDIS_READY_WAIT_MS = 2_000

/** Distinct keys (addresses, users) each in-memory limiter tracks; the least recently seen is forgotten. */
export const LOCAL_STORE_KEYS = 10_000

/**
 * Addresses held as blocked at once; past it the one blocked longest ago is forgotten (its next failure
 * is counted in the store again, finds the budget used up and blocks it again).
 */
export const BLOCKED_ADDRESSES_MAX = 10_000

declare module 'fastify' {
  interface FastifyInstance {
    /** The rate limits, for authentication (plugins/authentication.ts) and unauthenticated routes. */
    rateLimits: RateLimits
  }
}

export interface RateLimits {
  /**
   * Before a token is looked at: true when the request's address is cut off (it has used up its failure
   * budget in this window). Synchronous and free; answers nothing.
   */
  addressBlocked: (request: FastifyRequest) => boolean
  /** Answers 429 for a cut-off address (after addressBlocked said so). */
  refuseAddress: (request: FastifyRequest, reply: FastifyReply) => void
  /** Counts a request without a valid token against its address; calls `next`, or answers 429 itself. */
  countAddress: (request: FastifyRequest, reply: FastifyReply, next: () => void) => void
  /** Counts an authenticated request against `sub`; calls `next(request, reply, context)`, or answers 429 itself. */
  countUser: <C>(request: FastifyRequest, reply: FastifyReply, sub: string, next: Proceed<C>, context: C) => void
}

interface Limiter {
  /** Which limit this is (the metrics label). */
  name: 'ip' | 'user'
  store: CounterStore
  max: number
  windowMs: number
}

const noLimits: RateLimits = {
  addressBlocked: () => false,
  refuseAddress: () => {},
  countAddress: (_request, _reply, next) => { next() },
  countUser: (request, reply, _sub, next, context) => { next(request, reply, context) }
}

function rateLimitHeaders (reply: FastifyReply, max: number, remaining: number, resetSec: number): void {
  reply.header('ratelimit-limit', max)
  reply.header('ratelimit-remaining', remaining)
  reply.header('ratelimit-reset', resetSec)
}

function refuse (limiter: Limiter, request: FastifyRequest, reply: FastifyReply, resetSec: number): void {
  request.server.gatewayMetrics?.rateLimited(limiter.name)
  rateLimitHeaders(reply, limiter.max, 0, resetSec)
  const retryAfter = Math.max(1, resetSec)
  reply
    .code(429)
    .header('retry-after', String(retryAfter))
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(JSON.stringify(errorBody('rate_limited', `too many requests; retry in ${retryAfter} s`, String(request.id))))
}

/**
 * Counts one request against `key`; calls `next(request, reply, context)` to go on, or answers 429 itself.
 * `usedUp` hears of a count that reaches or passes the limit (with the window's remaining ms). A store error
 * lets the request through (fail open; the Redis client logs the outage).
 */
function count<C> (limiter: Limiter, key: string, request: FastifyRequest, reply: FastifyReply, next: Proceed<C>, context: C, usedUp?: (ttlMs: number) => void): void {
  limiter.store.incr(key, (err, result) => {
    if (err !== null || result === undefined) { next(request, reply, context); return }
    const resetSec = Math.ceil(result.ttl / 1000)
    if (result.current >= limiter.max && result.ttl > 0) usedUp?.(result.ttl)
    if (result.current > limiter.max) { refuse(limiter, request, reply, resetSec); return }
    rateLimitHeaders(reply, limiter.max, limiter.max - result.current, resetSec)
    next(request, reply, context)
  }, limiter.windowMs, limiter.max)
}

/** Blocked address keys → when their window ends (epoch ms). Insertion order = blocking order. */
class BlockedAddresses {
  private readonly until = new Map<string, number>()

  /** True when no address is blocked: callers then need no key at all. */
  get empty (): boolean {
    return this.until.size === 0
  }

  /** Milliseconds until `key` is unblocked, or 0 when it is not blocked. */
  remainingMs (key: string): number {
    if (this.until.size === 0) return 0
    const end = this.until.get(key)
    if (end === undefined) return 0
    const left = end - Date.now()
    if (left > 0) return left
    this.until.delete(key)
    return 0
  }

  block (key: string, forMs: number): void {
    this.until.delete(key)
    if (this.until.size >= BLOCKED_ADDRESSES_MAX) {
      const oldest = this.until.keys().next()
      if (oldest.done !== true) this.until.delete(oldest.value)
    }
    this.until.set(key, Date.now() + forMs)
  }
}

export const rateLimit = fp<RateLimitSettings>(async function rateLimit (app, settings) {
  if (settings.userMax === 0 && settings.ipMax === 0) {
    app.decorate('rateLimits', noLimits)
    return
  }

  let redis: Redis | undefined
  let lastRedisWarning = 0
  if (settings.redisUrl !== undefined) {
    // Loaded only when Redis is used: ioredis defines a subclass of String at load time, after which V8
    // runs string code in the whole process slower (a pino log line ~2x) — a cost for no use without Redis.
    const { Redis } = await import('ioredis')
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
  const perAddress: Limiter | undefined = settings.ipMax > 0 ? { name: 'ip', store: newStore(), max: settings.ipMax, windowMs: settings.windowMs } : undefined
  const perUser: Limiter | undefined = settings.userMax > 0 ? { name: 'user', store: newStore(), max: settings.userMax, windowMs: settings.windowMs } : undefined
  const blocked = new BlockedAddresses()
  // request.ip is read from the socket, which a client that has already gone leaves without an address.
  const keyOf = (request: FastifyRequest): string => addressKey((request.ip as string | undefined) ?? 'unknown')

  const limits: RateLimits = {
    addressBlocked: perAddress === undefined
      ? () => false
      : (request) => !blocked.empty && blocked.remainingMs(keyOf(request)) > 0,
    refuseAddress (request, reply) {
      if (perAddress === undefined) return
      refuse(perAddress, request, reply, Math.ceil(blocked.remainingMs(keyOf(request)) / 1000))
    },
    countAddress: perAddress === undefined
      ? noLimits.countAddress
      : (request, reply, next) => {
          const key = keyOf(request)
          // Once the budget is used up, the next request from here is refused before its token is read.
          count(perAddress, 'ip:' + key, request, reply, proceedWith, next, (ttlMs) => { blocked.block(key, ttlMs) })
        },
    countUser: perUser === undefined
      ? noLimits.countUser
      : (request, reply, sub, next, context) => { count(perUser, 'user:' + sub, request, reply, next, context) }
  }
  app.decorate('rateLimits', limits)
}, { name: 'gateway-rate-limit', fastify: '5.x' })

/** countAddress's `next` (a plain callback) as a Proceed. */
function proceedWith (_request: FastifyRequest, _reply: FastifyReply, next: () => void): void {
  next()
}

/** An onRequest hook for a route answered without authentication (the API document): counted per address. */
export function countUnauthenticated (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const limits = request.server.rateLimits
  if (limits.addressBlocked(request)) { limits.refuseAddress(request, reply); return }
  limits.countAddress(request, reply, done)
}
