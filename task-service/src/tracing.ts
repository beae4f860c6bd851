// OpenTelemetry tracing for the task service. Loaded by telemetry.ts only when OTEL_EXPORTER_OTLP_ENDPOINT is
// set; otherwise no OpenTelemetry module is ever imported.
//
// - @fastify/otel: a SERVER span per request, continuing the gateway's traceparent, plus a span for the route
//   handler (hooks get none of their own). The span's trace id is stored on the request for the access line.
// - pg: a span per query and per pool connect, inside a request's span only (requireParentSpan: migrations
//   and the pool's housekeeping make no traces of their own). Statement text is recorded, parameters never
//   are (enhancedDatabaseReporting stays off: they hold user ids and task titles). PGlite has no
//   instrumentation: with the embedded database there are request spans only.
// - Export: OTLP over HTTP (protobuf) in batches; the exporter reads its own OTEL_EXPORTER_OTLP_* variables, the
//   sampler follows OTEL_TRACES_SAMPLER (default: parent-based, always on), OTEL_SERVICE_NAME and
//   OTEL_RESOURCE_ATTRIBUTES name the resource.
import { createRequire } from 'node:module'
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { registerInstrumentations, type Instrumentation } from '@opentelemetry/instrumentation'
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node'
import type { TracingConfig } from './config.js'
import { SHUTDOWN_TELEMETRY, TRACE_ID } from './trace-context.js'

export function fastifyInstrumentation (): Instrumentation {
  return new FastifyOtelInstrumentation({
    registerOnInitialization: true,
    instrumentHooks: false,
    requestHook: (span, request) => { (request as unknown as Record<symbol, string>)[TRACE_ID] = span.spanContext().traceId }
  })
}

export function pgInstrumentation (): Instrumentation {
  return new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false })
}

/**
 * pg is CommonJS: its instrumentation patches it when it is require()d. db.ts imports it as an ES module, which
 * Node loads through the same CommonJS cache, so one require() here, after the instrumentation is registered,
 * patches the classes db.ts uses (no ES-module loader hook needed).
 */
export function patchPg (): void {
  createRequire(import.meta.url)('pg')
}

export function startTracing (config: TracingConfig, processor?: SpanProcessor): void {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }).merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [processor ?? new BatchSpanProcessor(new OTLPTraceExporter())]
  })
  provider.register()
  registerInstrumentations({ instrumentations: [fastifyInstrumentation(), pgInstrumentation()], tracerProvider: provider })
  patchPg()
  ;(globalThis as Record<symbol, unknown>)[SHUTDOWN_TELEMETRY] = () => provider.shutdown()
}
