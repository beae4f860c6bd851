// What both services observe themselves with. Plain JavaScript with its declarations (index.d.ts,
// tracing.d.ts), so that each service's build imports it without compiling it. This entry point loads
// prom-client and node:http only; the OpenTelemetry SDK is behind `observability/tracing`.
export { CLIENT_CLOSED_REQUEST, createHttpMetrics, methodLabel, scrapedCounter, scrapedGauge, statusOf, withProcessMetrics } from './metrics.js'
export { PositionalHistogram } from './histogram.js'
export { listenMetrics } from './metrics-server.js'
export { preloadTracing, readTracingConfig, SHUTDOWN_TELEMETRY, shutdownTelemetry, TRACE_ID } from './telemetry.js'
