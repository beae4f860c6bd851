// OpenTelemetry tracing, loaded only when tracing is on (see telemetry.js). What both services trace alike:
// - @fastify/otel: a SERVER span per request (continuing the caller's traceparent), plus a span for the route
//   handler; lifecycle hooks get no spans of their own (instrumentHooks: false: the hooks are the hot path).
//   The span's trace id is stored on the request for the access line (TRACE_ID).
// - Export: OTLP over HTTP (protobuf) in batches. The exporter reads its own OTEL_EXPORTER_OTLP_* variables
//   (endpoint, headers, timeout, compression); the sampler follows OTEL_TRACES_SAMPLER (default: parent-based,
//   always on); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource.
// Each service adds the instrumentations of its own clients (undici, pg).
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { SHUTDOWN_TELEMETRY, TRACE_ID } from './telemetry.js'

export function fastifyInstrumentation () {
  return new FastifyOtelInstrumentation({
    registerOnInitialization: true,
    instrumentHooks: false,
    requestHook: (span, request) => { request[TRACE_ID] = span.spanContext().traceId }
  })
}

/** Starts tracing for the process: provider (global), exporter, the given instrumentations. */
export function startTracing (config, instrumentations, processor) {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }).merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [processor ?? new BatchSpanProcessor(new OTLPTraceExporter())]
  })
  // Global context manager (AsyncLocalStorage) and W3C trace-context propagator.
  provider.register()
  registerInstrumentations({ instrumentations, tracerProvider: provider })
  // Spans still in the batch are exported when the server shuts down (its server.ts calls shutdownTelemetry).
  globalThis[SHUTDOWN_TELEMETRY] = () => provider.shutdown()
  return provider
}
