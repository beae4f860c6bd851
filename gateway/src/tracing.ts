// OpenTelemetry tracing for the gateway. Loaded by telemetry.ts only when OTEL_EXPORTER_OTLP_ENDPOINT is set;
// otherwise no OpenTelemetry module is ever imported. The request spans, the export and the resource are the
// shared ones (packages/observability); the gateway adds undici's instrumentation:
// - The forwarded request carries a traceparent naming the gateway's request span, set by the gateway itself
//   (trace-context.ts). undici's instrumentation therefore leaves requests that already carry one alone: it
//   would add a second traceparent, and for a request queued in the pool it would take its parent from
//   whatever context the pool's drain runs in (another request's). It traces the gateway's other outgoing
//   requests (JWKS fetches, the /readyz probe).
import type { Instrumentation } from '@opentelemetry/instrumentation'
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici'
import type { TracingConfig } from 'observability'
import { fastifyInstrumentation, startTracing as startSdk } from 'observability/tracing'

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
    fastifyInstrumentation(),
    new UndiciInstrumentation({ ignoreRequestHook: (request) => carriesTraceparent(request.headers) })
  ]
}

export function startTracing (config: TracingConfig): void {
  startSdk(config, gatewayInstrumentations())
}
