// Tracing, the part every process loads: the configuration, the preload that starts tracing only when it is
// configured (otherwise no OpenTelemetry module is ever imported and requests pay nothing for it), the global
// symbols a service and its tracing share, and the flush at shutdown. The OpenTelemetry SDK itself is in
// tracing.js, imported by the service's tracing module only when tracing is on.

/** Where the request hook stores a request's span trace id (a global symbol: no import needed either way). */
export const TRACE_ID = Symbol.for('todo.otel.traceId')

/** Where startTracing leaves the function that flushes and stops tracing (absent when tracing is off). */
export const SHUTDOWN_TELEMETRY = Symbol.for('todo.otel.shutdown')

/** Exports the spans still buffered and stops tracing; nothing to do when tracing is off. */
export async function shutdownTelemetry () {
  const shutdown = globalThis[SHUTDOWN_TELEMETRY]
  if (typeof shutdown === 'function') await shutdown()
}

function read (env, name) {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

/**
 * Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set and
 * OTEL_SDK_DISABLED is not "true". The exporter reads the rest of its OTEL_* variables itself; it speaks OTLP
 * over HTTP with protobuf, so another OTEL_EXPORTER_OTLP_PROTOCOL is refused rather than ignored.
 */
export function readTracingConfig (env, defaultServiceName) {
  const serviceName = read(env, 'OTEL_SERVICE_NAME') ?? defaultServiceName
  if (read(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { otlpEndpoint: undefined, serviceName }
  const name = read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'
  const raw = read(env, name)
  if (raw === undefined) return { otlpEndpoint: undefined, serviceName }
  let url
  try {
    url = new URL(raw)
  } catch {
    throw new Error(`${name} must be an http(s) URL such as http://otel-collector:4318, got "${raw}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${name} must use http or https (OTLP over HTTP), got "${url.protocol}"`)
  if (url.username !== '' || url.password !== '') throw new Error(`${name} must not contain credentials (OTEL_EXPORTER_OTLP_HEADERS carries an authorization header)`)
  for (const p of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = read(env, p)
    if (protocol !== undefined && protocol !== 'http/protobuf') throw new Error(`${p} must be http/protobuf (the protocol this service exports with), got "${protocol}"`)
  }
  return { otlpEndpoint: raw, serviceName }
}

/**
 * The body of a service's tracing preload (its telemetry.ts, the first import of its server.ts, so that it runs
 * before anything it instruments is loaded). Invalid configuration: one line on stderr, exit code 1. Tracing
 * configured: `start` runs once per process and service, however often the preload is loaded (it can also be
 * given to node as `--import`).
 */
export async function preloadTracing (service, loadConfig, start) {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    process.stderr.write(`${service}: invalid configuration: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
  const started = Symbol.for(`todo.otel.tracingStarted.${service}`)
  if (config.otlpEndpoint === undefined || globalThis[started] === true) return
  globalThis[started] = true
  await start(config)
}
