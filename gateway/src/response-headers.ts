// Headers the gateway puts on every response, whoever produced the body: the gateway itself (errors,
// health, OpenAPI) through Fastify's reply, or the task service through the forwarder, which writes
// the response head itself. One function sets them on the reply for both, so the paths cannot drift.
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

/**
 * Sets the gateway's headers on a reply about to be sent: the request id, the security headers,
 * `Connection: close` while the gateway drains (plugins/drain.ts), and no banner. The one place that
 * decides them, for both kinds of answer: the gateway's own (the onSend hook) and the task service's
 * (the forwarder, through gatewayHeadersForForwarding()).
 */
export function setGatewayHeaders (reply: FastifyReply, closeConnection: boolean): void {
  reply.header('x-request-id', reply.request.id)
  for (const [name, value] of SECURITY_HEADER_ENTRIES) reply.header(name, value)
  for (const name of BANNER_HEADERS) reply.removeHeader(name)
  if (closeConnection) reply.header('connection', 'close')
}

/**
 * For a head the forwarder writes itself: setGatewayHeaders(), then every header on the reply (those
 * plus what earlier hooks set: CORS, rate limit) appended to `out`, a flat [name, value, …] list.
 * Returns a test for the names the gateway set: a task-service header of the same name is left out
 * (the gateway's wins), except Vary, a list both sides add to (CORS: Origin; the task service: whatever
 * its answer varies on).
 */
export function gatewayHeadersForForwarding (out: string[], reply: FastifyReply, closeConnection: boolean): (name: string) => boolean {
  setGatewayHeaders(reply, closeConnection)
  const own = reply.getHeaders()
  for (const name in own) {
    const value = own[name]
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) out.push(name, v)
    else out.push(name, typeof value === 'number' ? String(value) : value)
  }
  return (name) => name !== 'vary' && Object.hasOwn(own, name)
}
