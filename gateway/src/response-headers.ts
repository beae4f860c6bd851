// Headers the gateway puts on every response, whoever produced the body: the gateway itself (errors,
// health, OpenAPI) through Fastify's reply, or the task service through the forwarder, which writes
// the response head itself. Both take them from the same table and the same rules (setGatewayHeaders and
// gatewayHeadersForForwarding below, side by side), so the paths cannot drift.
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
 * `Connection: close` while the gateway drains (plugins/drain.ts), and no banner. For the gateway's own
 * answers (the onSend hook); gatewayHeadersForForwarding() below applies the same rules, from the same
 * table, to the head the forwarder writes — a change to one is a change to both
 * (gateway/test/security-headers.test.ts checks every kind of answer).
 */
export function setGatewayHeaders (reply: FastifyReply, closeConnection: boolean): void {
  reply.header('x-request-id', reply.request.id)
  for (const [name, value] of SECURITY_HEADER_ENTRIES) reply.header(name, value)
  for (const name of BANNER_HEADERS) reply.removeHeader(name)
  if (closeConnection) reply.header('connection', 'close')
}

/**
 * For a head the forwarder writes itself: every header on the reply (what earlier hooks set: CORS, rate
 * limit) with the gateway's headers applied as setGatewayHeaders() applies them — the same names, values and
 * order — appended to `out`, a flat [name, value, …] list. They are applied to the reply's copy rather than
 * to the reply, which is hijacked once the head is out: no header set and removed per forwarded request.
 * Returns a test for the names the gateway set: a task-service header of the same name is left out
 * (the gateway's wins), except Vary, a list both sides add to (CORS: Origin; the task service: whatever
 * its answer varies on).
 */
export function gatewayHeadersForForwarding (out: string[], reply: FastifyReply, closeConnection: boolean): (name: string) => boolean {
  const own = reply.getHeaders()
  own['x-request-id'] = reply.request.id
  for (const [name, value] of SECURITY_HEADER_ENTRIES) own[name] = value
  for (const name of BANNER_HEADERS) if (Object.hasOwn(own, name)) delete own[name]
  if (closeConnection) own.connection = 'close'
  for (const name in own) {
    const value = own[name]
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) out.push(name, v)
    else out.push(name, typeof value === 'number' ? String(value) : value)
  }
  return (name) => name !== 'vary' && Object.hasOwn(own, name)
}
