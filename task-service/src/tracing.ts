// OpenTelemetry tracing for the task service. Loaded by telemetry.ts only when OTEL_EXPORTER_OTLP_ENDPOINT is
// set; otherwise no OpenTelemetry module is ever imported. The request spans, the export and the resource are
// the shared ones (packages/observability); the task service adds pg's instrumentation:
// - a span per query and per pool connect, inside a request's span only (requireParentSpan: migrations and the
//   pool's housekeeping make no traces of their own). Statement text is recorded, parameters never are
//   (enhancedDatabaseReporting stays off: they hold user ids and task titles). PGlite has no instrumentation:
//   with the embedded database there are request spans only.
import { createRequire } from 'node:module'
import type { Instrumentation } from '@opentelemetry/instrumentation'
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg'
import type { TracingConfig } from 'observability'
import { fastifyInstrumentation, startTracing as startSdk } from 'observability/tracing'

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

export function startTracing (config: TracingConfig): void {
  startSdk(config, [fastifyInstrumentation(), pgInstrumentation()])
  patchPg()
}
