// Tracing preload: the first import of server.ts, so that it runs before anything else is loaded. A no-op
// unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: then tracing.ts starts
// the OpenTelemetry SDK; otherwise no OpenTelemetry module is loaded and requests pay nothing for it.
// (It can also be given to node as `--import ./dist/telemetry.js`; loading it twice starts tracing once.)
import { preloadTracing } from 'observability'
import { loadTracingConfig } from './config.js'

await preloadTracing('task-service', loadTracingConfig, async (config) => { (await import('./tracing.js')).startTracing(config) })
