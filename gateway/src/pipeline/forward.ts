// Stage 4 — forward: stream the request to the task service over a dedicated undici Pool.
//
// Engine: undici's dispatcher API (`pool.dispatch` with a handler), the layer that
// @fastify/http-proxy and @fastify/reply-from are built on, called directly. The response head is
// written to the client's socket as soon as undici has parsed it and the body chunks are written as
// they arrive (with backpressure both ways); no stream objects, no header copies, no retry machinery
// per request. Chosen over reply.from() on the same pool by a same-run A/B (gateway/README.md,
// "Forwarder"; bench/forwarder-ab.ts). The upstream path is always the one authorize.ts BUILT from
// the normalized route, never a prefix swap on the raw URL, so no spelling of the raw URL can address
// anything outside /tasks upstream.
//
// - Pool: `upstreamConnections` keep-alive sockets (default 128), no pipelining, idle sockets kept
//   60 s (bounded by the server's Keep-Alive hint), connect timeout = UPSTREAM_TIMEOUT_MS. TLS
//   certificates are verified.
// - No retries: a request reaches the task service at most once.
// - Body first: a request's body is read whole (up to MAX_BODY_BYTES; a larger chunked body → 413 and
//   the connection closed) before the request is handed to the pool, so a client that trickles its body
//   holds its own socket and one of its in-flight slots (plugins/concurrency.ts), never one of the
//   task service's pooled connections. A client that leaves mid-body is logged (499) and nothing is
//   sent. The read itself is bounded by SERVER_REQUEST_TIMEOUT_MS (Node answers 408 and closes).
// - Deadline: UPSTREAM_TIMEOUT_MS counts from the moment forwarding starts (the body in hand) — time
//   queued in the pool (all connections busy), connecting, sending the body and waiting for response
//   headers. When it
//   passes, the client gets 504 upstream_timeout and the upstream request is aborted (a queued one is
//   never sent; a sent one has its connection closed), so a hanging task service cannot make
//   requests wait N × the timeout behind each other. (undici's own headers timeout only starts once
//   a request has a connection.) After the head, undici's body timeout (the same value) bounds each
//   pause in the response body.
// - Client gone (connection closed before the response finished): the upstream request is aborted. A
//   queued one is dropped without touching the pooled connection it would have used.
// - Client that stops reading: while it takes nothing, the task service is held back (backpressure); after
//   SERVER_RESPONSE_STALL_TIMEOUT_MS without a byte reaching its connection the client is disconnected and
//   the upstream request aborted, since undici's body timeout does not run while a response is paused.
//   (Progress is seen when Node hands bytes to the kernel, which takes the client reading a part of the
//   socket buffers: a client reading a multi-megabyte answer very slowly can look stalled.)
// - Pipelined requests are forwarded as they arrive; each answer waits for the ones before it (Node
//   queues them). Such an answer has no socket yet, so its stall timer starts only when its turn comes,
//   and the connection itself is watched for the client leaving (Node emits no 'close' on it then).
// - The gateway's own 504 closes the client connection only when Node's parser has not seen the whole
//   request (part of its body still on the wire); otherwise the connection serves the next request.
// - Errors before the response head: refused/reset/garbage → 502 upstream_unavailable; connect
//   timeout → 504. After the head has been sent the client's connection is closed mid-body (a
//   truncated response, never a well-formed wrong one). Bodies never name the host.
// - Response head: the gateway's own headers (response-headers.ts: request id, security headers,
//   `Connection: close` while draining, and whatever earlier hooks set: CORS, rate limit) are set by the
//   same function as on the gateway's own answers, and win over the task service's; the task service's
//   headers are filtered and their URI references made public by response-rewrite.ts.
// Properties over random well- and ill-behaved clients (pipelining, leaving, not reading, half-closing):
// gateway/test/connection-chaos.test.ts.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Pool, type Dispatcher } from 'undici'
import { sendError } from '../errors.js'
import { logAccess } from '../access-log.js'
import { gatewayHeadersForForwarding } from '../response-headers.js'
import type { AuthorizedRoute } from './authorize.js'
import { createReadinessProbe, type ReadinessProbe } from './readiness.js'
import { appendUpstreamHeaders, referenceRules, type ReferenceRules } from './response-rewrite.js'
import type { GatewayMetrics } from '../metrics.js'

export interface ForwardOptions {
  origin: string
  /** PUBLIC_URL: when set, Location/Link/Content-Location/Refresh references are absolute on it. */
  publicUrl?: string | undefined
  timeoutMs: number
  connections: number
  /** How long a client may take none of its response before it is cut off (SERVER_RESPONSE_STALL_TIMEOUT_MS). */
  stallTimeoutMs: number
  /** The largest request body read and forwarded (MAX_BODY_BYTES). */
  maxBodyBytes: number
  /** True when every response must close its connection (the gateway is draining). */
  closeConnections?: () => boolean
  /** Told how long the task service took to answer, and of every forward that got no whole answer (metrics.ts). */
  observer?: UpstreamObserver | undefined
}

export type UpstreamObserver = Pick<GatewayMetrics, 'upstreamResponded' | 'upstreamFailed'>

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'])

class UpstreamDeadlineError extends Error {
  override name = 'UpstreamDeadlineError'
  code = 'GATEWAY_UPSTREAM_DEADLINE'
}

class ClientGoneError extends Error {
  override name = 'ClientGoneError'
  code = 'GATEWAY_CLIENT_GONE'
}

export interface Forwarder {
  /** Forwards the request; the answer (the task service's, or a 502/504) is sent on `reply`. */
  forward: (request: FastifyRequest, reply: FastifyReply, route: AuthorizedRoute, headers: Record<string, string>) => void
  /** The task service's readiness for /readyz (readiness.ts). */
  upstreamReady: ReadinessProbe
}

interface ExchangeSettings {
  rules: ReferenceRules
  timeoutMs: number
  stallTimeoutMs: number
  closeConnections: (() => boolean) | undefined
  observer: UpstreamObserver | undefined
}

/**
 * Where one exchange stands. `waiting`: no answer yet (the deadline runs). `answered`: the gateway
 * answered the client itself (502/504). `streaming`: the task service's head was written, its body
 * follows. `over`: nothing more to do (body finished, or the client went away).
 */
type ExchangeState = 'waiting' | 'answered' | 'streaming' | 'over'

/**
 * One forwarded request: undici's handler for it, its deadline and its client. Exactly one answer
 * reaches the client: the task service's response, or the gateway's 502/504.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private state: ExchangeState = 'waiting'
  private controller: Dispatcher.DispatchController | undefined
  /** Set when the upstream request must be aborted before undici has handed us its controller. */
  private pendingAbort: Error | undefined
  private upstreamOver = false
  private paused = false
  /** Runs while the client takes none of the response (paused): see clientStalled(). */
  private stallTimer: NodeJS.Timeout | undefined
  /** The client connection's bytesWritten when the stall timer was last armed (progress check). */
  private stallMark = 0
  private readonly res: ServerResponse
  private readonly timer: NodeJS.Timeout
  private closeSeen = false
  /** performance.now() when the request was handed to the pool (0 without an observer). */
  private readonly startedAt: number

  constructor (
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly prefix: string,
    private readonly settings: ExchangeSettings
  ) {
    this.res = reply.raw
    this.startedAt = settings.observer !== undefined ? performance.now() : 0
    this.timer = setTimeout(onDeadline, settings.timeoutMs, this)
    // Bound rather than a closure per exchange: a bound function is not compiled again for each request.
    // connectionClosed() runs once whatever calls it, so plain listeners do (no once() wrappers).
    const closed = this.connectionClosed.bind(this)
    this.res.on('close', closed)
    // A pipelined request's response has no socket until the answers before it are out, and Node emits
    // no 'close' on it when the client goes away meanwhile: watch the connection itself until then.
    const socket = request.raw.socket
    if (this.res.socket === null && socket !== null) {
      socket.on('close', closed)
      this.res.once('finish', () => { socket.off('close', closed) })
    }
  }

  /** The client's connection closed (or the response did): once per exchange. */
  private connectionClosed (): void {
    if (this.closeSeen) return
    this.closeSeen = true
    this.clientClosed()
    // Closed before the response was finished: Fastify's onResponse (the access line) will not run.
    if (!this.res.writableFinished) logAccess(this.request.server.log, this.request, this.reply, true)
  }

  // ---- undici's handler interface ------------------------------------------------------------------

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    // Dropped while it waited for a connection (client gone, deadline passed). Throwing here makes undici
    // fail the request before a byte is written and leave the connection in the pool; controller.abort()
    // would destroy that healthy connection as if a request on it had been cut off mid-way.
    if (this.pendingAbort !== undefined) throw this.pendingAbort
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // An interim answer (102 Processing, 103 Early Hints): the final one follows; the deadline still runs.
    if (statusCode < 200) return
    if (this.state === 'waiting' && clientGone(this.res)) this.clientClosed()
    if (this.state !== 'waiting') {
      // The gateway has answered already (deadline) or the client is gone: this response has no taker.
      controller.abort(new ClientGoneError('response no longer wanted'))
      return
    }
    clearTimeout(this.timer)
    // Close the connection after this answer when part of the client's body was never read (the task
    // service answered early): the rest would be taken for the next request.
    if (!this.request.raw.complete) this.reply.header('connection', 'close')
    this.settings.observer?.upstreamResponded(statusCode, (performance.now() - this.startedAt) / 1000)
    const out: string[] = []
    const owned = gatewayHeadersForForwarding(out, this.reply, this.settings.closeConnections?.() === true)
    appendUpstreamHeaders(out, headers, this.prefix, this.settings.rules, owned)
    try {
      this.res.writeHead(statusCode, out)
    } catch (err) {
      // A head Node refuses to write (e.g. a header value with characters HTTP does not allow).
      this.state = 'answered'
      controller.abort(err as Error)
      this.request.log.warn({ upstreamError: (err as { code?: string }).code ?? 'invalid_response_head' }, 'task service response cannot be forwarded')
      this.answerItself(502, !this.request.raw.complete)
      return
    }
    this.state = 'streaming'
    this.reply.hijack()
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.state !== 'streaming') return
    if (clientGone(this.res)) {
      // write() on a closed response returns false and never emits 'drain': pausing would hold the
      // upstream connection for good.
      this.clientClosed()
      return
    }
    if (!this.res.write(chunk) && !this.paused) {
      // The client reads slower than the task service sends: stop reading from the task service until
      // it drains (or goes away: the 'close' listener aborts the upstream request then).
      this.paused = true
      controller.pause()
      // A pipelined answer still waiting for the ones before it has no socket: the client is not the one
      // holding it up, so the stall timer starts only once the answer has its turn.
      if (this.res.socket !== null) this.armStallTimer()
      else this.res.once('socket', () => { if (this.paused) this.armStallTimer() })
      this.res.once('drain', () => {
        this.paused = false
        clearTimeout(this.stallTimer)
        controller.resume()
      })
    }
  }

  onResponseEnd (): void {
    this.upstreamOver = true
    clearTimeout(this.stallTimer)
    if (this.state !== 'streaming') return
    this.state = 'over'
    this.res.end()
  }

  onResponseError (_controller: Dispatcher.DispatchController | undefined, error: Error & { code?: string, cause?: unknown }): void {
    this.upstreamOver = true
    clearTimeout(this.stallTimer)
    const state = this.state
    if (state === 'waiting') {
      this.state = 'answered'
      clearTimeout(this.timer)
      const cause = error.cause as { code?: string } | undefined
      const code = cause?.code ?? error.code
      this.request.log.warn({ upstreamError: code }, 'task service request failed')
      const timedOut = TIMEOUT_CODES.has(code ?? '')
      this.settings.observer?.upstreamFailed(timedOut ? 'timeout' : 'unavailable')
      this.answerItself(timedOut ? 504 : 502, !this.request.raw.complete)
    } else if (state === 'streaming') {
      // The head is out: the only honest signal left is a truncated response.
      this.state = 'over'
      this.settings.observer?.upstreamFailed('failed_mid_body')
      this.request.log.warn({ upstreamError: error.code }, 'task service response failed mid-body')
      this.res.destroy()
    }
  }

  // ---- deadline and client ------------------------------------------------------------------------

  deadlinePassed (): void {
    if (this.state !== 'waiting') return
    this.state = 'answered'
    this.settings.observer?.upstreamFailed('timeout')
    if (!this.reply.sent && !this.res.destroyed) {
      this.request.log.warn({ upstreamError: 'deadline', timeoutMs: this.settings.timeoutMs }, 'task service request failed')
      // complete: Node's parser has seen the whole request, body included, so the connection is in step
      // for the next (pipelined or keep-alive) request whether or not anyone read that body.
      this.answerItself(504, !this.request.raw.complete)
    }
    this.abortUpstream(new UpstreamDeadlineError('upstream deadline passed'))
  }

  /**
   * The client has taken nothing for stallTimeoutMs while the task service's response waits (paused,
   * holding a pooled connection): a reader that never reads would hold it for good, since undici's body
   * timeout does not run while paused. Cut the client off and abort the upstream request.
   */
  clientStalled (): void {
    if (this.state !== 'streaming' || !this.paused) return
    // Bytes reached the client's connection since the timer was armed: slow, not stalled; wait again.
    const written = this.clientBytesWritten()
    if (written > this.stallMark) {
      this.stallMark = written
      this.stallTimer = setTimeout(onStall, this.settings.stallTimeoutMs, this)
      return
    }
    this.request.log.warn({ stallTimeoutMs: this.settings.stallTimeoutMs }, 'client stopped reading its response; disconnected')
    this.res.destroy()
    // A response still waiting for its socket (pipelined) emits no 'close' on destroy(): free the
    // upstream request here rather than rely on it.
    this.connectionClosed()
  }

  clientClosed (): void {
    clearTimeout(this.stallTimer)
    if (this.state === 'waiting' || this.state === 'streaming') {
      // The client went away before its answer was complete: free the upstream connection.
      this.state = 'over'
      clearTimeout(this.timer)
      this.abortUpstream(new ClientGoneError('client closed the connection'))
    }
  }

  private armStallTimer (): void {
    this.stallMark = this.clientBytesWritten()
    clearTimeout(this.stallTimer)
    this.stallTimer = setTimeout(onStall, this.settings.stallTimeoutMs, this)
  }

  /** Bytes written to the client's connection so far (res.socket is null while a pipelined answer waits). */
  private clientBytesWritten (): number {
    return this.request.raw.socket?.bytesWritten ?? 0
  }

  /**
   * The gateway's own answer instead of the task service's: 504 upstream_timeout or 502
   * upstream_unavailable. With `bodyUnread`, part of the client's body may still be in its connection
   * (never sent on): the connection is closed after the answer, so the rest is not taken for the next
   * request.
   */
  private answerItself (status: 502 | 504, bodyUnread: boolean): void {
    if (bodyUnread) this.reply.header('connection', 'close')
    if (status === 504) sendError(this.reply, 504, 'upstream_timeout', 'the task service did not answer in time')
    else sendError(this.reply, 502, 'upstream_unavailable', 'the task service is unavailable')
  }

  private abortUpstream (reason: Error): void {
    if (this.upstreamOver) return
    if (this.controller !== undefined) this.controller.abort(reason)
    else this.pendingAbort = reason
  }
}

/**
 * True once the client's connection is gone: nothing written to `res` can reach it any more. (A
 * response to a pipelined request has no socket until the answers before it are out; that is not gone.)
 */
function clientGone (res: ServerResponse): boolean {
  return res.destroyed || res.req.socket.destroyed
}

function onStall (exchange: Exchange): void {
  exchange.clientStalled()
}

function onDeadline (exchange: Exchange): void {
  exchange.deadlinePassed()
}

type BodyOutcome = { body: Buffer } | { failed: 'too_large' | 'client_gone' }

/** True when the request has no body: neither chunked nor a Content-Length above 0. */
function hasNoBody (raw: IncomingMessage): boolean {
  const length = raw.headers['content-length']
  return raw.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')
}

/**
 * Reads the body of a request that has one (hasNoBody above) whole, at most `maxBytes`. Calls `done` once:
 * with the body, or with why there is none to forward (larger than `maxBytes`: reading stops there; the
 * client's connection closed or errored before the end).
 */
function readBody (raw: IncomingMessage, maxBytes: number, done: (outcome: BodyOutcome) => void): void {
  const chunks: Buffer[] = []
  let size = 0
  let over = false
  const finish = (outcome: BodyOutcome): void => {
    if (over) return
    over = true
    raw.off('data', onData)
    raw.off('end', onEnd)
    raw.off('close', onClose)
    raw.off('error', onError)
    done(outcome)
  }
  const onData = (chunk: Buffer): void => {
    size += chunk.length
    if (size > maxBytes) {
      raw.pause()
      finish({ failed: 'too_large' })
      return
    }
    chunks.push(chunk)
  }
  const onEnd = (): void => { finish({ body: Buffer.concat(chunks, size) }) }
  const onClose = (): void => { finish({ failed: 'client_gone' }) }
  // An error is followed by 'close'; the listener keeps it from being unhandled (which would stop the process).
  const onError = (): void => { finish({ failed: 'client_gone' }) }
  raw.on('data', onData)
  raw.once('end', onEnd)
  raw.once('close', onClose)
  raw.once('error', onError)
}

/** The pool to the task service (also used, in the forwarder A/B bench, by the reply-from engine). */
export function createUpstreamPool (origin: string, opts: Pick<ForwardOptions, 'connections' | 'timeoutMs'>): Pool {
  return new Pool(origin, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
    connect: { timeout: opts.timeoutMs },
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs
  })
}

export async function registerForwarder (app: FastifyInstance, opts: ForwardOptions): Promise<Forwarder> {
  const origin = new URL(opts.origin).origin
  const pool = createUpstreamPool(origin, opts)
  const maxBodyBytes = opts.maxBodyBytes
  const settings: ExchangeSettings = { rules: referenceRules(origin, opts.publicUrl), timeoutMs: opts.timeoutMs, stallTimeoutMs: opts.stallTimeoutMs, closeConnections: opts.closeConnections, observer: opts.observer }
  // Expect: 100-continue. With a 'checkContinue' listener Node does not send 100 Continue by itself;
  // the request goes through the pipeline like any other, and forward() sends 100 Continue only once
  // authentication and authorization have passed — a client without a valid token gets its 401 (or
  // 403/404) without ever being invited to send the body.
  app.server.on('checkContinue', (req, res) => { app.server.emit('request', req, res) })
  // Graceful: requests already sent to the task service finish (server.ts bounds shutdown time).
  app.addHook('onClose', async () => {
    await pool.close()
  })

  const upstreamReady = createReadinessProbe(pool)

  function dispatch (request: FastifyRequest, reply: FastifyReply, route: AuthorizedRoute, headers: Record<string, string>, body: Buffer | null): void {
    pool.dispatch({
      origin,
      path: route.query === '' ? route.upstreamPath : route.upstreamPath + '?' + route.query,
      method: request.method as Dispatcher.HttpMethod,
      headers,
      body
    }, new Exchange(request, reply, route.publicPrefix, settings))
  }

  return {
    forward (request, reply, route, headers) {
      const raw = request.raw
      const expect = raw.headers.expect
      // The client may have gone while the request waited (a JWKS refetch, a Redis round trip): its
      // response's 'close' has passed, so nothing would ever abort the upstream request. Send nothing.
      if (clientGone(reply.raw)) {
        logAccess(request.server.log, request, reply, true)
        return
      }
      if (typeof expect === 'string' && expect.toLowerCase() === '100-continue' && !reply.raw.headersSent) reply.raw.writeContinue()
      // Most requests have no body: forwarded at once, without a callback made for the read.
      if (hasNoBody(raw)) {
        dispatch(request, reply, route, headers, null)
        return
      }
      readBody(raw, maxBodyBytes, (outcome) => {
        if ('failed' in outcome) {
          if (outcome.failed === 'client_gone' || clientGone(reply.raw)) {
            logAccess(request.server.log, request, reply, true)
            return
          }
          // The rest of the body is never read: the connection closes after the answer.
          reply.header('connection', 'close')
          sendError(reply, 413, 'payload_too_large', `request body larger than ${maxBodyBytes} bytes`)
          return
        }
        if (clientGone(reply.raw)) {
          logAccess(request.server.log, request, reply, true)
          return
        }
        dispatch(request, reply, route, headers, outcome.body)
      })
    },
    upstreamReady
  }
}
