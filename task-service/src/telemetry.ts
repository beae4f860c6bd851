// Tracing preload: the first import of server.ts, so that it runs before anything else is loaded. A no-op
// unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then tracing.ts starts
// the OpenTelemetry SDK; otherwise no OpenTelemetry module is loaded and requests pay nothing for it.
// (It can also be given to node as `--import ./dist/telemetry.js`; loading it twice starts tracing once.)
import { loadTracingConfig, type TracingConfig } from './config.js'

const STARTED = Symbol.for('todo-task-service.tracingStarted')

let config: TracingConfig | undefined
try {
  config = loadTracingConfig()
} catch (err) {
  process.stderr.write(`task-service: invalid configuration: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}

const registry = globalThis as Record<symbol, unknown>
if (config.otlpEndpoint !== undefined && registry[STARTED] !== true) {
  registry[STARTED] = true
  const { startTracing } = await import('./tracing.js')
  startTracing(config)
}
