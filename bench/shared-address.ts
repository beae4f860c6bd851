// "50 users behind one address" (docs/reliability.md): the gateway with its default limits, as a process
// of its own, in front of the stub upstream. From 127.0.0.1 (one address, as behind a NAT or a load
// balancer that is not trusted), USERS users with valid EdDSA tokens send RATE requests/s in total for
// SECONDS seconds; then the same load again while the same address also sends ATTACK_RATE requests/s
// with forged tokens. Prints every status per phase, the rate achieved, and the gateway's own counters
// (authentication failures, rate-limit refusals). Bounded: 127.0.0.1 only, stops by itself.
//   npm run bench:shared-address        (USERS=50 RATE=2000 SECONDS=10 ATTACK_RATE=500)
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from 'node:http'
import { startJwks } from '../support/jwks-server.js'
import { freePort } from '../support/ports.js'
import { startGateway } from './lib/gateway.js'
import { buildWorkspaceIfStale } from '../support/workspaces.js'
import { runOpenLoop, type OpenLoopResult } from './lib/load.js'
import { stopAll } from '../support/processes.js'
import { createKeys, gatewayAuth, mintPool } from './lib/tokens.js'
import { startUpstream } from './lib/upstream.js'

const USERS = Number(process.env.USERS ?? 50)
const RATE = Number(process.env.RATE ?? 2_000)
const SECONDS = Number(process.env.SECONDS ?? 10)
const ATTACK_RATE = Number(process.env.ATTACK_RATE ?? 500)

const logDir = mkdtempSync(join(tmpdir(), 'bench-shared-address-'))
buildWorkspaceIfStale('gateway')
const keys = await createKeys('http://auth.bench.test')
const jwks = await startJwks([keys.eddsaPublicJwk])
const upstream = await startUpstream('upstream', logDir, undefined)
const metricsPort = await freePort()
const gateway = await startGateway({
  name: 'gateway',
  upstreamUrl: upstream.baseUrl,
  ...gatewayAuth(keys, jwks.url),
  logDir,
  logLevel: 'warn',
  // The defaults under test: empty means unset (the bench library otherwise puts the limits out of reach).
  env: { RATE_LIMIT_IP_MAX: '', RATE_LIMIT_USER_MAX: '', RATE_LIMIT_WINDOW_MS: '', METRICS_PORT: String(metricsPort) }
})

const tokens = await mintPool(keys, 'EdDSA', USERS)
// A forged token: a real one with its signature replaced, so each one costs the gateway a signature check.
const forged = (i: number): string => {
  const [h, p] = (tokens[i % USERS] as string).split('.')
  return `${h}.${p}.${Buffer.alloc(64, i % 251).toString('base64url')}`
}
const url = `${gateway.baseUrl}/api/tasks`

function summary (r: OpenLoopResult): Record<string, unknown> {
  return { answered: r.requests, seconds: Number(r.seconds.toFixed(1)), answeredPerSecond: Math.round(r.requestsPerSecond), statuses: r.statusCounts, p50Ms: Number(r.p50Ms.toFixed(1)), p99Ms: Number(r.p99Ms.toFixed(1)) }
}

async function scrape (): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    if (/^gateway_(rate_limited|authentication_failures)_total\{/.test(line)) {
      const i = line.lastIndexOf(' ')
      out[line.slice(0, i)] = Number(line.slice(i + 1))
    }
  }
  return out
}

try {
  // Every user's token verified once (as in a session that has been running), connections opened.
  // Socket pools sized under the gateway's per-address connection cap (256), which both share here.
  const agent = new Agent({ keepAlive: true, maxSockets: 128 })
  const attackerAgent = new Agent({ keepAlive: true, maxSockets: 64 })
  // Every request is waited for (up to a minute), so that each one is counted by its answer even when a
  // busy machine cannot keep up with the schedule.
  const drainMs = 60_000
  const users = await runOpenLoop({ url, ratePerSecond: RATE, durationSeconds: SECONDS, headersFor: (i) => ({ authorization: `Bearer ${tokens[i % USERS] as string}` }), warmupRequests: USERS, agent, drainMs })
  const afterUsers = await scrape()
  const [withAttack, attack] = await Promise.all([
    runOpenLoop({ url, ratePerSecond: RATE, durationSeconds: SECONDS, headersFor: (i) => ({ authorization: `Bearer ${tokens[i % USERS] as string}` }), agent, drainMs }),
    runOpenLoop({ url, ratePerSecond: ATTACK_RATE, durationSeconds: SECONDS, headersFor: (i) => ({ authorization: `Bearer ${forged(i)}` }), agent: attackerAgent, drainMs })
  ])
  agent.destroy()
  attackerAgent.destroy()
  console.log(JSON.stringify({
    setup: { users: USERS, targetRate: RATE, seconds: SECONDS, attackRate: ATTACK_RATE, address: '127.0.0.1 (all clients)', limits: 'defaults' },
    usersAlone: summary(users),
    counters: afterUsers,
    usersDuringAttack: summary(withAttack),
    attackerSameAddress: summary(attack),
    countersAtEnd: await scrape()
  }, null, 2))
} finally {
  await stopAll()
  await jwks.close()
}
