// Stage 4 — forward: stream the request to the task service over a dedicated undici Pool.
//
// Engine: undici's dispatcher API (`pool.dispatch` with a handler), the layer that
// @fastify/http-proxy and @fastify/reply-from are built on, called directly. The response head is
// written to the client's socket as soon as undici has parsed it and the body chunks are written as
// they arrive (with backpressure both ways); no stream objects, no header copies, no retry machinery
// per request. Measured with `npm run bench`, this took about a third of the gateway's CPU per request
// away compared with reply.from() on the same pool (docs/performance.md). The upstream path is always
// the one authorize.ts BUILT from the normalized route, never a prefix swap on the raw URL, so no
// spelling of the raw URL can address anything outside /tasks upstream.
//
// - Pool: `upstreamConnections` keep-alive sockets (default 128), no pipelining, idle sockets kept
//   60 s (bounded by the server's Keep-Alive hint), connect timeout = UPSTREAM_TIMEOUT_MS. TLS
//   certificates are verified.
// - No retries: a request reaches the task service at most once.
// - Deadline: UPSTREAM_TIMEOUT_MS counts from the moment forwarding starts — time queued in the pool
//   (all connections busy), connecting, sending the body and waiting for response headers. When it
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
// - The copy of the client's body never has an unhandled 'error' (a POST abandoned while it waits for a
//   connection must not stop the process).
// - Pipelined requests are forwarded as they arrive; each answer waits for the ones before it (Node
//   queues them). Such an answer has no socket yet, so its stall timer starts only when its turn comes,
//   and the connection itself is watched for the client leaving (Node emits no 'close' on it then).
// - The gateway's own 504 closes the client connection only when Node's parser has not seen the whole
//   request (part of its body still on the wire); otherwise the connection serves the next request.
// - Errors before the response head: refused/reset/garbage → 502 upstream_unavailable; connect
//   timeout → 504. After the head has been sent the client's connection is closed mid-body (a
//   truncated response, never a well-formed wrong one). Bodies never name the host.
// - Response headers: hop-by-hop and banner headers dropped; Location and Link references to
//   /tasks… (relative, or absolute on the task service's origin in any spelling we can know: host
//   case, trailing dot, any loopback name when it is configured on loopback) are rewritten to the
//   public prefix the client used; any other absolute reference to the task service's origin is
//   dropped. Content-Location and the URL in Refresh are kept only when they map to /api/…/tasks….
//   The gateway's own headers (CORS, rate limit, request id, security headers) win over the task
//   service's.
// Properties over random well- and ill-behaved clients (pipelining, leaving, not reading, half-closing):
// gateway/test/connection-chaos.test.ts.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { PassThrough } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Pool, type Dispatcher } from 'undici'
import { sendError } from '../errors.js'
import { logAccess } from '../access-log.js'
import { appendGatewayHeaders } from '../response-headers.js'
import type { AuthorizedRoute } from './authorize.js'

export interface ForwardOptions {
  origin: string
  timeoutMs: number
  connections: number
  /** How long a client may take none of its response before it is cut off (SERVER_RESPONSE_STALL_TIMEOUT_MS). */
  stallTimeoutMs: number
  /** True when every response must close its connection (the gateway is draining). */
  closeConnections?: () => boolean
}

const DROP_RESPONSE = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te',
  'server', 'x-powered-by', 'via', 'alt-svc'
])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'])

function isTasksPath (p: string): boolean {
  return p === '/tasks' || p.startsWith('/tasks/') || p.startsWith('/tasks?') || p.startsWith('/tasks#')
}

function isLoopbackName (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/**
 * True when `u` names the task service: its configured origin, in any spelling of it we can know —
 * host case and a trailing dot, and, when the task service is configured on a loopback address, any
 * loopback name (localhost, 127.x.x.x, [::1]) with the same scheme and port.
 */
function isUpstreamOrigin (u: URL, upstream: URL): boolean {
  if (u.protocol !== upstream.protocol || u.port !== upstream.port) return false
  const host = u.hostname.replace(/\.$/, '')
  const upHost = upstream.hostname.replace(/\.$/, '')
  return host === upHost || (isLoopbackName(host) && isLoopbackName(upHost))
}

/**
 * Maps a URI reference from the task service to the public one.
 * Returns undefined when it must be dropped (it would reveal the task service's address).
 */
export function toPublicReference (uri: string, prefix: string, upstreamOrigin: string): string | undefined {
  let path = uri
  let upstreamAbsolute = false
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith('//')) {
    let u: URL
    try {
      u = new URL(uri, upstreamOrigin)
    } catch {
      return undefined
    }
    if (!isUpstreamOrigin(u, new URL(upstreamOrigin))) return uri
    upstreamAbsolute = true
    path = u.pathname + u.search + u.hash
  }
  if (isTasksPath(path)) return prefix + path
  return upstreamAbsolute ? undefined : uri
}

/** Like toPublicReference, but only a reference that maps to a public /api path survives. */
function toPublicPathOnly (uri: string, prefix: string, upstreamOrigin: string): string | undefined {
  const r = toPublicReference(uri.trim(), prefix, upstreamOrigin)
  return r !== undefined && r.startsWith(prefix + '/tasks') ? r : undefined
}

/** `Refresh: <delay>[; url=<uri>]` with the URI made public; undefined (drop) when it cannot be. */
export function rewriteRefresh (value: string, prefix: string, upstreamOrigin: string): string | undefined {
  const m = /^\s*(\d+(?:\.\d*)?)\s*(?:[;,]\s*(?:url\s*=\s*)?(.*))?$/i.exec(value)
  if (m === null) return undefined
  const delay = m[1] as string
  let uri = (m[2] ?? '').trim()
  if (uri === '') return delay
  if ((uri.startsWith("'") && uri.endsWith("'")) || (uri.startsWith('"') && uri.endsWith('"'))) uri = uri.slice(1, -1)
  const r = toPublicPathOnly(uri, prefix, upstreamOrigin)
  return r === undefined ? undefined : `${delay}; url=${r}`
}

export function rewriteLink (value: string, prefix: string, upstreamOrigin: string): string | undefined {
  let dropped = false
  const out = value.replace(/<([^>]*)>/g, (_m, uri: string) => {
    const r = toPublicReference(uri, prefix, upstreamOrigin)
    if (r === undefined) dropped = true
    return '<' + (r ?? '') + '>'
  })
  return dropped ? undefined : out
}

/**
 * The task service's response headers as the client gets them, appended to `out` as a flat
 * [name, value, …] list (what writeHead takes without building an object; repeated names such as
 * set-cookie stay separate lines). Names for which `owned` is true are the gateway's and are skipped.
 */
function appendResponseHeaders (out: string[], headers: Record<string, string | string[] | undefined>, prefix: string, origin: string, owned: (name: string) => boolean): void {
  let listed: string[] | undefined
  const conn = headers.connection
  if (conn !== undefined) listed = (Array.isArray(conn) ? conn.join(',') : conn).toLowerCase().split(',').map((s) => s.trim())
  for (const name of Object.keys(headers)) {
    const v = headers[name]
    if (v === undefined) continue
    const lower = name.toLowerCase()
    if (DROP_RESPONSE.has(lower) || listed?.includes(lower) === true || owned(lower)) continue
    const first = Array.isArray(v) ? (v[0] ?? '') : v
    let r: string | undefined
    switch (lower) {
      case 'location':
        r = toPublicReference(first, prefix, origin)
        if (r !== undefined) out.push(lower, r)
        continue
      case 'content-location':
        r = toPublicPathOnly(first, prefix, origin)
        if (r !== undefined) out.push(lower, r)
        continue
      case 'refresh':
        r = rewriteRefresh(first, prefix, origin)
        if (r !== undefined) out.push(lower, r)
        continue
      case 'link':
        for (const x of Array.isArray(v) ? v : [v]) {
          r = rewriteLink(x, prefix, origin)
          if (r !== undefined) out.push(lower, r)
        }
        continue
      default:
        if (Array.isArray(v)) for (const x of v) out.push(lower, x)
        else out.push(lower, v)
    }
  }
}

/** How long one upstream readiness result is reused by /readyz. */
export const READINESS_TTL_MS = 1_000

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
  /**
   * GET <origin>/readyz, true on 2xx within `timeoutMs`. Single-flight, and the result is reused for
   * READINESS_TTL_MS: however many /readyz probes arrive, the task service gets at most one check per
   * TTL, and a flood of probes cannot queue checks in the pool until they time out.
   */
  upstreamReady: (timeoutMs: number) => Promise<boolean>
}

interface ExchangeSettings {
  origin: string
  timeoutMs: number
  stallTimeoutMs: number
  closeConnections: (() => boolean) | undefined
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
  /** The copy of the client's body handed to undici (null: no body). */
  readonly body: PassThrough | null
  private closeSeen = false

  constructor (
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly prefix: string,
    private readonly settings: ExchangeSettings
  ) {
    this.res = reply.raw
    this.body = requestBody(request.raw, this)
    this.timer = setTimeout(onDeadline, settings.timeoutMs, this)
    this.res.once('close', () => { this.connectionClosed() })
    // A pipelined request's response has no socket until the answers before it are out, and Node emits
    // no 'close' on it when the client goes away meanwhile: watch the connection itself until then.
    const socket = request.raw.socket
    if (this.res.socket === null && socket !== null) {
      const onSocketClose = (): void => { this.connectionClosed() }
      socket.once('close', onSocketClose)
      this.res.once('finish', () => { socket.off('close', onSocketClose) })
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
    // would destroy that healthy connection as if a request on it had been cut off mid-way. undici does
    // not destroy the body on this path: done here.
    if (this.pendingAbort !== undefined) {
      this.body?.destroy()
      throw this.pendingAbort
    }
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
    const out: string[] = []
    const owned = appendGatewayHeaders(out, this.reply)
    appendResponseHeaders(out, headers, this.prefix, this.settings.origin, owned)
    // Close the connection after this answer when the gateway must (draining), or when part of the
    // client's body was never read (the task service answered early): the rest would be taken for the
    // next request.
    if (this.settings.closeConnections?.() === true || !this.request.raw.complete) out.push('connection', 'close')
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
      this.answerItself(TIMEOUT_CODES.has(code ?? '') ? 504 : 502, !this.request.raw.complete)
    } else if (state === 'streaming') {
      // The head is out: the only honest signal left is a truncated response.
      this.state = 'over'
      this.request.log.warn({ upstreamError: error.code }, 'task service response failed mid-body')
      this.res.destroy()
    }
  }

  // ---- deadline and client ------------------------------------------------------------------------

  deadlinePassed (): void {
    if (this.state !== 'waiting') return
    this.state = 'answered'
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

  /**
   * The client's body stopped before its end (its connection closed, or it errored). Once the request
   * is on a connection, the error makes undici abort it (that connection cannot be reused). While it
   * still waits for one, the copy is destroyed quietly: an error there would make undici destroy the
   * healthy connection it is later given, and the request is dropped by onRequestStart() instead.
   */
  clientBodyCut (err: Error): void {
    if (this.body === null) return
    if (this.controller !== undefined) this.body.destroy(err)
    else this.body.destroy()
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

/**
 * The request body for undici, or null when the request has none. A body is handed over through a
 * PassThrough, so that aborting the upstream request destroys only that copy, never the client's
 * socket (a 504 must still reach the client).
 */
function requestBody (raw: IncomingMessage, exchange: Exchange): PassThrough | null {
  const length = raw.headers['content-length']
  if (raw.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return null
  const copy = new PassThrough()
  // undici listens for a body's errors only once the request sits in a connection's queue; while it
  // waits in the pool's own queue nothing else would, and an unhandled 'error' stops the process.
  copy.on('error', ignoreError)
  raw.once('error', (err) => { exchange.clientBodyCut(err) })
  raw.once('close', () => { if (!raw.readableEnded) exchange.clientBodyCut(new Error('client aborted the request body')) })
  return raw.pipe(copy)
}

function ignoreError (): void {}

export async function registerForwarder (app: FastifyInstance, opts: ForwardOptions): Promise<Forwarder> {
  const origin = new URL(opts.origin).origin
  const pool = new Pool(origin, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
    connect: { timeout: opts.timeoutMs },
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs
  })
  const settings: ExchangeSettings = { origin, timeoutMs: opts.timeoutMs, stallTimeoutMs: opts.stallTimeoutMs, closeConnections: opts.closeConnections }
  // Expect: 100-continue. With a 'checkContinue' listener Node does not send 100 Continue by itself;
  // the request goes through the pipeline like any other, and forward() sends 100 Continue only once
  // authentication and authorization have passed — a client without a valid token gets its 401 (or
  // 403/404) without ever being invited to send the body.
  app.server.on('checkContinue', (req, res) => { app.server.emit('request', req, res) })
  // Graceful: requests already sent to the task service finish (server.ts bounds shutdown time).
  app.addHook('onClose', async () => {
    await pool.close()
  })

  let readiness: { pending: boolean, expiresAt: number, result: Promise<boolean> } | undefined

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
      const exchange = new Exchange(request, reply, route.publicPrefix, settings)
      pool.dispatch({
        origin,
        path: route.query === '' ? route.upstreamPath : route.upstreamPath + '?' + route.query,
        method: request.method as Dispatcher.HttpMethod,
        headers,
        body: exchange.body
      }, exchange)
    },
    async upstreamReady (timeoutMs) {
      if (readiness !== undefined && (readiness.pending || Date.now() < readiness.expiresAt)) return await readiness.result
      const entry = { pending: true, expiresAt: 0, result: checkUpstream(timeoutMs) }
      readiness = entry
      void entry.result.then(() => {
        entry.pending = false
        entry.expiresAt = Date.now() + READINESS_TTL_MS
      })
      return await entry.result
    }
  }

  async function checkUpstream (timeoutMs: number): Promise<boolean> {
    try {
      const res = await pool.request({ path: '/readyz', method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) })
      await res.body.dump()
      return res.statusCode >= 200 && res.statusCode < 300
    } catch {
      return false
    }
  }
}
