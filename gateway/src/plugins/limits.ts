// Protective limits, each its own plugin, registered in the order a request meets them (their onRequest
// hooks run in this order, before authentication): shed load (503) → body size (413) → per-IP rate limit
// (429) → drain. The per-user rate limit counts later, once the caller is known (rate-limit.ts).
// Settings: limits-config.ts. A new limit is one more plugin registered here.
import fp from 'fastify-plugin'
import type { LimitsConfig } from '../limits-config.js'
import { loadShedding } from './load-shedding.js'
import { slowClients } from './slow-clients.js'
import { rateLimit } from './rate-limit.js'
import { drain } from './drain.js'

export const limits = fp<LimitsConfig>(async function limits (app, settings) {
  await app.register(loadShedding, settings.loadShedding)
  await app.register(slowClients, settings.server)
  await app.register(rateLimit, settings.rateLimit)
  await app.register(drain)
}, { name: 'gateway-limits', fastify: '5.x' })
