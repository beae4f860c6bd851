// Route table and path normalization. Path tricks are sent raw over a socket (inject and HTTP clients
// would normalize them first). Whatever the spelling, the task service only ever sees /tasks…, or nothing.
import t from 'tap'
import { authorize, isRejection, normalizePath } from '../src/pipeline/authorize.js'
import { stubbedGateway } from './helpers/upstream.js'
import { startGateway } from '../../support/gateway.js'
import { signHs } from '../../support/tokens.js'
import { rawHttp, req } from './helpers/raw.js'

const { up, gw } = await stubbedGateway(t)
const token = await signHs({ sub: 'user-1' })

const send = async (target: string, method = 'GET'): Promise<number> =>
  (await rawHttp(gw.port, req(method, target, [['Authorization', `Bearer ${token}`]]))).status

const NEVER_FORWARDED = [
  '/api/tasks/../../admin',
  '/api/tasks/../..',
  '/api/tasks/%2e%2e/%2e%2e/admin',
  '/api/tasks/%2E%2E/%2E%2E/readyz',
  '/api/tasks/..%2f..%2fadmin',
  '/api/tasks/..%2F..%2Fadmin',
  '/api/tasks/a%2fb',
  '/api/tasks%2f..%2fadmin',
  '/api/tasks/a%5cb',
  '/api/tasks/..%5c..%5cadmin',
  '/api/tasks/a%00b',
  '/api/tasks/%00',
  '/api/tasks/a%0d%0aX-User-Id:%20evil',
  '/api/tasks/%c0%ae%c0%ae/admin',
  '/api/tasks/%ff',
  '/api/tasks/%zz',
  '/api/user-1/tasks/../../../admin',
  '/api/../admin',
  '/api/tasks/x/../../../healthz',
  '//admin',
  '/.%2e/admin',
  '*',
  'http://evil.example/api/tasks'
]

for (const target of NEVER_FORWARDED) {
  t.test(`path trick ${JSON.stringify(target)} is never forwarded`, async (t) => {
    const status = await send(target)
    t.ok(status === 404 || status === 400, `4xx (got ${status})`)
    t.equal(up.received.length, 0, 'the task service received nothing')
  })
}

t.test('raw backslash and NUL in the request line are never forwarded', async (t) => {
  for (const target of ['/api/tasks\\..\\..\\admin', '/api\\tasks', '/api/tasks/a\u0000b']) {
    let status: number
    try {
      status = (await rawHttp(gw.port, req('GET', target, [['Authorization', `Bearer ${token}`]]))).status
    } catch {
      status = 400 // the connection was refused outright
    }
    t.ok(status === 400 || status === 404, `${JSON.stringify(target)} → ${status}`)
  }
  t.equal(up.received.length, 0)
})

const NORMALIZED: Array<[string, string]> = [
  ['/api//tasks', '/tasks'],
  ['//api///tasks//', '/tasks'],
  ['/api/tasks/', '/tasks'],
  ['/api/./tasks', '/tasks'],
  ['/api/tasks/abc/..', '/tasks'],
  ['/api/tasks/abc/complete/..', '/tasks/abc'],
  ['/api/x/../tasks', '/tasks'],
  ['/api/ta%73ks', '/tasks'],
  ['/api/tasks/%61bc', '/tasks/abc'],
  ['/api/tasks/a%252e%252e', '/tasks/a%252e%252e'],
  ['/api/user-1/tasks/./abc', '/tasks/abc'],
  ['/api/tasks?x=1&y=%2e%2e%2f', '/tasks?x=1&y=%2e%2e%2f']
]

for (const [target, expected] of NORMALIZED) {
  t.test(`${JSON.stringify(target)} is normalized and forwarded as ${expected}`, async (t) => {
    t.equal(await send(target), 200)
    t.same(up.received.map((r) => r.url), [expected])
  })
}

t.test('normalizePath on its own', async (t) => {
  t.same(normalizePath('/a//b/./c/../d'), ['a', 'b', 'd'])
  t.same(normalizePath('/../../a'), ['a'])
  t.same(normalizePath('/a%20b'), ['a b'])
  t.equal(normalizePath('/a%2fb'), undefined)
  t.equal(normalizePath('/a%00'), undefined)
  t.equal(normalizePath('/a\\b'), undefined)
  t.equal(normalizePath('a/b'), undefined)
  t.equal(normalizePath('/%E0%A4%A'), undefined)
})

t.test('authorize on its own: route table, methods, compat user check', async (t) => {
  const me = { sub: 'me' }
  t.same(authorize('GET', '/api/tasks?limit=2', me), { kind: 'collection', upstreamPath: '/tasks', query: 'limit=2', publicPrefix: '/api' })
  t.same(authorize('PATCH', '/api/me/tasks/1/complete', me), { kind: 'complete', upstreamPath: '/tasks/1/complete', query: '', publicPrefix: '/api/me' })
  t.match(authorize('GET', '/api/you/tasks', me), { status: 403, code: 'forbidden_user' })
  t.match(authorize('GET', '/api/you/other', me), { status: 404 }, '404 comes before 403')
  t.match(authorize('POST', '/api/tasks/1', me), { status: 405, allow: 'GET, HEAD, PUT, PATCH, DELETE' })
  t.match(authorize('POST', '/api/you/tasks/1', me), { status: 405 }, '405 comes before 403')
  t.match(authorize('GET', '/api/tasks?\u00ff', me), { status: 400 })
  const r = authorize('GET', '/api/tasks/x/%2e%2e', me)
  t.ok(!isRejection(r) && r.upstreamPath === '/tasks', '/api/tasks/x/%2e%2e is the collection')
  t.match(authorize('GET', '/api/tasks/%2e%2e', me), { status: 404 }, '/api/tasks/%2e%2e is /api')
  const id = authorize('DELETE', '/api/tasks/a%20b', me)
  t.ok(!isRejection(id) && id.upstreamPath === '/tasks/a%20b')
})

t.test('an id beginning with ".." (after decoding) → 404 not_found, never forwarded (never a valid task id)', async (t) => {
  for (const target of ['/api/tasks/..foo', '/api/tasks/%2E%2Efoo', '/api/tasks/.%2e.', '/api/tasks/...', '/api/tasks/..foo/complete', '/api/user-1/tasks/..x']) {
    const method = target.endsWith('/complete') ? 'PATCH' : 'GET'
    const r = await rawHttp(gw.port, req(method, target, [['Authorization', `Bearer ${token}`]]))
    t.equal(r.status, 404, target)
    t.match(JSON.parse(r.body), { error: { code: 'not_found' } }, target)
  }
  t.equal(up.received.length, 0, 'the task service received nothing')
  t.match(authorize('DELETE', '/api/tasks/..a', { sub: 'me' }), { status: 404, code: 'not_found' }, 'on its own, before 405')
  t.match(authorize('POST', '/api/tasks/..a', { sub: 'me' }), { status: 404 })
  t.equal(await send('/api/tasks/foo..'), 200, 'dots elsewhere in an id are ordinary')
  t.equal(await send('/api/tasks/.foo'), 200, 'one leading dot is ordinary')
  t.same(up.received.map((r) => r.url), ['/tasks/foo..', '/tasks/.foo'])
})

t.test('malformed percent-encoding (FST_ERR_BAD_URL): the gateway\'s own JSON, no echo, security headers, 401 before 404, one log line', async (t) => {
  const sig = token.split('.')[2] as string
  const noToken = await rawHttp(gw.port, req('GET', `/api/tasks/${token}%zz?x`, []))
  t.equal(noToken.status, 401, 'no token → 401 (authentication first)')
  t.match(JSON.parse(noToken.body), { error: { code: 'missing_token' } })
  t.equal(noToken.headers['www-authenticate'], 'Bearer realm="api"')
  const badToken = await rawHttp(gw.port, req('GET', '/api/tasks/%zz', [['Authorization', 'Bearer not.a.token']]))
  t.equal(badToken.status, 401)
  const valid = await rawHttp(gw.port, req('GET', `/api/tasks/${token}%zz?x`, [['Authorization', `Bearer ${token}`], ['X-Request-Id', 'rid-bad-url']]))
  t.equal(valid.status, 404, 'valid token → 404 (a path that cannot be normalized is outside the route table)')
  t.match(JSON.parse(valid.body), { error: { code: 'not_found', requestId: 'rid-bad-url' } })
  for (const r of [noToken, badToken, valid]) {
    t.notOk(r.body.includes(sig) || r.body.includes('%zz'), 'the URL (and a token in it) is never echoed')
    t.equal(r.headers['x-content-type-options'], 'nosniff')
    t.equal(r.headers['cache-control'], 'no-store')
    t.equal(r.headers['x-frame-options'], 'DENY')
    t.equal(r.headers['referrer-policy'], 'no-referrer')
    t.ok(r.headers['x-request-id'], 'x-request-id set')
    t.match(r.headers['content-type'], /^application\/json/)
  }
  t.equal(valid.headers['x-request-id'], 'rid-bad-url')
  t.equal(up.received.length, 0, 'nothing forwarded')

  const lines: string[] = []
  const logged = await startGateway({ TASK_SERVICE_URL: up.url }, { t, logStream: { write: (l) => { lines.push(l) } } })
  await rawHttp(logged.port, req('GET', `/api/tasks/${token}%zz`, [['X-Request-Id', 'rid-log']]))
  const mine = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.reqId === 'rid-log')
  t.equal(mine.filter((l) => l.msg === 'request completed').length, 1, 'one completion line')
  t.match(mine.find((l) => l.msg === 'request completed'), { statusCode: 401 })
  t.notOk(lines.join('\n').includes(sig), 'the token in the URL is not logged')
})
