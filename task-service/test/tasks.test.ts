// Contract tests: every route, status code, header and error shape, through inject().
import t from 'tap'
import { assertError, errorCode } from './error-schema.js'
import { buildTestApp, createTask, newUser, nextMillisecond, type TaskJson } from './helpers.js'

const app = await buildTestApp(t)
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
t.test('POST /tasks → 201 with Location and the task', async (t) => {
  const user = newUser()
  const res = await app.inject({
    method: 'POST',
    url: '/tasks',
    headers: { 'x-user-id': user },
    payload: { title: '  Buy milk  ', description: 'two litres' }
  })
  t.equal(res.statusCode, 201)
  const task = res.json<TaskJson>()
  t.match(task.id, UUID)
  t.equal(res.headers.location, `/tasks/${task.id}`)
  t.same(Object.keys(task).sort(), ['completed', 'created_at', 'description', 'id', 'title', 'updated_at', 'user_id'])
  t.equal(task.user_id, user)
  t.equal(task.title, 'Buy milk', 'title is trimmed')
  t.equal(task.description, 'two litres')
  t.equal(task.completed, false)
  t.match(task.created_at, RFC3339)
  t.match(task.updated_at, RFC3339)
  t.equal(task.created_at, task.updated_at)
})

t.test('POST /tasks defaults: description null, completed false; completed may be set', async (t) => {
  const user = newUser()
  const plain = await createTask(app, user, { title: 'x' })
  t.equal(plain.description, null)
  t.equal(plain.completed, false)
  const done = await createTask(app, user, { title: 'y', description: null, completed: true })
  t.equal(done.completed, true)
  t.equal(done.description, null)
})

t.test('GET /tasks → 200 bare array of the caller’s tasks', async (t) => {
  const user = newUser()
  const empty = await app.inject({ url: '/tasks', headers: { 'x-user-id': user } })
  t.equal(empty.statusCode, 200)
  t.same(empty.json(), [])
  t.notOk(empty.headers.link, 'no Link header when there is no next page')
  const a = await createTask(app, user, { title: 'a' })
  await nextMillisecond()
  const b = await createTask(app, user, { title: 'b', completed: true })
  const res = await app.inject({ url: '/tasks', headers: { 'x-user-id': user } })
  t.equal(res.statusCode, 200)
  const list = res.json<TaskJson[]>()
  t.ok(Array.isArray(list))
  t.same(list.map((x) => x.id), [a.id, b.id], 'default order: created ascending')
})

t.test('GET /tasks?status filters', async (t) => {
  const user = newUser()
  const open = await createTask(app, user, { title: 'open' })
  await nextMillisecond()
  const done = await createTask(app, user, { title: 'done', completed: true })
  const get = async (status: string): Promise<string[]> =>
    (await app.inject({ url: `/tasks?status=${status}`, headers: { 'x-user-id': user } })).json<TaskJson[]>().map((x) => x.id)
  t.same(await get('all'), [open.id, done.id])
  t.same(await get('pending'), [open.id])
  t.same(await get('completed'), [done.id])
  const bad = await app.inject({ url: '/tasks?status=done', headers: { 'x-user-id': user } })
  assertError(t, bad, 400, 'validation_error')
})

t.test('GET /tasks/:id → 200, or 404 task_not_found', async (t) => {
  const user = newUser()
  const task = await createTask(app, user)
  const res = await app.inject({ url: `/tasks/${task.id}`, headers: { 'x-user-id': user } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), task)
  const upper = await app.inject({ url: `/tasks/${task.id.toUpperCase()}`, headers: { 'x-user-id': user } })
  t.equal(upper.statusCode, 200, 'ids are case-insensitive UUIDs')
  const missing = await app.inject({ url: '/tasks/00000000-0000-4000-8000-000000000000', headers: { 'x-user-id': user } })
  assertError(t, missing, 404, 'task_not_found')
})

t.test('malformed ids → 404, never 400 or 500, on every :id route', async (t) => {
  const user = newUser()
  const ids = ['abc', '1', '0', '-1', "1'%20OR%20'1'='1", '%00', '%E2%9C%93', 'x'.repeat(90), '00000000-0000-0000-0000-00000000000g', '00000000000000000000000000000000', '%7B%7D']
  for (const id of ids) {
    for (const [method, url, payload] of [
      ['GET', `/tasks/${id}`, undefined],
      ['PUT', `/tasks/${id}`, { title: 'x' }],
      ['PATCH', `/tasks/${id}`, { title: 'x' }],
      ['PATCH', `/tasks/${id}/complete`, undefined],
      ['DELETE', `/tasks/${id}`, undefined]
    ] as const) {
      const res = await app.inject({ method, url, headers: { 'x-user-id': user }, ...(payload ? { payload } : {}) })
      t.equal(res.statusCode, 404, `${method} ${url}`)
      t.equal(errorCode(res), 'task_not_found', `${method} ${url} code`)
    }
  }
})

t.test('PUT /tasks/:id replaces the whole record', async (t) => {
  const user = newUser()
  const task = await createTask(app, user, { title: 'old', description: 'desc', completed: true })
  await new Promise((resolve) => setTimeout(resolve, 5))
  const res = await app.inject({
    method: 'PUT',
    url: `/tasks/${task.id}`,
    headers: { 'x-user-id': user },
    payload: { title: 'new' }
  })
  t.equal(res.statusCode, 200)
  const updated = res.json<TaskJson>()
  t.equal(updated.id, task.id)
  t.equal(updated.title, 'new')
  t.equal(updated.description, null, 'omitted description resets to null')
  t.equal(updated.completed, false, 'omitted completed resets to false')
  t.equal(updated.created_at, task.created_at)
  t.ok(updated.updated_at > task.updated_at, 'updated_at moves forward')
  const full = await app.inject({
    method: 'PUT',
    url: `/tasks/${task.id}`,
    headers: { 'x-user-id': user },
    payload: { title: 'full', description: 'd', completed: true }
  })
  t.match(full.json(), { title: 'full', description: 'd', completed: true })
  const noTitle = await app.inject({ method: 'PUT', url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload: { description: 'x' } })
  assertError(t, noTitle, 400, 'validation_error')
  const missing = await app.inject({
    method: 'PUT',
    url: '/tasks/00000000-0000-4000-8000-000000000000',
    headers: { 'x-user-id': user },
    payload: { title: 'x' }
  })
  assertError(t, missing, 404, 'task_not_found')
})

t.test('PATCH /tasks/:id changes only the given fields', async (t) => {
  const user = newUser()
  const task = await createTask(app, user, { title: 'keep', description: 'keep too' })
  const res = await app.inject({ method: 'PATCH', url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload: { completed: true } })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { id: task.id, title: 'keep', description: 'keep too', completed: true })
  const cleared = await app.inject({ method: 'PATCH', url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload: { description: null } })
  t.match(cleared.json(), { title: 'keep', description: null, completed: true })
  const renamed = await app.inject({ method: 'PATCH', url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload: { title: ' renamed ' } })
  t.match(renamed.json(), { title: 'renamed', description: null, completed: true })
  const empty = await app.inject({ method: 'PATCH', url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload: {} })
  assertError(t, empty, 400, 'validation_error')
  const missing = await app.inject({
    method: 'PATCH',
    url: '/tasks/00000000-0000-4000-8000-000000000000',
    headers: { 'x-user-id': user },
    payload: { completed: true }
  })
  assertError(t, missing, 404, 'task_not_found')
})

t.test('PATCH /tasks/:id/complete toggles completed', async (t) => {
  const user = newUser()
  const task = await createTask(app, user)
  const first = await app.inject({ method: 'PATCH', url: `/tasks/${task.id}/complete`, headers: { 'x-user-id': user } })
  t.equal(first.statusCode, 200)
  t.equal(first.json<TaskJson>().completed, true)
  // Sent with a JSON content type and an empty body, as many HTTP clients do: still fine.
  const second = await app.inject({
    method: 'PATCH',
    url: `/tasks/${task.id}/complete`,
    headers: { 'x-user-id': user, 'content-type': 'application/json' }
  })
  t.equal(second.statusCode, 200)
  t.equal(second.json<TaskJson>().completed, false)
  const missing = await app.inject({
    method: 'PATCH',
    url: '/tasks/00000000-0000-4000-8000-000000000000/complete',
    headers: { 'x-user-id': user }
  })
  assertError(t, missing, 404, 'task_not_found')
})

t.test('concurrent toggles are atomic', async (t) => {
  const user = newUser()
  const task = await createTask(app, user)
  const results = await Promise.all(
    Array.from({ length: 10 }, () => app.inject({ method: 'PATCH', url: `/tasks/${task.id}/complete`, headers: { 'x-user-id': user } }))
  )
  t.ok(results.every((r) => r.statusCode === 200))
  const final = await app.inject({ url: `/tasks/${task.id}`, headers: { 'x-user-id': user } })
  t.equal(final.json<TaskJson>().completed, false, 'an even number of toggles ends where it started')
  t.equal(results.filter((r) => r.json<TaskJson>().completed).length, 5, 'each toggle saw the previous one')
})

t.test('DELETE /tasks/:id → 204 with no body, then 404', async (t) => {
  const user = newUser()
  const task = await createTask(app, user)
  const res = await app.inject({ method: 'DELETE', url: `/tasks/${task.id}`, headers: { 'x-user-id': user } })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  const again = await app.inject({ method: 'DELETE', url: `/tasks/${task.id}`, headers: { 'x-user-id': user } })
  assertError(t, again, 404, 'task_not_found')
  const read = await app.inject({ url: `/tasks/${task.id}`, headers: { 'x-user-id': user } })
  assertError(t, read, 404, 'task_not_found')
})

t.test('X-User-Id missing, empty, too long or with control characters → 401 on every /tasks route', async (t) => {
  const user = newUser()
  const task = await createTask(app, user)
  const routes = [
    ['GET', '/tasks'],
    ['POST', '/tasks'],
    ['GET', `/tasks/${task.id}`],
    ['PUT', `/tasks/${task.id}`],
    ['PATCH', `/tasks/${task.id}`],
    ['PATCH', `/tasks/${task.id}/complete`],
    ['DELETE', `/tasks/${task.id}`]
  ] as const
  const cases: [string, Record<string, string>, string][] = [
    ['missing', {}, 'missing_user_id'],
    ['empty', { 'x-user-id': '' }, 'missing_user_id'],
    ['blank', { 'x-user-id': '   ' }, 'missing_user_id'],
    ['256 characters', { 'x-user-id': 'u'.repeat(256) }, 'invalid_user_id'],
    ['tab', { 'x-user-id': 'a\tb' }, 'invalid_user_id'],
    ['DEL', { 'x-user-id': 'a\u007fb' }, 'invalid_user_id'],
    ['C1 control U+0085', { 'x-user-id': 'a\u0085b' }, 'invalid_user_id'],
    ['invalid UTF-8 bytes', { 'x-user-id': 'a\u00ffb' }, 'invalid_user_id']
  ]
  for (const [label, headers, code] of cases) {
    for (const [method, url] of routes) {
      const res = await app.inject({ method, url, headers, payload: method === 'POST' || method === 'PUT' ? { title: 'x' } : undefined })
      assertError(t, res, 401, code, `${label}: ${method} ${url}`)
    }
  }
  // Nothing was written or changed by any of those requests.
  const list = await app.inject({ url: '/tasks', headers: { 'x-user-id': user } })
  t.same(list.json(), [task])
})

t.test('X-User-Id of exactly 255 characters, and UTF-8, are accepted', async (t) => {
  const long = 'u'.repeat(255)
  const res = await app.inject({ url: '/tasks', headers: { 'x-user-id': long } })
  t.equal(res.statusCode, 200)
  // As it arrives over HTTP: UTF-8 bytes, which Node exposes as latin1 characters.
  const latin1 = Buffer.from('josé-✓', 'utf8').toString('latin1')
  const created = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': latin1 }, payload: { title: 'x' } })
  t.equal(created.statusCode, 201)
  t.equal(created.json<TaskJson>().user_id, 'josé-✓')
})

t.test('X-User-Id sent twice → 401', async (t) => {
  const res = await app.inject({ url: '/tasks', headers: { 'x-user-id': ['a', 'b'] } })
  assertError(t, res, 401, 'invalid_user_id')
})

t.test('401 before the body is read: malformed JSON without identity is a 401', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/tasks', headers: { 'content-type': 'application/json' }, payload: '{nope' })
  assertError(t, res, 401, 'missing_user_id')
})

t.test('malformed JSON → 400 invalid_json', async (t) => {
  const user = newUser()
  for (const payload of ['{', '{"title": "x",}', "{'title': 'x'}", 'nul', '{"title": "x"} trailing']) {
    const res = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': user, 'content-type': 'application/json' }, payload })
    assertError(t, res, 400, 'invalid_json')
  }
  const poisoned = await app.inject({
    method: 'POST',
    url: '/tasks',
    headers: { 'x-user-id': user, 'content-type': 'application/json' },
    payload: '{"title": "x", "__proto__": {"admin": true}}'
  })
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is refused')
})

t.test('body over 64 KiB → 413 payload_too_large; just under is judged on content', async (t) => {
  const user = newUser()
  const big = JSON.stringify({ title: 'x', description: 'd'.repeat(70 * 1024) })
  const res = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': user, 'content-type': 'application/json' }, payload: big })
  assertError(t, res, 413, 'payload_too_large')
  const edge = JSON.stringify({ title: 'x', description: 'd'.repeat(64 * 1024 - 40) })
  t.ok(Buffer.byteLength(edge) <= 64 * 1024)
  const under = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': user, 'content-type': 'application/json' }, payload: edge })
  assertError(t, under, 400, 'validation_error')
})

t.test('non-JSON body → 415 unsupported_media_type', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: '/tasks',
    headers: { 'x-user-id': newUser(), 'content-type': 'text/plain' },
    payload: 'title=x'
  })
  assertError(t, res, 415, 'unsupported_media_type')
})

t.test('POST without a body → 400', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': newUser() } })
  assertError(t, res, 400, 'validation_error')
})

t.test('unknown routes and methods → 404 route_not_found JSON', async (t) => {
  for (const [method, url] of [
    ['GET', '/nope'],
    ['GET', '/tasks/a/b/c'],
    ['POST', '/tasks/00000000-0000-4000-8000-000000000000'],
    ['GET', '/api/tasks']
  ] as const) {
    const res = await app.inject({ method, url, headers: { 'x-user-id': 'u' } })
    assertError(t, res, 404, 'route_not_found')
    t.notMatch(res.body, url, 'the path is not echoed')
  }
})

t.test('X-Request-Id: a well-formed one is kept, else one is generated', async (t) => {
  const kept = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'req-123.abc' } })
  t.equal(kept.headers['x-request-id'], 'req-123.abc')
  const replaced = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id <script>' } })
  t.match(String(replaced.headers['x-request-id']), UUID)
})

t.test('GET /healthz and /readyz → 200', async (t) => {
  const health = await app.inject({ url: '/healthz' })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('GET /openapi.json describes every route', async (t) => {
  const res = await app.inject({ url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>()
  t.match(doc.openapi, /^3\./)
  t.same(Object.keys(doc.paths['/tasks'] ?? {}).sort(), ['get', 'post'])
  t.same(Object.keys(doc.paths['/tasks/{id}'] ?? {}).sort(), ['delete', 'get', 'patch', 'put'])
  t.same(Object.keys(doc.paths['/tasks/{id}/complete'] ?? {}), ['patch'])
  t.ok(doc.paths['/healthz']?.get)
  t.ok(doc.paths['/readyz']?.get)
  t.ok(doc.paths['/tasks']?.post?.responses['201'], 'documents 201')
  t.ok(doc.paths['/tasks/{id}']?.get?.responses['404'], 'documents 404')
  t.notOk(doc.paths['/openapi.json'], 'the document itself is hidden')
})
