// Concurrency fairness: at most MAX_CONCURRENT_REQUESTS_PER_USER requests of one user (`sub`) in flight
// at once in this gateway process. The rate limits count requests per window; this counts requests that
// have not finished, so one user cannot hold a large share of the gateway (bodies being read, pooled
// connections to the task service) with slow requests while staying under a rate. Over the cap → 429
// `too_many_concurrent_requests` with Retry-After: 1, before the body is read or anything forwarded.
//
// Counted per process, not in Redis: a slot is held for the life of a request, and a crashed replica
// would leave shared counters too high; with N replicas a user may have N × the cap in flight.
import type { Socket } from 'node:net'
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
    // A response ends with 'close' — except a pipelined one whose client left before its turn, which
    // never gets a socket of its own: its connection's 'close' frees the slot then. A response that has
    // its socket already emits 'close' when that connection closes, so only a waiting one needs the
    // connection watched (no listener added to and removed from a keep-alive socket per request).
    const res = reply.raw
    const socket = res.socket === null ? request.raw.socket : null
    const { release } = new Slot(inFlight, sub, socket)
    res.on('close', release)
    socket?.on('close', release)
    return true
  })
  next()
}, { name: 'gateway-concurrency', fastify: '5.x' })

/** One request's slot: freed once, by whichever 'close' comes first. */
class Slot {
  held = true
  // Bound rather than a closure per request: a bound function is not compiled again for each request.
  readonly release: () => void = releaseSlot.bind(this)

  constructor (
    readonly inFlight: Map<string, number>,
    readonly sub: string,
    /** The connection, watched only while a pipelined response waits for its turn. */
    readonly socket: Socket | null
  ) {}
}

function releaseSlot (this: Slot): void {
  if (!this.held) return
  this.held = false
  // The response is done with either way; a keep-alive connection lives on and must not keep the listener.
  this.socket?.off('close', this.release)
  const left = (this.inFlight.get(this.sub) ?? 1) - 1
  if (left <= 0) this.inFlight.delete(this.sub)
  else this.inFlight.set(this.sub, left)
}
