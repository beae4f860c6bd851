// Logs: one pino line per request with request id and user id; Authorization and cookies never appear.
import t from 'tap'
import net from 'node:net'
import { request } from 'undici'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { plaintextJwksWarning } from '../src/keys/jwks.js'
import { ASSERTION_ENV, AUDIENCE, signHs } from '../../support/tokens.js'
import { startUpstream } from './helpers/upstream.js'
import { eventually } from '../../support/wait.js'
import { startGateway } from '../../support/gateway.js'

t.test('request lines carry reqId and userId; tokens and cookies are never logged', async (t) => {
  const up = await startUpstream()
  const lines: string[] = []
  t.teardown(() => up.close())
  const { url } = await startGateway({ TASK_SERVICE_URL: up.url }, { t, logStream: { write: (l) => { lines.push(l) } } })
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

t.test('a response cut short still gets exactly one access line, marked aborted (499 when no head was sent)', async (t) => {
  let hold: import('node:http').ServerResponse | undefined
  const up = await startUpstream((req, res) => {
    if (req.url?.includes('mid-body')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('[')
      hold = res // the rest never comes
      return
    }
    if (req.url?.includes('upstream-dies')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
      res.write('[')
      setTimeout(() => { req.socket.destroy() }, 20)
    }
    // before-head: never answers
  })
  const lines: string[] = []
  const gw = await startGateway({ TASK_SERVICE_URL: up.url }, { logStream: { write: (l) => { lines.push(l) } } })
  t.teardown(async () => { hold?.destroy(); await gw.close(); await up.close() })
  const port = gw.port
  const token = await signHs({ sub: 'cut-user' })
  const completions = (rid: string): Array<Record<string, unknown>> =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.reqId === rid && l.msg === 'request completed')

  // The client leaves mid-body, and before any answer; the task service dies mid-body.
  for (const [rid, path, waitForHead] of [['cut-mid-body', '/api/tasks?mid-body=1', true], ['cut-before-head', '/api/tasks?before-head=1', false]] as const) {
    const s = net.connect(port, '127.0.0.1')
    s.on('error', () => {})
    let got = ''
    s.on('data', (c: Buffer) => { got += c.toString('latin1') })
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Request-Id: ${rid}\r\n\r\n`)
    if (waitForHead) await eventually(() => got.includes('\r\n\r\n'))
    else await eventually(() => up.tasks().some((r) => r.url.includes('before-head')))
    s.destroy()
    await eventually(() => completions(rid).length > 0)
  }
  const died = await request(`http://127.0.0.1:${port}/api/tasks?upstream-dies=1`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'cut-upstream' } })
  await died.body.text().catch(() => undefined)
  await eventually(() => completions('cut-upstream').length > 0)
  await new Promise((resolve) => setTimeout(resolve, 100)) // a second line, if one were coming

  t.match(completions('cut-mid-body'), [{ userId: 'cut-user', statusCode: 200, aborted: true, path: '/api/tasks' }], 'client gone mid-body: one line, the status it was sent')
  t.match(completions('cut-before-head'), [{ userId: 'cut-user', statusCode: 499, aborted: true }], 'client gone before the head: one line, 499')
  t.match(completions('cut-upstream'), [{ userId: 'cut-user', statusCode: 200, aborted: true }], 'task service gone mid-body: one line')
  const normal = await request(`http://127.0.0.1:${port}/healthz`, { headers: { 'x-request-id': 'not-cut' } })
  await normal.body.dump()
  await eventually(() => completions('not-cut').length > 0)
  t.notOk('aborted' in completions('not-cut')[0]!, 'a complete response carries no aborted field')
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
    const app = await buildApp(loadConfig({ ...ASSERTION_ENV, TASK_SERVICE_URL: 'http://127.0.0.1:9', JWKS_TIMEOUT_MS: '100', JWT_AUDIENCE: AUDIENCE, ...env }), { awaitKeys: false, logStream: { write: (l) => { lines.push(l) } } })
    await app.close()
    const warning = lines.map((l) => JSON.parse(l) as { level: number, msg: string }).find((l) => l.msg.includes('plain HTTP'))
    if (warned) t.match(warning, { level: 40 }, `${JSON.stringify(env)} → a warning`)
    else t.equal(warning, undefined, `${JSON.stringify(env)} → no warning`)
  }
})
