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

export const forwarder = fp<Omit<ForwardOptions, 'closeConnections'>>(async function forwarder (app, opts) {
  app.decorate('forwarder', await registerForwarder(app, { ...opts, closeConnections: () => isDraining(app) }))
}, { name: 'gateway-forwarder', fastify: '5.x' })
