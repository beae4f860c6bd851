// The forwarding engine (pipeline/forward.ts): one undici pool to the task service, shared by the proxy
// route (forward) and /readyz (upstreamReady); decorates the instance with it.
import fp from 'fastify-plugin'
import { registerForwarder, type ForwardOptions, type Forwarder } from '../pipeline/forward.js'
import { isDraining } from './drain.js'

declare module 'fastify' {
  interface FastifyInstance {
    forwarder: Forwarder
  }
}

export interface ForwarderPluginOptions extends Omit<ForwardOptions, 'closeConnections' | 'observer'> {
  /** The forwarding engine (default: the dispatcher forwarder); only the forwarder A/B bench passes another. */
  engine?: typeof registerForwarder | undefined
}

export const forwarder = fp<ForwarderPluginOptions>(async function forwarder (app, { engine, ...opts }) {
  app.decorate('forwarder', await (engine ?? registerForwarder)(app, { ...opts, closeConnections: () => isDraining(app), observer: app.gatewayMetrics }))
}, { name: 'gateway-forwarder', fastify: '5.x' })
