// Headers the gateway puts on every response, whoever produced the body: the gateway itself (errors,
// health, OpenAPI) through Fastify's reply, or the task service through the forwarder, which writes
// the response head itself. One list, so the two paths cannot drift apart.
import type { FastifyReply } from 'fastify'

/** Security headers on every response. `cache-control: no-store`: every API answer is per-user. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
})

const SECURITY_HEADER_ENTRIES = Object.entries(SECURITY_HEADERS)

/** Headers a response must never carry (version banners). */
export const BANNER_HEADERS: readonly string[] = ['server', 'x-powered-by']

/** Sets the request id and the security headers on a reply Fastify is about to send. */
export function setGatewayHeaders (reply: FastifyReply): void {
  reply.header('x-request-id', reply.request.id)
  for (const [name, value] of SECURITY_HEADER_ENTRIES) reply.header(name, value)
  for (const name of BANNER_HEADERS) reply.removeHeader(name)
}

const SECURITY_HEADER_NAMES = new Set(Object.keys(SECURITY_HEADERS))

/**
 * Appends the gateway's headers to `out`, a flat [name, value, …] response head the forwarder is about
 * to write itself: headers already set on the reply by earlier hooks (CORS, rate limit), the request
 * id, the security headers. Returns a test for the names it set: a header of the same name from the
 * task service must be left out (the gateway's wins).
 */
export function appendGatewayHeaders (out: string[], reply: FastifyReply): (name: string) => boolean {
  const own = reply.getHeaders()
  for (const name in own) {
    const value = own[name]
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) out.push(name, v)
    else out.push(name, typeof value === 'number' ? String(value) : value)
  }
  out.push('x-request-id', String(reply.request.id))
  for (const [name, value] of SECURITY_HEADER_ENTRIES) out.push(name, value)
  // Vary is a list both sides add to (CORS: Origin; the task service: whatever its answer varies on):
  // both lines go out. Every other name the gateway set is the gateway's alone.
  return (name) => name !== 'vary' && (name === 'x-request-id' || SECURITY_HEADER_NAMES.has(name) || Object.hasOwn(own, name))
}
