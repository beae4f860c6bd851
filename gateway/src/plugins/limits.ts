// Protective limits, each its own plugin, registered in the order a request meets them (their onRequest
// hooks run in this order, before authentication): shed load (503) → body size (413) → drain. The rate
// limits count during authentication, once it is known whether the caller has a valid token (per user)
// or not (per client address) (rate-limit.ts, called from plugins/authentication.ts), and the per-user
// concurrency cap is taken just before forwarding (concurrency.ts, from plugins/proxy.ts).
// Settings: limits-config.ts. A new limit is one more plugin registered here.
import fp from 'fastify-plugin'
import type { LimitsConfig } from '../limits-config.js'
import type { TrustFunction } from '../trust-proxy.js'
import { loadShedding } from './load-shedding.js'
import { slowClients } from './slow-clients.js'
import { rateLimit } from './rate-limit.js'
import { drain } from './drain.js'
import { concurrency } from './concurrency.js'

export interface LimitsOptions extends LimitsConfig {
  /** TRUST_PROXY's trust function (undefined: no proxy trusted). */
  trustedPeer: TrustFunction | undefined
}

export const limits = fp<LimitsOptions>(async function limits (app, settings) {
  await app.register(loadShedding, settings.loadShedding)
  await app.register(slowClients, { ...settings.server, trustedPeer: settings.trustedPeer })
  await app.register(rateLimit, settings.rateLimit)
  await app.register(drain)
  await app.register(concurrency, settings.concurrency)
}, { name: 'gateway-limits', fastify: '5.x' })
