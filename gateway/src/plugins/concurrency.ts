// Concurrency fairness: at most MAX_CONCURRENT_REQUESTS_PER_USER requests of one user (`sub`) in flight
// at once in this gateway process. The rate limits count requests per window; this counts requests that
// have not finished, so one user cannot hold a large share of the gateway (bodies being read, pooled
// connections to the task service) with slow requests while staying under a rate. Over the cap → 429
// `too_many_concurrent_requests` with Retry-After: 1, before the body is read or anything forwarded.
//
// Counted per process, not in Redis: a slot is held for the life of a request, and a crashed replica
// would leave shared counters too high; with N replicas a user may have N × the cap in flight.
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { sendTooManyRequests } from '../errors.js'
import type { ConcurrencySettings } from '../limits-config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Takes one of the caller's in-flight slots for this request, released when its response ends or its
     * connection closes. False when the caller has none left: the 429 has been sent then.
     */
    acquireUserSlot: (request: FastifyRequest, reply: FastifyReply, sub: string) => boolean
  }
}

export const concurrency = fp<ConcurrencySettings>(function concurrency (app, settings, next) {
  const inFlight = new Map<string, number>()
  const max = settings.perUserMax

  app.decorate('acquireUserSlot', function acquireUserSlot (request: FastifyRequest, reply: FastifyReply, sub: string): boolean {
    if (max === 0) return true
    const n = inFlight.get(sub) ?? 0
    if (n >= max) {
      request.log.info({ inFlight: n }, 'too many concurrent requests')
      sendTooManyRequests(reply, 'too_many_concurrent_requests', 1, `more than ${max} requests in flight; retry when one has finished`)
      return false
    }
    inFlight.set(sub, n + 1)
    let held = true
    const res = reply.raw
    // A response ends with 'close' — except a pipelined one whose client left before its turn, which
    // never gets a socket of its own: its connection's 'close' frees the slot then. A response that has
    // its socket already emits 'close' when that connection closes, so only a waiting one needs the
    // connection watched (no listener added to and removed from a keep-alive socket per request).
    const socket = res.socket === null ? request.raw.socket : null
    const release = (): void => {
      if (!held) return
      held = false
      res.off('close', release)
      socket?.off('close', release)
      const left = (inFlight.get(sub) ?? 1) - 1
      if (left <= 0) inFlight.delete(sub)
      else inFlight.set(sub, left)
    }
    res.once('close', release)
    socket?.once('close', release)
    return true
  })
  next()
}, { name: 'gateway-concurrency', fastify: '5.x' })
