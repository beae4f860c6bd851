// Contract tests through real HTTP against a recording stub upstream: what the task service
// received (method, path, headers, body), or that it received nothing.
import t from 'tap'
import { request } from 'undici'
import { stubbedGateway } from './helpers/upstream.js'
import { startGateway } from '../../support/gateway.js'
import { bearer, signHs } from '../../support/tokens.js'

const { up, gw } = await stubbedGateway(t)
const token = await signHs({ sub: 'user-1', email: 'a@example.com', name: 'Alice' })

async function call (method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number, headers: Record<string, unknown>, json: unknown, text: string }> {
  const res = await request(gw.url + path, { method: method as 'GET', headers, body })
  const text = await res.body.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.statusCode, headers: res.headers, json, text }
}

t.test('GET /api/tasks forwards GET /tasks with the query string and X-User-Id = sub', async (t) => {
  const r = await call('GET', '/api/tasks?status=pending&limit=5', bearer(token))
  t.equal(r.status, 200)
  t.same(r.json, [])
  const got = up.tasks()
  t.equal(got.length, 1)
  t.equal(got[0]?.method, 'GET')
  t.equal(got[0]?.url, '/tasks?status=pending&limit=5')
  t.equal(got[0]?.headers['x-user-id'], 'user-1')
  t.notOk('authorization' in (got[0]?.headers ?? {}), 'Authorization is not forwarded by default')
})

t.test('only sub is identity: email and name from the token are not forwarded', async (t) => {
  await call('GET', '/api/tasks', bearer(token))
  const h = up.tasks()[0]?.headers ?? {}
  t.equal(h['x-user-id'], 'user-1')
  t.notMatch(JSON.stringify(h), /a@example\.com|Alice/)
})

t.test('POST /api/tasks streams the body unchanged with its content type', async (t) => {
  up.respond((req, res) => {
    if (req.url === '/tasks') res.writeHead(201, { 'content-type': 'application/json', location: '/tasks/abc' }).end('{"id":"abc"}')
    else res.writeHead(404).end()
  })
  const body = '{"title":"  buy milk ","extra":[1,2,3]}'
  const r = await call('POST', '/api/tasks', { ...bearer(token), 'content-type': 'application/json' }, body)
  t.equal(r.status, 201)
  t.equal(r.headers.location, '/api/tasks/abc')
  const got = up.tasks()[0]
  t.equal(got?.method, 'POST')
  t.equal(got?.url, '/tasks')
  t.equal(got?.body, body)
  t.equal(got?.headers['content-type'], 'application/json')
  t.equal(got?.headers['x-user-id'], 'user-1')
  up.respond((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
})

t.test('a body of any content type (or none) streams through unparsed', async (t) => {
  const weird = 'not json at all {'
  await call('PUT', '/api/tasks/x1', { ...bearer(token), 'content-type': 'application/json' }, weird)
  t.equal(up.tasks()[0]?.body, weird, 'malformed JSON is not parsed or rejected by the gateway')
  await call('PATCH', '/api/tasks/x1', bearer(token), 'raw-bytes')
  t.equal(up.tasks()[1]?.body, 'raw-bytes')
  t.equal(up.tasks()[1]?.method, 'PATCH')
})

t.test('a body whose Content-Type is not a media type → 415 unsupported_media_type (the code the task service gives a 415), nothing forwarded', async (t) => {
  for (const type of ['not a media type', 'admin', '*', 'application/json, text/plain']) {
    const r = await call('POST', '/api/tasks', { ...bearer(token), 'content-type': type }, '{"title":"x"}')
    t.equal(r.status, 415, type)
    t.match(r.json, { error: { code: 'unsupported_media_type', message: String, requestId: String } })
  }
  t.equal(up.tasks().length, 0, 'nothing forwarded')
})

t.test('item and complete routes map to /tasks/:id and /tasks/:id/complete', async (t) => {
  await call('GET', '/api/tasks/abc', bearer(token))
  await call('DELETE', '/api/tasks/abc', bearer(token))
  await call('PATCH', '/api/tasks/abc/complete', bearer(token))
  await call('HEAD', '/api/tasks/abc', bearer(token))
  t.same(up.tasks().map((r) => `${r.method} ${r.url}`), ['GET /tasks/abc', 'DELETE /tasks/abc', 'PATCH /tasks/abc/complete', 'HEAD /tasks/abc'])
})

t.test('the id is one segment, re-encoded: the gateway does not judge its format', async (t) => {
  await call('GET', '/api/tasks/a%20b%3Fc', bearer(token))
  await call('GET', '/api/tasks/%C3%A9t%C3%A9', bearer(token))
  t.same(up.tasks().map((r) => r.url), ['/tasks/a%20b%3Fc', '/tasks/%C3%A9t%C3%A9'])
})

t.test('compat path /api/{user_id}/tasks forwards like /api/tasks when user_id = sub', async (t) => {
  up.respond((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', link: '</tasks?cursor=abc&limit=5>; rel="next"' }).end('[]')
  })
  const r = await call('GET', '/api/user-1/tasks?limit=5', bearer(token))
  t.equal(r.status, 200)
  t.equal(r.headers.link, '</api/user-1/tasks?cursor=abc&limit=5>; rel="next"')
  await call('PATCH', '/api/user-1/tasks/t9/complete', bearer(token))
  t.same(up.tasks().map((r) => `${r.method} ${r.url} ${String(r.headers['x-user-id'])}`), ['GET /tasks?limit=5 user-1', 'PATCH /tasks/t9/complete user-1'])
  up.respond((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
})

t.test('compat path user is percent-decoded before comparing with sub', async (t) => {
  const tok = await signHs({ sub: 'user@example.com' })
  const r = await call('GET', '/api/user%40example.com/tasks', bearer(tok))
  t.equal(r.status, 200)
  t.equal(up.tasks()[0]?.headers['x-user-id'], 'user@example.com')
})

t.test('compat path with another user → 403 JSON, nothing forwarded', async (t) => {
  for (const [m, p] of [['GET', '/api/user-2/tasks'], ['POST', '/api/user-2/tasks'], ['DELETE', '/api/user-2/tasks/abc'], ['PATCH', '/api/user-2/tasks/abc/complete']] as const) {
    const r = await call(m, p, { ...bearer(token), 'content-type': 'application/json' }, m === 'POST' ? '{"title":"x"}' : undefined)
    t.equal(r.status, 403, `${m} ${p}`)
    t.match(r.json, { error: { code: 'forbidden_user' } })
  }
  t.equal(up.received.length, 0)
})

t.test('unknown route with a valid token → 404 JSON, nothing forwarded', async (t) => {
  for (const p of ['/api/users', '/tasks', '/api', '/api/tasks/a/b', '/api/tasks/a/complete/x', '/admin', '/api/user-1/notes', '/readyz/x']) {
    const r = await call('GET', p, bearer(token))
    t.equal(r.status, 404, p)
    t.match(r.json, { error: { code: 'not_found' } })
  }
  t.equal(up.received.length, 0)
})

t.test('unknown route without a token → 401 (authentication runs first)', async (t) => {
  const r = await call('GET', '/admin')
  t.equal(r.status, 401)
  t.equal(r.headers['www-authenticate'], 'Bearer realm="api"')
  t.equal(up.received.length, 0)
})

t.test('method the task service does not serve → 405 JSON with Allow, nothing forwarded', async (t) => {
  const r = await call('DELETE', '/api/tasks', bearer(token))
  t.equal(r.status, 405)
  t.equal(r.headers.allow, 'GET, HEAD, POST')
  t.match(r.json, { error: { code: 'method_not_allowed' } })
  const r2 = await call('GET', '/api/tasks/abc/complete', bearer(token))
  t.equal(r2.status, 405)
  t.equal(up.received.length, 0)
})

t.test('order of checks: 401 before 404 before 403', async (t) => {
  t.equal((await call('GET', '/api/user-2/nothing')).status, 401)
  t.equal((await call('GET', '/api/user-2/nothing', bearer(token))).status, 404)
  t.equal((await call('GET', '/api/user-2/tasks', bearer(token))).status, 403)
})

t.test('Location and Link naming the task service origin are made public; other internal references dropped', async (t) => {
  up.respond((req, res) => {
    res.writeHead(201, {
      'content-type': 'application/json',
      location: `${up.origin}/tasks/abc`,
      link: [`<${up.origin}/tasks?cursor=x>; rel="next"`, `<${up.origin}/internal>; rel="debug"`],
      server: 'task-service/1.0',
      'x-powered-by': 'secret-stack'
    }).end('{}')
  })
  const r = await call('POST', '/api/user-1/tasks', { ...bearer(token), 'content-type': 'application/json' }, '{"title":"x"}')
  t.equal(r.headers.location, '/api/user-1/tasks/abc')
  t.equal(r.headers.link, '</api/user-1/tasks?cursor=x>; rel="next"')
  t.notOk('server' in r.headers)
  t.notOk('x-powered-by' in r.headers)
  t.notMatch(JSON.stringify(r.headers), new RegExp(up.origin.replace(/[.]/g, '\\.')))
  up.respond((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
})

t.test('upstream status codes and bodies pass through (e.g. 404 for an unknown id, 204)', async (t) => {
  up.respond((req, res) => {
    if (req.method === 'DELETE') res.writeHead(204).end()
    else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found"}}')
  })
  const r = await call('GET', '/api/tasks/missing', bearer(token))
  t.equal(r.status, 404)
  t.same(r.json, { error: { code: 'not_found' } })
  t.equal((await call('DELETE', '/api/tasks/abc', bearer(token))).status, 204)
  up.respond((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') })
})

t.test('responses carry X-Request-Id, security headers and cache-control: no-store', async (t) => {
  const r = await call('GET', '/api/tasks', { ...bearer(token), 'x-request-id': 'req-123' })
  t.equal(r.headers['x-request-id'], 'req-123')
  t.equal(up.tasks()[0]?.headers['x-request-id'], 'req-123')
  t.equal(r.headers['cache-control'], 'no-store')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  const bad = await call('GET', '/api/tasks', { ...bearer(token), 'x-request-id': 'bad id with spaces<script>' })
  t.match(bad.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a malformed client request id is replaced')
  t.match(up.tasks()[1]?.headers['x-request-id'], /^[0-9a-f-]{36}$/)
})

t.test('X-Forwarded-* are set by the gateway', async (t) => {
  await call('GET', '/api/tasks', bearer(token))
  const h = up.tasks()[0]?.headers ?? {}
  t.equal(h['x-forwarded-for'], '127.0.0.1')
  t.equal(h['x-forwarded-proto'], 'http')
  t.equal(h['x-forwarded-host'], `127.0.0.1:${gw.port}`)
})

t.test('healthz, readyz and openapi.json need no token', async (t) => {
  t.equal((await call('GET', '/healthz')).status, 200)
  const ready = await call('GET', '/readyz')
  t.equal(ready.status, 200)
  const doc = await call('GET', '/openapi.json')
  t.equal(doc.status, 200)
  t.ok((doc.json as { paths: Record<string, unknown> }).paths['/api/{user_id}/tasks'])
  t.equal(up.tasks().length, 0)
})

t.test('CORS: preflight answered by the gateway for allowed origins, with credentials', async (t) => {
  const corsGw = await startGateway({ TASK_SERVICE_URL: up.url, CORS_ORIGINS: 'http://localhost:3000,https://app.example.com' })
  t.teardown(() => corsGw.close())
  const pre = await request(corsGw.url + '/api/tasks', {
    method: 'OPTIONS',
    headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
  })
  await pre.body.dump()
  t.equal(pre.statusCode, 204)
  t.equal(pre.headers['access-control-allow-origin'], 'http://localhost:3000')
  t.equal(pre.headers['access-control-allow-credentials'], 'true')
  t.match(String(pre.headers['access-control-allow-headers']), /Authorization/i)
  const other = await request(corsGw.url + '/api/tasks', { method: 'GET', headers: { origin: 'https://evil.example' } })
  await other.body.dump()
  t.equal(other.statusCode, 401)
  t.notOk('access-control-allow-origin' in other.headers, 'no CORS grant for an unlisted origin')
  const ok = await request(corsGw.url + '/api/tasks', { method: 'GET', headers: { origin: 'https://app.example.com', ...bearer(token) } })
  await ok.body.dump()
  t.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com')
  t.match(String(ok.headers['access-control-expose-headers']), /Location/)
  t.equal(up.received.filter((r) => r.method === 'OPTIONS').length, 0, 'preflight never forwarded')
})
