// W3C Trace Context (https://www.w3.org/TR/trace-context/) for forwarded requests and access lines.
//
// Tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT; nothing of OpenTelemetry is loaded): a valid client
// `traceparent` is continued — same trace id and sampled flag, a new parent id standing for the gateway's
// hop — and its `tracestate` passed on; otherwise a new trace is begun (sampled, so a task service that
// traces records it). Ids are random (crypto.randomFillSync): unique, not secret. The work is done only
// when asked for (forwarding, or writing the access line).
//
// Tracing on (telemetry.ts): @fastify/otel gives every request a span; its trace id is stored on the
// request when the span starts (TRACE_ID, set by the request hook of packages/observability's tracing), and the forwarded
// `traceparent` names that span, injected by the request's OpenTelemetry context.
import { randomFillSync } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { TRACE_ID } from 'observability'

export interface TraceParent {
  traceId: string
  parentId: string
  sampled: boolean
}

export interface OutgoingTraceContext {
  traceId: string
  traceparent: string
  tracestate: string | undefined
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = '00000000000000000000000000000000'
const ZERO_SPAN = '0000000000000000'
// tracestate: printable ASCII list members (key=value, comma-separated), at most 512 characters (the
// length the specification asks every participant to propagate at least). Anything else is dropped.
const TRACESTATE = /^[\x20-\x7e]{1,512}$/

/**
 * Parses a traceparent header value; undefined when it is absent or invalid (then a new trace begins and any
 * tracestate is dropped, as the specification says). Version 00 has exactly four fields; a later version
 * may append fields after a "-"; version ff is invalid. Upper-case hex and all-zero ids are invalid.
 */
export function parseTraceparent (value: string | string[] | undefined): TraceParent | undefined {
  if (typeof value !== 'string' || value.length < 55) return undefined
  const m = TRACEPARENT.exec(value)
  if (m === null) return undefined
  const version = m[1] as string
  if (version === 'ff') return undefined
  if (version === '00' && m[5] !== undefined) return undefined
  const traceId = m[2] as string
  const parentId = m[3] as string
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined
  return { traceId, parentId, sampled: (parseInt(m[4] as string, 16) & 1) === 1 }
}

// Ids are cut from a block of random hex drawn and encoded at once (4 KiB of randomFillSync, one toString):
// a request's two ids cost two substrings instead of six random draws and two encodings.
const BLOCK_BYTES = 4096
let block = ''
let offset = 0
function randomHex (chars: 16 | 32): string {
  if (offset + chars > block.length) {
    block = randomFillSync(Buffer.allocUnsafe(BLOCK_BYTES)).toString('hex')
    offset = 0
  }
  const id = block.slice(offset, offset + chars)
  offset += chars
  return id
}

export function newTraceId (): string {
  let id = randomHex(32)
  while (id === ZERO_TRACE) id = randomHex(32)
  return id
}

export function newSpanId (): string {
  let id = randomHex(16)
  while (id === ZERO_SPAN) id = randomHex(16)
  return id
}

/** The context to send on: the client's trace continued with a new parent id, or a new trace. */
export function continueTrace (traceparent: string | string[] | undefined, tracestate: string | string[] | undefined): OutgoingTraceContext {
  const parent = parseTraceparent(traceparent)
  if (parent === undefined) {
    const traceId = newTraceId()
    return { traceId, traceparent: `00-${traceId}-${newSpanId()}-01`, tracestate: undefined }
  }
  return {
    traceId: parent.traceId,
    traceparent: `00-${parent.traceId}-${newSpanId()}-${parent.sampled ? '01' : '00'}`,
    tracestate: typeof tracestate === 'string' && TRACESTATE.test(tracestate) ? tracestate : undefined
  }
}

interface OtelRequest {
  opentelemetry?: () => { span?: unknown, inject: (carrier: Record<string, string>) => void }
}

type TracedRequest = FastifyRequest & { [TRACE_ID]?: string }

/**
 * The trace context of this request, made once: what the forwarded request carries (traceparent,
 * tracestate) and the trace id for the access line.
 */
export function traceContextOf (request: FastifyRequest): OutgoingTraceContext {
  const made = request.traceContext
  if (made != null) return made
  const r = request as TracedRequest
  let context: OutgoingTraceContext
  const spanTraceId = r[TRACE_ID]
  const otel = (request as unknown as OtelRequest).opentelemetry
  if (spanTraceId !== undefined && typeof otel === 'function') {
    const carrier: Record<string, string> = {}
    const handle = otel.call(request)
    if (handle.span != null) handle.inject(carrier)
    context = { traceId: spanTraceId, traceparent: carrier.traceparent ?? '', tracestate: carrier.tracestate }
  } else {
    context = continueTrace(request.headers.traceparent, request.headers.tracestate)
  }
  request.traceContext = context
  return context
}

/** The trace id for the access line (the context is made if it was not yet). */
export function traceIdOf (request: FastifyRequest): string {
  return traceContextOf(request).traceId
}
