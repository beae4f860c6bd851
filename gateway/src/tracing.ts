// OpenTelemetry tracing for the gateway. Loaded by telemetry.ts only when OTEL_EXPORTER_OTLP_ENDPOINT is set;
// otherwise no OpenTelemetry module is ever imported.
//
// - @fastify/otel: a SERVER span per request (continuing the client's traceparent), plus a span for the
//   route handler; lifecycle hooks get no spans of their own (instrumentHooks: false — the gateway's hooks are
//   its hot path). The span's trace id is stored on the request for the access line (trace-context.ts).
// - The forwarded request carries a traceparent naming the gateway's request span, set by the gateway itself
//   (trace-context.ts). undici's instrumentation therefore leaves requests that already carry one alone: it
//   would add a second traceparent, and for a request queued in the pool it would take its parent from
//   whatever context the pool's drain runs in (another request's). It traces the gateway's other outgoing
//   requests (JWKS fetches, the /readyz probe).
// - Export: OTLP over HTTP (protobuf) in batches. The exporter reads its own OTEL_EXPORTER_OTLP_* variables
//   (endpoint, headers, timeout, compression); the sampler follows OTEL_TRACES_SAMPLER (default: parent-based,
//   always on); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource.
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import type { Instrumentation } from '@opentelemetry/instrumentation'
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node'
import type { TracingConfig } from './config.js'
import { SHUTDOWN_TELEMETRY, TRACE_ID } from './trace-context.js'

/** True when an undici request already carries a traceparent (the gateway propagated it itself). */
function carriesTraceparent (headers: unknown): boolean {
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'traceparent') return true
    }
    return false
  }
  return typeof headers === 'string' && /(^|\r\n)traceparent:/i.test(headers)
}

/** The gateway's instrumentations (exported for the tracing test, which uses its own provider and exporter). */
export function gatewayInstrumentations (): Instrumentation[] {
  return [
    new FastifyOtelInstrumentation({
      registerOnInitialization: true,
      instrumentHooks: false,
      requestHook: (span, request) => { (request as unknown as Record<symbol, string>)[TRACE_ID] = span.spanContext().traceId }
    }),
    new UndiciInstrumentation({ ignoreRequestHook: (request) => carriesTraceparent(request.headers) })
  ]
}

/** Starts tracing for the process: provider, exporter, instrumentations. */
export function startTracing (config: TracingConfig, processor?: SpanProcessor): void {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }).merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [processor ?? new BatchSpanProcessor(new OTLPTraceExporter())]
  })
  // Global context manager (AsyncLocalStorage) and W3C trace-context propagator.
  provider.register()
  registerInstrumentations({ instrumentations: gatewayInstrumentations(), tracerProvider: provider })
  // Spans still in the batch are exported when the server shuts down (server.ts calls this).
  ;(globalThis as Record<symbol, unknown>)[SHUTDOWN_TELEMETRY] = () => provider.shutdown()
}
