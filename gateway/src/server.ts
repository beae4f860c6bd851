// Entry point: read config from the environment, build, listen; graceful shutdown on SIGTERM/SIGINT.
// Bad configuration → one clear line on stderr, exit code 1, never listening.
import closeWithGrace from 'close-with-grace'
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

const drainMs = config.limits.server.shutdownDrainMs
closeWithGrace({ delay: drainMs + 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal, drainMs }, 'shutting down')
  await drainAndClose(app, err !== undefined ? 0 : drainMs)
})

try {
  await app.listen({ port: config.port, host: config.host })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.stderr.write(`gateway: could not listen on ${config.host}:${config.port}: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}
