// Stage 4 — forward: stream the request to the task service over a dedicated undici Pool.
//
// Engine: @fastify/reply-from (the engine inside @fastify/http-proxy, same undici request path).
// We call reply.from() directly instead of registering @fastify/http-proxy because http-proxy derives
// the upstream path by prefix-substituting the raw URL; here the upstream path is always the one
// authorize.ts BUILT from the normalized route, so no spelling of the raw URL can address anything
// outside /tasks upstream.
//
// - Pool: `upstreamConnections` keep-alive sockets (default 128), no pipelining, idle sockets kept
//   60 s (bounded by the server's Keep-Alive hint), connect timeout = UPSTREAM_TIMEOUT_MS. TLS
//   certificates are verified (reply-from's own pool would disable that; ours does not).
// - No retries (reply-from would retry idempotent requests on 503/socket errors by default).
// - Deadline: UPSTREAM_TIMEOUT_MS counts from the moment forwarding starts — time queued in the pool
//   (all connections busy), connecting, sending the body and waiting for response headers. When it
//   passes, the client gets 504 upstream_timeout and the upstream request is aborted (a queued one is
//   never sent; a sent one has its connection closed), so a hanging task service cannot make
//   requests wait N × the timeout behind each other. (undici's own headers timeout only starts once
//   a request has a connection.)
// - Errors: no response headers by the deadline (or connect timeout) → 504 upstream_timeout;
//   refused/reset/garbage → 502 upstream_unavailable. Bodies never name the host.
// - Response headers: hop-by-hop and banner headers dropped; Location and Link references to
//   /tasks… (relative, or absolute on the task service's origin in any spelling we can know: host
//   case, trailing dot, any loopback name when it is configured on loopback) are rewritten to the
//   public prefix the client used; any other absolute reference to the task service's origin is
//   dropped. Content-Location and the URL in Refresh are kept only when they map to /api/…/tasks….
import { PassThrough, type Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import replyFrom from '@fastify/reply-from'
import { Pool, type Dispatcher } from 'undici'
import { sendError } from '../errors.js'
import type { AuthorizedRoute } from './authorize.js'

export interface ForwardOptions {
  origin: string
  timeoutMs: number
  connections: number
}

const DROP_RESPONSE = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te',
  'server', 'x-powered-by', 'via', 'alt-svc'
])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_CONNECT_TIMEOUT'])

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

function rewriteResponseHeaders (headers: Record<string, string | string[] | undefined>, prefix: string, origin: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  let listed: string[] | undefined
  const conn = headers.connection
  if (typeof conn === 'string') listed = conn.toLowerCase().split(',').map((s) => s.trim())
  for (const name of Object.keys(headers)) {
    const v = headers[name]
    if (v === undefined) continue
    const lower = name.toLowerCase()
    if (DROP_RESPONSE.has(lower) || listed?.includes(lower) === true) continue
    if (lower === 'location') {
      const r = toPublicReference(Array.isArray(v) ? (v[0] ?? '') : v, prefix, origin)
      if (r !== undefined) out[lower] = r
      continue
    }
    if (lower === 'content-location') {
      const r = toPublicPathOnly(Array.isArray(v) ? (v[0] ?? '') : v, prefix, origin)
      if (r !== undefined) out[lower] = r
      continue
    }
    if (lower === 'refresh') {
      const r = rewriteRefresh(Array.isArray(v) ? (v[0] ?? '') : v, prefix, origin)
      if (r !== undefined) out[lower] = r
      continue
    }
    if (lower === 'link') {
      const values = (Array.isArray(v) ? v : [v]).map((x) => rewriteLink(x, prefix, origin)).filter((x): x is string => x !== undefined)
      if (values.length > 0) out[lower] = values.length === 1 ? (values[0] as string) : values
      continue
    }
    out[lower] = v
  }
  return out
}

// reply-from copies the header object we return from rewriteRequestHeaders with Object.assign (which
// keeps symbol keys) and hands it to dispatcher.request(): the per-request AbortSignal rides along
// under this symbol and is moved to undici's `signal` option below. Never sent as a header.
const kSignal = Symbol('gateway.upstreamSignal')

type RequestOptions = Dispatcher.RequestOptions & { headers?: Record<PropertyKey, unknown> }

/**
 * The dispatcher given to reply-from: the pool, with the per-request deadline signal attached.
 * A streamed request body is handed to undici through a PassThrough, so that aborting the upstream
 * request destroys only that copy, never the client's socket (the 504 must still reach the client).
 */
function deadlineDispatcher (pool: Pool): { request: (o: RequestOptions, cb: (err: Error | null, data?: Dispatcher.ResponseData) => void) => void } {
  return {
    request (o, cb) {
      const h = o.headers
      const signal = h?.[kSignal] as AbortSignal | undefined
      if (h !== undefined && signal !== undefined) {
        delete h[kSignal]
        o.signal = signal
      }
      const body = o.body as Readable | undefined
      if (body !== undefined && body !== null && typeof (body as { pipe?: unknown }).pipe === 'function') {
        const copy = new PassThrough()
        body.once('error', (err) => { copy.destroy(err) })
        body.once('close', () => { if (!body.readableEnded) copy.destroy(new Error('client aborted the request body')) })
        o.body = body.pipe(copy)
      }
      pool.request(o as Dispatcher.RequestOptions, cb as never)
    }
  }
}

/** How long one upstream readiness result is reused by /readyz. */
export const READINESS_TTL_MS = 1_000

class UpstreamDeadlineError extends Error {
  override name = 'UpstreamDeadlineError'
  code = 'GATEWAY_UPSTREAM_DEADLINE'
}

export interface Forwarder {
  pool: Pool
  forward: (request: FastifyRequest, reply: FastifyReply, route: AuthorizedRoute, headers: Record<string, string>) => FastifyReply
  /**
   * GET <origin>/readyz, true on 2xx within `timeoutMs`. Single-flight, and the result is reused for
   * READINESS_TTL_MS: however many /readyz probes arrive, the task service gets at most one check per
   * TTL, and a flood of probes cannot queue checks in the pool until they time out.
   */
  upstreamReady: (timeoutMs: number) => Promise<boolean>
}

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
  await app.register(replyFrom, {
    base: origin,
    undici: deadlineDispatcher(pool) as never,
    disableRequestLogging: true
  })
  // Expect: 100-continue. With a 'checkContinue' listener Node does not send 100 Continue by itself;
  // the request goes through the pipeline like any other, and forward() sends 100 Continue only once
  // authentication and authorization have passed — a client without a valid token gets its 401 (or
  // 403/404) without ever being invited to send the body.
  app.server.on('checkContinue', (req, res) => { app.server.emit('request', req, res) })
  // Graceful: requests already sent to the task service finish (server.ts bounds shutdown time).
  app.addHook('onClose', async () => {
    await pool.close()
  })

  function onError (reply: FastifyReply, { error }: { error: Error & { code?: string, statusCode?: number, cause?: unknown } }): void {
    const cause = error.cause as { code?: string } | undefined
    const timedOut = error.statusCode === 504 || TIMEOUT_CODES.has(error.code ?? '') || TIMEOUT_CODES.has(cause?.code ?? '')
    reply.request.log.warn({ upstreamError: cause?.code ?? error.code }, 'task service request failed')
    if (timedOut) sendError(reply, 504, 'upstream_timeout', 'the task service did not answer in time')
    else sendError(reply, 502, 'upstream_unavailable', 'the task service is unavailable')
  }

  let readiness: { pending: boolean, expiresAt: number, result: Promise<boolean> } | undefined

  return {
    pool,
    forward (request, reply, route, headers) {
      const expect = request.headers.expect
      if (typeof expect === 'string' && expect.toLowerCase() === '100-continue' && !reply.raw.headersSent) reply.raw.writeContinue()
      const prefix = route.publicPrefix
      const query = route.query
      // Deadline for the whole exchange up to response headers (see the header comment).
      const controller = new AbortController()
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        if (!reply.sent && !reply.raw.destroyed) {
          request.log.warn({ upstreamError: 'deadline', timeoutMs: opts.timeoutMs }, 'task service request failed')
          // A body the task service never read is still in the client's connection: close it after.
          if (!request.raw.complete || !request.raw.readableEnded) reply.header('connection', 'close')
          sendError(reply, 504, 'upstream_timeout', 'the task service did not answer in time')
        }
        controller.abort(new UpstreamDeadlineError('upstream deadline passed'))
      }, opts.timeoutMs)
      const settle = (): boolean => {
        if (settled) return false
        settled = true
        clearTimeout(timer)
        return true
      }
      ;(headers as Record<PropertyKey, unknown>)[kSignal] = controller.signal
      // The query goes through `queryString` (not appended to the source) so that reply-from's
      // dot-segment guard, which decodes the whole source, only ever sees our normalized path.
      return reply.from(route.upstreamPath, {
        queryString: () => query,
        timeout: opts.timeoutMs,
        retryDelay: () => null,
        rewriteRequestHeaders: () => headers,
        rewriteHeaders: (h) => rewriteResponseHeaders(h as Record<string, string | string[] | undefined>, prefix, origin),
        onResponse: (_req, rep, res) => {
          const stream = (res as unknown as { stream: Readable }).stream
          if (!settle()) {
            stream.destroy()
            return
          }
          rep.send(stream)
        },
        onError: ((rep: FastifyReply, e: { error: Error }) => {
          if (settle()) onError(rep, e as never)
        }) as never
      })
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
