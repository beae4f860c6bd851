// Entry point: read config from the environment, build, listen; graceful shutdown on SIGTERM/SIGINT.
// Bad configuration → one clear line on stderr, exit code 1, never listening.
// First: starts tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set, before anything it instruments is loaded.
import './telemetry.js'
import closeWithGrace from 'close-with-grace'
import { shutdownTelemetry, type MetricsListener } from 'observability'
import { buildApp } from './app.js'
import { loadConfig, type GatewayConfig } from './config.js'
import { drainAndClose } from './plugins/drain.js'

let config: GatewayConfig
try {
  config = loadConfig()
} catch (err) {
  process.stderr.write(`gateway: invalid configuration: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}

const app = await buildApp(config)

// The metrics listener first: a metrics port that cannot be bound stops the start before the public port opens.
let metricsListener: MetricsListener | undefined
if (app.gatewayMetrics !== undefined) {
  try {
    metricsListener = await app.gatewayMetrics.listen({ port: config.metricsPort, host: config.metricsHost })
  } catch (err) {
    await app.close().catch(() => undefined)
    process.stderr.write(`gateway: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

const drainMs = config.limits.server.shutdownDrainMs
closeWithGrace({ delay: drainMs + 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal, drainMs }, 'shutting down')
  await drainAndClose(app, err !== undefined ? 0 : drainMs)
  await metricsListener?.close()
  await shutdownTelemetry()
})

try {
  await app.listen({ port: config.port, host: config.host })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.stderr.write(`gateway: could not listen on ${config.host}:${config.port}: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}
if (metricsListener !== undefined) app.log.info({ metrics: `http://${config.metricsHost}:${metricsListener.port}/metrics` }, 'metrics listener started')
