// The gateway for the forwarder A/B (bench/forwarder-ab.ts): production config and buildApp(), with the
// forwarding engine chosen by FORWARDER=dispatcher (the gateway's own) or reply-from. Both variants are
// started through this one entry (same loader, same compiled code) so that only the engine differs.
import { buildApp } from '../../gateway/src/app.js'
import { loadConfig } from '../../gateway/src/config.js'
import { registerReplyFromForwarder } from './reply-from-forwarder.js'

const engine = process.env.FORWARDER ?? 'dispatcher'
if (engine !== 'dispatcher' && engine !== 'reply-from') throw new Error(`FORWARDER must be dispatcher or reply-from, got ${engine}`)
const config = loadConfig()
const app = await buildApp(config, engine === 'reply-from' ? { registerForwarder: registerReplyFromForwarder } : {})
await app.listen({ port: config.port, host: config.host })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
