// Logs: one pino line per request with request id and user id; Authorization and cookies never appear.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { plaintextJwksWarning } from '../src/keys/jwks.js'
import { SECRET, signHs } from './helpers/keys.js'
import { startUpstream } from './helpers/upstream.js'

t.test('request lines carry reqId and userId; tokens and cookies are never logged', async (t) => {
  const up = await startUpstream()
  const lines: string[] = []
  const app = await buildApp(loadConfig({ JWT_SECRET: SECRET, TASK_SERVICE_URL: up.url }), { logStream: { write: (l) => { lines.push(l) } } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close(); await up.close() })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const token = await signHs({ sub: 'log-user' })
  const ok = await request(url + '/api/tasks', { headers: { authorization: `Bearer ${token}`, cookie: 'session=cookie-secret', 'x-request-id': 'rid-1' } })
  await ok.body.dump()
  const bad = await request(url + '/api/tasks', { headers: { authorization: 'Bearer not.a.valid-token-xyz', 'x-request-id': 'rid-2' } })
  await bad.body.dump()
  up.respond((req) => { req.socket.destroy() })
  const failed = await request(url + '/api/tasks', { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'rid-3' } })
  await failed.body.dump()

  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  const forRid = (rid: string): Array<Record<string, unknown>> => parsed.filter((l) => l.reqId === rid)
  const done1 = forRid('rid-1').filter((l) => l.msg === 'request completed')
  t.equal(done1.length, 1, 'one completion line per request')
  t.match(done1[0], { reqId: 'rid-1', userId: 'log-user', statusCode: 200, method: 'GET', path: '/api/tasks' })
  t.ok(forRid('rid-3').length >= 2, 'an upstream failure logs a warning and a completion line')
  for (const l of forRid('rid-3')) t.equal(l.userId, 'log-user', `user id on "${String(l.msg)}"`)
  t.match(forRid('rid-2').find((l) => l.msg === 'authentication failed'), { authError: 'malformed_token' })
  const all = lines.join('\n')
  t.notOk(all.includes(token), 'the token never appears')
  t.notOk(all.includes('cookie-secret'), 'cookies never appear')
  t.notOk(all.includes('valid-token-xyz'), 'invalid tokens never appear either')
})

t.test('a JWKS fetched over plain HTTP from a non-loopback host logs a warning at start (not refused)', async (t) => {
  t.equal(plaintextJwksWarning('http://127.0.0.1:3000/api/auth/jwks'), undefined, 'loopback IPv4')
  t.equal(plaintextJwksWarning('http://localhost:3000/api/auth/jwks'), undefined, 'localhost')
  t.equal(plaintextJwksWarning('http://[::1]:3000/jwks'), undefined, 'loopback IPv6')
  t.equal(plaintextJwksWarning('https://auth.example.com/api/auth/jwks'), undefined, 'https')
  t.match(plaintextJwksWarning('http://frontend:3000/api/auth/jwks'), /plain HTTP from frontend:3000/)
  t.match(plaintextJwksWarning('http://10.0.0.5/jwks'), /plain HTTP/)

  // Wiring through buildApp; only local addresses are contacted (0.0.0.0 is not loopback by name).
  for (const [env, warned] of [
    [{ BETTER_AUTH_URL: 'http://0.0.0.0:9' }, true],
    [{ JWKS_URL: 'http://0.0.0.0:9/jwks' }, true],
    [{ JWKS_URL: 'http://127.0.0.1:9/jwks' }, false]
  ] as const) {
    const lines: string[] = []
    const app = await buildApp(loadConfig({ TASK_SERVICE_URL: 'http://127.0.0.1:9', JWKS_TIMEOUT_MS: '100', ...env }), { awaitKeys: false, logStream: { write: (l) => { lines.push(l) } } })
    await app.close()
    const warning = lines.map((l) => JSON.parse(l) as { level: number, msg: string }).find((l) => l.msg.includes('plain HTTP'))
    if (warned) t.match(warning, { level: 40 }, `${JSON.stringify(env)} → a warning`)
    else t.equal(warning, undefined, `${JSON.stringify(env)} → no warning`)
  }
})
