import type { Instrumentation } from '@opentelemetry/instrumentation'
import type { NodeTracerProvider, SpanProcessor } from '@opentelemetry/sdk-trace-node'
import type { TracingConfig } from './index.js'

/** @fastify/otel: a SERVER span per request and one for its handler, none for hooks; the trace id stored at TRACE_ID. */
export declare function fastifyInstrumentation (): Instrumentation

/**
 * Starts tracing for the process: a global provider exporting OTLP over HTTP in batches (or to `processor`), the
 * given instrumentations, and the flush shutdownTelemetry() calls.
 */
export declare function startTracing (config: TracingConfig, instrumentations: Instrumentation[], processor?: SpanProcessor): NodeTracerProvider
