// The gateway's own headers on every response Fastify sends: request id, security headers, no banners,
// Connection: close while draining (response-headers.ts). Forwarded responses do not pass through onSend:
// the forwarder writes their head itself, with the same rules (gatewayHeadersForForwarding).
import fp from 'fastify-plugin'
import { setGatewayHeaders } from '../response-headers.js'
import { isDraining } from './drain.js'

export const securityHeaders = fp(function securityHeaders (app, _opts, next) {
  // Callback-style: no promise per request.
  app.addHook('onSend', (_request, reply, payload, done) => {
    setGatewayHeaders(reply, isDraining(app))
    done(null, payload)
  })
  next()
}, { name: 'gateway-security-headers', fastify: '5.x' })
