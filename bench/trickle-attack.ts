// The trickle attack, measured (docs/reliability.md): one user opens ATTACK_UPLOADS chunked POSTs that
// send one byte every 2 s, while OTHER_USERS other users (4 requests in flight each, RATE_PER_USER requests
// a second each: under the per-user rate limit, so any 429 they get is the attack's doing) work for SECONDS
// seconds. Prints the other users' latency percentiles and statuses, and what the attacker got.
// Gateway with its defaults (in this process) in front of a stub task service (another process would be
// fairer to latency; in-process keeps the run self-contained). Bounded: 127.0.0.1 only, stops by itself.
//   npx tsx bench/trickle-attack.ts            (ATTACK_UPLOADS=200 OTHER_USERS=20 RATE_PER_USER=100 SECONDS=15)
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { buildApp } from '../gateway/src/app.js'
import { loadConfig } from '../gateway/src/config.js'
import { ASSERTION_KEYS, signHs } from '../support/tokens.js'

const UPLOADS = Number(process.env.ATTACK_UPLOADS ?? 200)
const USERS = Number(process.env.OTHER_USERS ?? 20)
const SECONDS = Number(process.env.SECONDS ?? 15)
const RATE_PER_USER = Number(process.env.RATE_PER_USER ?? 100)
const SECRET = 'bench-secret-that-is-long-enough-0123456789'

const upstream = http.createServer((req, res) => {
  req.resume()
  req.on('end', () => { res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' }).end('[]') })
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const app = await buildApp(loadConfig({
  JWT_SECRET: SECRET,
  GATEWAY_ASSERTION_PRIVATE_KEY: ASSERTION_KEYS.privateKeyPem,
  JWT_AUDIENCE: 'bench',
  TASK_SERVICE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
  LOG_LEVEL: 'warn',
  LOG_BUFFER_BYTES: '0'
}), { logger: false })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port
const sign = async (sub: string): Promise<string> => await signHs({ sub, aud: 'bench', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET)

// The attacker.
const attacker = await sign('attacker')
const attack = { refused429: 0, other: new Map<string, number>() }
const sockets: net.Socket[] = []
for (let i = 0; i < UPLOADS; i++) {
  // From its own address, as an attacker would be (the per-address connection cap counts by address).
  const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' })
  s.on('error', () => {})
  let head = ''
  s.on('data', (c: Buffer) => {
    if (head !== '') return
    head = c.toString('latin1').split('\r\n')[0] ?? ''
    if (/ 429 /.test(head)) attack.refused429++
    else attack.other.set(head, (attack.other.get(head) ?? 0) + 1)
  })
  s.write(`POST /api/tasks HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ${attacker}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`)
  sockets.push(s)
}
const drip = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write('1\r\n \r\n') }, 2_000)

// Everyone else.
const agent = new Agent({ connections: USERS * 4 })
const latencies: number[] = []
const statuses = new Map<number, number>()
const end = Date.now() + SECONDS * 1000
await Promise.all(Array.from({ length: USERS }, async (_, u) => {
  const token = await sign(`user-${u}`)
  await Promise.all(Array.from({ length: 4 }, async (_, w) => {
    // Each of the user's 4 workers sends a quarter of its rate, on a schedule (a late request is not made up).
    const gapMs = 4_000 / RATE_PER_USER
    let next = performance.now() + w * gapMs / 4
    while (Date.now() < end) {
      const wait = next - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      next = Math.max(next + gapMs, performance.now())
      const t0 = performance.now()
      const res = await request(`http://127.0.0.1:${port}/api/tasks`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } })
      await res.body.dump()
      latencies.push(performance.now() - t0)
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    }
  }))
}))
clearInterval(drip)
for (const s of sockets) s.destroy()
latencies.sort((a, b) => a - b)
const pct = (p: number): string => (latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(1)
console.log(JSON.stringify({
  attackUploads: UPLOADS,
  attacker: { refused429: attack.refused429, otherAnswers: Object.fromEntries(attack.other), stillOpenUnanswered: UPLOADS - attack.refused429 - [...attack.other.values()].reduce((a, b) => a + b, 0) },
  others: { users: USERS, ratePerUser: RATE_PER_USER, requests: latencies.length, perSecond: Math.round(latencies.length / SECONDS), statuses: Object.fromEntries(statuses), p50ms: pct(0.5), p99ms: pct(0.99), maxMs: pct(1) }
}, null, 2))
await agent.close()
await app.close()
upstream.closeAllConnections()
upstream.close()
