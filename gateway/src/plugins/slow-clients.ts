// Slow and greedy clients: connection cap and an early body-size check.
//
// The header and whole-request timeouts (SERVER_HEADERS_TIMEOUT_MS, SERVER_REQUEST_TIMEOUT_MS) are server
// options, set when the server is created (server-options.ts). Here:
//  - SERVER_MAX_CONNECTIONS: connections beyond it are closed by Node as soon as they are accepted;
//  - SERVER_MAX_CONNECTIONS_PER_ADDRESS: a peer that is not a trusted proxy (TRUST_PROXY) may hold at most
//    this many open connections (an IPv6 peer: its /64); further ones are closed as soon as they are
//    accepted, so one client's idle-connection flood cannot fill SERVER_MAX_CONNECTIONS for everyone;
//  - MAX_BODY_BYTES: a request whose Content-Length announces more is answered 413 JSON before it is
//    authenticated or forwarded (the gateway never parses bodies; a chunked body streams to the task
//    service, which refuses more than 64 KiB, and must arrive within SERVER_REQUEST_TIMEOUT_MS).
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import { sendError } from '../errors.js'
import type { ServerLimitSettings } from '../limits-config.js'
import { addressKey } from '../client-address.js'
import type { TrustFunction } from '../trust-proxy.js'

export interface SlowClientOptions extends ServerLimitSettings {
  /** TRUST_PROXY's trust function: a trusted peer (hop 0) is a proxy, not one client. */
  trustedPeer: TrustFunction | undefined
}

export const slowClients = fp<SlowClientOptions>(function slowClients (app, settings, next) {
  if (settings.maxConnections > 0) app.server.maxConnections = settings.maxConnections

  const perAddress = settings.maxConnectionsPerAddress
  if (perAddress > 0) {
    const open = new Map<string, number>()
    const trusted = settings.trustedPeer
    app.server.on('connection', (socket: Socket) => {
      const peer = socket.remoteAddress
      if (peer === undefined || trusted?.(peer, 0) === true) return
      const key = addressKey(peer)
      const n = open.get(key) ?? 0
      if (n >= perAddress) {
        socket.destroy()
        return
      }
      open.set(key, n + 1)
      socket.once('close', () => {
        const left = (open.get(key) ?? 1) - 1
        if (left <= 0) open.delete(key)
        else open.set(key, left)
      })
    })
  }

  app.addHook('onRequest', (request, reply, done) => {
    const cl = request.headers['content-length']
    if (cl !== undefined) {
      const n = Number(cl)
      if (Number.isFinite(n) && n > settings.maxBodyBytes) {
        reply.header('connection', 'close')
        sendError(reply, 413, 'payload_too_large', `request body larger than ${settings.maxBodyBytes} bytes`)
        return
      }
    }
    done()
  })
  next()
}, { name: 'gateway-slow-clients', fastify: '5.x' })
