// The real gateway in front of the real task service, over real sockets: full CRUD through both public route
// styles, the task service's errors reaching the client unchanged, links rewritten to public paths, and
// isolation between users through the public endpoint. The task service runs on PGlite, or on PostgreSQL in
// a private schema when TEST_DATABASE_URL is set.
import t from 'tap'
import { BACKEND, identityHeaders } from '../task-service/test/helpers.js'
import { startStack } from '../support/stack.js'
import { mintDevToken, SECRET, signAssertion } from '../support/tokens.js'
import { errorCode } from '../task-service/test/error-schema.js'

interface Task { id: string, user_id: string, title: string, description: string | null, completed: boolean, created_at: string, updated_at: string }

t.test(`gateway + task service end to end (${BACKEND})`, async (t) => {
  // Load shedding is off (the starter's default): the gateway shares its event loop with the task service (and
  // PGlite) here, and a busy CI machine must not turn the exact statuses this test asserts into 503s.
  const { taskService, gateway } = await startStack(t)
  const base = gateway.url

  const tokens = new Map<string, string>()
  async function call (user: string | undefined, method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<{ status: number, body: unknown, headers: Headers, text: string }> {
    const headers: Record<string, string> = { ...extraHeaders }
    if (user) {
      if (!tokens.has(user)) tokens.set(user, await mintDevToken({ secret: SECRET, subject: user, ttlSeconds: 300 }))
      headers.authorization = `Bearer ${tokens.get(user)}`
    }
    let payload: string | undefined
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body)
      headers['content-type'] ??= 'application/json'
    }
    const response = await fetch(base + path, { method, headers, body: payload, signal: AbortSignal.timeout(10_000) })
    const text = await response.text()
    let parsed: unknown = null
    try { parsed = text ? JSON.parse(text) : null } catch { parsed = text }
    return { status: response.status, body: parsed, headers: response.headers, text }
  }

  const alice = 'user-alice@example.com'
  const bob = 'user-bob'

  for (const prefix of ['/api/tasks', `/api/${encodeURIComponent(alice)}/tasks`]) {
    t.test(`full CRUD through ${prefix}`, async (t) => {
      const created = await call(alice, 'POST', prefix, { title: '  Write the report  ', description: 'by Friday' })
      t.equal(created.status, 201)
      const task = created.body as Task
      t.equal(task.user_id, alice, "owned by the token's sub")
      t.equal(task.title, 'Write the report', 'trimmed by the task service')
      t.equal(created.headers.get('location'), `${prefix}/${task.id}`, 'Location names the public path the client used')

      const read = await call(alice, 'GET', `${prefix}/${task.id}`)
      t.equal(read.status, 200)
      t.same(read.body, task)

      const listed = await call(alice, 'GET', prefix)
      t.equal(listed.status, 200)
      t.ok((listed.body as Task[]).some((x) => x.id === task.id))

      const put = await call(alice, 'PUT', `${prefix}/${task.id}`, { title: 'Write the final report', description: null, completed: false })
      t.equal(put.status, 200)
      t.match(put.body, { id: task.id, title: 'Write the final report', description: null, completed: false })

      const patched = await call(alice, 'PATCH', `${prefix}/${task.id}`, { description: 'today' })
      t.equal(patched.status, 200)
      t.match(patched.body, { title: 'Write the final report', description: 'today' })

      const toggled = await call(alice, 'PATCH', `${prefix}/${task.id}/complete`)
      t.equal(toggled.status, 200)
      t.equal((toggled.body as Task).completed, true)
      const toggledBack = await call(alice, 'PATCH', `${prefix}/${task.id}/complete`)
      t.equal((toggledBack.body as Task).completed, false)

      const deleted = await call(alice, 'DELETE', `${prefix}/${task.id}`)
      t.equal(deleted.status, 204)
      t.equal(deleted.text, '')
      t.equal((await call(alice, 'GET', `${prefix}/${task.id}`)).status, 404)
      t.equal((await call(alice, 'DELETE', `${prefix}/${task.id}`)).status, 404)
    })
  }

  t.test("the task service's errors reach the client unchanged", async (t) => {
    const invalid = await call(alice, 'POST', '/api/tasks', { title: '   ' }, { 'x-request-id': 'e2e-invalid' })
    t.equal(invalid.status, 400)
    t.same(invalid.body, {
      error: { code: 'validation_error', message: 'title: must not be empty', requestId: 'e2e-invalid', details: [{ field: 'title', message: 'must not be empty' }] }
    }, 'the one error shape, with the request id the gateway forwarded')
    t.equal(invalid.headers.get('x-request-id'), 'e2e-invalid')
    const direct = await taskService.app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': alice, 'x-request-id': 'e2e-invalid' }, payload: { title: '   ' } })
    t.same(invalid.body, direct.json(), 'same body as the task service answers')

    const malformed = await call(alice, 'POST', '/api/tasks', '{"title":', {})
    t.equal(malformed.status, 400)
    t.equal(errorCode({ body: malformed.text }), 'invalid_json')

    const tooLarge = await call(alice, 'POST', '/api/tasks', { title: 'big', description: 'x'.repeat(70 * 1024) })
    t.equal(tooLarge.status, 413)
    t.equal(errorCode({ body: tooLarge.text }), 'payload_too_large')

    const missing = await call(alice, 'GET', '/api/tasks/does-not-exist')
    t.equal(missing.status, 404)
    t.equal(errorCode({ body: missing.text }), 'task_not_found')
    t.notMatch(missing.text, /127\.0\.0\.1|localhost|:\d{4,5}\b/, 'nothing reveals the task service address')
  })

  t.test('users are isolated through the public endpoint', async (t) => {
    const secret = (await call(alice, 'POST', '/api/tasks', { title: "alice's secret" })).body as Task
    const bobList = await call(bob, 'GET', '/api/tasks')
    t.equal(bobList.status, 200)
    t.notOk((bobList.body as Task[]).some((x) => x.user_id !== bob), 'bob sees only his own tasks')
    for (const [method, path, body] of [
      ['GET', `/api/tasks/${secret.id}`],
      ['PUT', `/api/tasks/${secret.id}`, { title: 'hijacked', description: null, completed: true }],
      ['PATCH', `/api/tasks/${secret.id}`, { title: 'hijacked' }],
      ['PATCH', `/api/tasks/${secret.id}/complete`],
      ['DELETE', `/api/tasks/${secret.id}`]
    ] as const) {
      t.equal((await call(bob, method, path, body)).status, 404, `bob ${method} ${path} → 404`)
    }
    const forbidden = await call(bob, 'GET', `/api/${encodeURIComponent(alice)}/tasks`)
    t.equal(forbidden.status, 403, "bob on alice's /api/{user_id}/tasks → 403")
    const spoofed = await call(bob, 'GET', `/api/tasks/${secret.id}`, undefined, { 'x-user-id': alice, X_User_Id: alice })
    t.equal(spoofed.status, 404, 'a spoofed X-User-Id changes nothing')
    const ownerBody = await call(bob, 'POST', '/api/tasks', { title: 'mine', user_id: alice })
    t.not((ownerBody.body as Task).user_id, alice, 'user_id in a body never changes ownership')

    const still = await call(alice, 'GET', `/api/tasks/${secret.id}`)
    t.same(still.body, secret, "alice's task is untouched")
    t.equal((await call(undefined, 'GET', '/api/tasks')).status, 401, 'no token → 401')
  })

  t.test('pagination links come back as public paths', async (t) => {
    const carol = 'user-carol'
    for (let i = 0; i < 3; i++) t.equal((await call(carol, 'POST', '/api/tasks', { title: `task ${i}` })).status, 201)
    for (const prefix of ['/api/tasks', `/api/${carol}/tasks`]) {
      const first = await call(carol, 'GET', `${prefix}?limit=2`)
      t.equal((first.body as Task[]).length, 2)
      const link = first.headers.get('link') ?? ''
      const next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1]
      t.ok(next, `a next link on ${prefix}`)
      const nextPath = new URL(next!, base).pathname
      t.equal(nextPath, prefix, `the next link names ${prefix}`)
      const second = await call(carol, 'GET', next!.startsWith('http') ? new URL(next!).pathname + new URL(next!).search : next!)
      t.equal(second.status, 200)
      t.equal((second.body as Task[]).length, 1, 'the rest on the next page')
      const ids = new Set([...(first.body as Task[]), ...(second.body as Task[])].map((x) => x.id))
      t.equal(ids.size, 3, 'no task twice, none lost')
    }
  })
  t.test('zero trust: the task service, reached directly, believes no X-User-Id without the gateway’s signature', async (t) => {
    const victim = 'user-victim'
    const planted = await call(victim, 'POST', '/api/tasks', { title: 'the victim’s own task' })
    t.equal(planted.status, 201, 'through the gateway, as before')
    const direct = (headers: Record<string, string>, init: RequestInit = {}): Promise<Response> =>
      fetch(taskService.url + '/tasks', { ...init, headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(10_000) })
    const attacker = { 'x-user-id': victim }
    const listed = await direct(attacker)
    t.equal(listed.status, 401, 'X-User-Id alone: 401')
    t.notMatch(await listed.text(), /the victim/, 'nothing of the victim’s leaks')
    t.equal((await direct(attacker, { method: 'POST', body: JSON.stringify({ title: 'planted' }) })).status, 401, 'nothing can be planted')
    const forgedKey = (await import('node:crypto')).generateKeyPairSync('ed25519').privateKey
    t.equal((await direct({ ...attacker, 'x-gateway-assertion': await signAssertion(victim, { key: forgedKey }) })).status, 401, 'an assertion signed by another key: 401')
    const mallorys = (await identityHeaders('user-mallory'))['x-gateway-assertion'] as string
    t.equal((await direct({ ...attacker, 'x-gateway-assertion': mallorys })).status, 401, 'a genuine assertion for another user: 401')
    const own = await direct(await identityHeaders(victim))
    t.equal(own.status, 200, 'with the gateway’s signature: served')
    const rebound = await fetch(taskService.url + '/healthz', { headers: { host: 'rebind.attacker.example' } })
    t.equal(rebound.status, 200, '/healthz answers any Host')
    const list = await call(victim, 'GET', '/api/tasks')
    t.same((list.body as Task[]).map((x) => x.title), ['the victim’s own task'], 'the victim sees only their own task')
  })
})
