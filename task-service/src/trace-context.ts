// The W3C trace id of a request, for the access line: the OpenTelemetry span's when tracing is on (stored on
// the request by the shared request hook, packages/observability, when the span starts), else the one in the `traceparent` header the
// gateway sends. Without either (a direct call with no trace context), none.
import type { FastifyRequest } from 'fastify'
import { TRACE_ID } from 'observability'

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/

/** The trace id of a valid traceparent value (W3C rules: version ff, all-zero ids, upper case are invalid). */
export function traceIdFromHeader (value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string' || value.length < 55) return undefined
  const m = TRACEPARENT.exec(value)
  if (m === null || m[1] === 'ff' || (m[1] === '00' && m[4] !== undefined)) return undefined
  if (/^0+$/.test(m[2] as string) || /^0+$/.test(m[3] as string)) return undefined
  return m[2]
}

export function traceIdOf (request: FastifyRequest): string | undefined {
  return (request as unknown as Record<symbol, string | undefined>)[TRACE_ID] ?? traceIdFromHeader(request.headers.traceparent)
}
