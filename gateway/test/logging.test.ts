// Logs: one pino line per request with request id and user id; Authorization and cookies never appear.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
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
