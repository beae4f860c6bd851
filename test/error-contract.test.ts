// One error contract for clients, checked end to end:
//  - both OpenAPI documents (the gateway's /openapi.json and the task service's) are valid OpenAPI 3.1
//    (@seriousme/openapi-schema-validator) and carry the same, single Error schema;
//  - every error path of both services is driven — each status each can produce, through inject and through the
//    real stack where the wire matters — and every body is validated against that Error schema (ajv), its
//    requestId is the response's X-Request-Id, and its (operation, status) is declared in the document.
import { once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { request } from 'undici'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { Validator } from '@seriousme/openapi-schema-validator'
import { openapiDocument } from '../gateway/src/openapi.js'
import type { Database, Queryable, QueryResult } from '../task-service/src/db.js'
import { assertionFor, buildTestApp, createTask, newUser, openTestDatabase } from '../task-service/test/helpers.js'
import { mintDevToken, SECRET, signHs } from '../support/tokens.js'
import { startGateway as startTestGateway } from '../support/gateway.js'
import { startTaskService } from '../support/task-service.js'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]
interface Operation { responses: Record<string, unknown> }
interface OpenApiDoc {
  openapi: string
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Record<string, unknown>>, responses?: Record<string, Record<string, unknown>> }
}

const MISSING = '00000000-0000-4000-8000-000000000000'

/** A database that can be made to fail like an outage (→ 503) or like a bug (→ 500). */
class ControlledDatabase implements Database {
  mode: 'up' | 'down' | 'bug' = 'up'
  constructor (private readonly inner: Database) {}
  get kind (): Database['kind'] { return this.inner.kind }
  private gate (): void {
    if (this.mode === 'down') throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    if (this.mode === 'bug') throw new TypeError('a bug')
  }

  async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> { this.gate(); return await this.inner.query<R>(text, params) }
  async exec (sql: string): Promise<void> { this.gate(); await this.inner.exec(sql) }
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> { this.gate(); return await this.inner.transaction(fn) }
  async close (): Promise<void> { await this.inner.close() }
}

const port = (app: FastifyInstance): number => (app.server.address() as AddressInfo).port

/** Everything observed, per service: status → codes. */
const seen: Record<'task-service' | 'gateway', Map<number, Set<string>>> = { 'task-service': new Map(), gateway: new Map() }

/**
 * Checks one error answer: the body validates against the document's Error schema, requestId = X-Request-Id
 * (when the answer has one), the expected status and code, and the status is declared for the operation.
 */
function makeChecker (doc: OpenApiDoc, service: 'task-service' | 'gateway') {
  const ajv = new Ajv2020({ allErrors: true, strict: false })
  const validate = ajv.compile(doc.components.schemas.Error as object)
  return (t: Test, what: string, res: { status: number, body: string, requestId?: string }, want: { status: number, code: string, op?: string }): { error: { code: string, message: string, requestId: string, details?: Array<{ field: string, message: string }> } } | undefined => {
    t.equal(res.status, want.status, `${what}: status ${want.status}`)
    let body: unknown
    try { body = JSON.parse(res.body) } catch { t.fail(`${what}: body is not JSON: ${res.body.slice(0, 200)}`); return undefined }
    if (!t.ok(validate(body), `${what}: body matches the Error schema`)) t.comment(ajv.errorsText(validate.errors), res.body)
    const e = (body as { error: { code: string, message: string, requestId: string } }).error
    t.equal(e?.code, want.code, `${what}: code ${want.code}`)
    if (res.requestId !== undefined) t.equal(e?.requestId, res.requestId, `${what}: requestId is the X-Request-Id`)
    t.notMatch(res.body, /at .*\.(ts|js):\d+|SELECT |INSERT |ECONNREFUSED|127\.0\.0\.1|stack/i, `${what}: nothing internal`)
    const codes = seen[service].get(res.status) ?? new Set()
    codes.add(e?.code)
    seen[service].set(res.status, codes)
    if (want.op !== undefined) {
      const [method, path] = want.op.split(' ') as [string, string]
      const op = doc.paths[path]?.[method.toLowerCase()]
      t.ok(op?.responses[String(res.status)] !== undefined, `${service} OpenAPI: ${want.op} declares ${res.status}`)
    }
    return body as ReturnType<ReturnType<typeof makeChecker>>
  }
}

/** Resolves a response or schema $ref inside the document. */
function deref (doc: OpenApiDoc, value: unknown): Record<string, unknown> {
  let v = value as Record<string, unknown>
  while (typeof v?.$ref === 'string') {
    const parts = (v.$ref).replace(/^#\//, '').split('/')
    v = parts.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], doc) as Record<string, unknown>
  }
  return v
}

/** Every error response of every operation points at the one Error schema (or a oneOf that includes it). */
function checkDocument (t: Test, doc: OpenApiDoc, name: string): void {
  t.same(Object.keys(doc.components.schemas).filter((k) => /error/i.test(k)), ['Error'], `${name}: exactly one error schema`)
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      for (const [status, r] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue
        const schema = (deref(doc, r).content as Record<string, { schema: Record<string, unknown> }> | undefined)?.['application/json']?.schema
        const refs = schema?.oneOf !== undefined ? (schema.oneOf as Array<{ $ref: string }>).map((s) => s.$ref) : [schema?.$ref]
        t.ok(refs.includes('#/components/schemas/Error'), `${name}: ${method.toUpperCase()} ${path} ${status} uses the Error schema`)
      }
      const body = op as { requestBody?: { content: Record<string, { schema: unknown }> } }
      if (body.requestBody !== undefined) {
        const schema = deref(doc, body.requestBody.content['application/json']?.schema)
        t.equal(schema.additionalProperties, false, `${name}: ${method.toUpperCase()} ${path} body: additionalProperties false`)
        if (method === 'post' || method === 'put') t.same(schema.required, ['title'], `${name}: ${method.toUpperCase()} ${path} body: title required`)
        else t.equal(schema.minProperties, 1, `${name}: ${method.toUpperCase()} ${path} body: at least one field`)
      }
    }
  }
}

/** Reads raw HTTP/1.1 responses (Content-Length framed) from a socket until it closes. */
function readResponses (socket: net.Socket): Promise<Array<{ status: number, headers: Record<string, string>, body: string }>> {
  return new Promise((resolve) => {
    let buf = ''
    socket.setEncoding('latin1')
    socket.on('data', (c: string) => { buf += c })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      const out: Array<{ status: number, headers: Record<string, string>, body: string }> = []
      while (buf.length > 0) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) break
        const lines = buf.slice(0, end).split('\r\n')
        const headers: Record<string, string> = {}
        for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
        const len = Number(headers['content-length'] ?? 0)
        out.push({ status: Number(lines[0]?.split(' ')[1]), headers, body: Buffer.from(buf.slice(end + 4, end + 4 + len), 'latin1').toString('utf8') })
        buf = buf.slice(end + 4 + len)
      }
      resolve(out)
    })
  })
}

/** Sends raw bytes and collects every response until the server closes the connection. */
async function raw (portNumber: number, data: string): Promise<Array<{ status: number, headers: Record<string, string>, body: string }>> {
  const socket = net.connect(portNumber, '127.0.0.1')
  const responses = readResponses(socket)
  socket.end(data)
  return await responses
}

/**
 * A request that arrives while the app is closing, on a connection that was already open: request A is sent
 * with half its body, the app starts closing, then A's body is finished and B is pipelined behind it. A is
 * answered normally; B gets the closing answer.
 */
async function duringClose (app: FastifyInstance, arrived: Promise<unknown>, head: string, rest: string, second: string): Promise<Array<{ status: number, headers: Record<string, string>, body: string }>> {
  const socket = net.connect(port(app), '127.0.0.1')
  const responses = readResponses(socket)
  socket.write(head)
  await arrived
  const closed = app.close()
  // server.close() is called once the preClose hooks have run.
  while (app.server.listening) await new Promise((resolve) => setImmediate(resolve))
  // write, not end: a client that half-closes its side is a client that left (the gateway aborts its request).
  // The server closes the connection after the closing answer.
  socket.write(rest + second)
  const out = await responses
  await closed
  return out
}

const validator = new Validator()

t.test('task service: every error path answers in the one shape', async (t) => {
  const db = new ControlledDatabase(await openTestDatabase(t))
  const app = await buildTestApp(t, { db })
  const doc = (await app.inject({ url: '/openapi.json' })).json<OpenApiDoc>()
  const check = makeChecker(doc, 'task-service')

  t.test('the OpenAPI document is valid OpenAPI 3.1 with one Error schema', async (t) => {
    const result = await validator.validate(structuredClone(doc) as never)
    if (!t.ok(result.valid, 'valid')) t.comment(JSON.stringify(result.errors, null, 2).slice(0, 4000))
    t.equal(validator.version, '3.1')
    checkDocument(t, doc, 'task service')
  })

  const user = newUser()
  const task = await createTask(app, user)
  const inject = async (method: string, url: string, opts: { headers?: Record<string, string | string[]>, payload?: string | object } = {}): Promise<{ status: number, body: string, requestId: string }> => {
    const res = await app.inject({ method: method as 'GET', url, headers: { 'x-user-id': user, ...opts.headers }, ...(opts.payload !== undefined ? { payload: opts.payload } : {}) })
    return { status: res.statusCode, body: res.body, requestId: String(res.headers['x-request-id']) }
  }
  const json = { 'content-type': 'application/json' }
  const ops = [
    ['GET', '/tasks', '/tasks'],
    ['POST', '/tasks', '/tasks'],
    ['GET', `/tasks/${task.id}`, '/tasks/{id}'],
    ['PUT', `/tasks/${task.id}`, '/tasks/{id}'],
    ['PATCH', `/tasks/${task.id}`, '/tasks/{id}'],
    ['PATCH', `/tasks/${task.id}/complete`, '/tasks/{id}/complete'],
    ['DELETE', `/tasks/${task.id}`, '/tasks/{id}']
  ] as const
  const validBody = (method: string): object | undefined => method === 'POST' || method === 'PUT' ? { title: 'ok' } : method === 'PATCH' ? { title: 'ok' } : undefined

  t.test('every route: 400, 401, 404, 413, 415, 421, 500, 503', async (t) => {
    for (const [method, url, template] of ops) {
      const op = `${method} ${template}`
      const payload = url.endsWith('/complete') ? undefined : validBody(method)
      check(t, `${op} no X-User-Id`, await inject(method, url, { headers: { 'x-user-id': '' }, payload }), { status: 401, code: 'missing_user_id', op })
      check(t, `${op} X-User-Id with a tab`, await inject(method, url, { headers: { 'x-user-id': 'a\tb' }, payload }), { status: 401, code: 'invalid_user_id', op })
      check(t, `${op} X-User-Id twice`, await inject(method, url, { headers: { 'x-user-id': ['a', 'b'] }, payload }), { status: 401, code: 'invalid_user_id', op })
      check(t, `${op} ?user_id=`, await inject(method, `${url}?user_id=${user}`, { payload }), { status: 400, code: 'user_id_not_allowed', op })
      check(t, `${op} foreign Host`, await inject(method, url, { headers: { host: 'rebound.example' }, payload }), { status: 421, code: 'misdirected_request', op })
      if (template !== '/tasks') {
        check(t, `${op} missing task`, await inject(method, url.replace(task.id, MISSING), { payload }), { status: 404, code: 'task_not_found', op })
        check(t, `${op} malformed id`, await inject(method, url.replace(task.id, 'not-a-uuid'), { payload }), { status: 404, code: 'task_not_found', op })
        check(t, `${op} another user's task`, await inject(method, url, { headers: { 'x-user-id': newUser() }, payload }), { status: 404, code: 'task_not_found', op })
      }
      if (method !== 'GET') {
        check(t, `${op} text/plain body`, await inject(method, url, { headers: { 'content-type': 'text/plain' }, payload: 'title=x' }), { status: 415, code: 'unsupported_media_type', op })
        check(t, `${op} malformed JSON`, await inject(method, url, { headers: json, payload: '{"title":' }), { status: 400, code: 'invalid_json', op })
        check(t, `${op} 70 KiB body`, await inject(method, url, { headers: json, payload: JSON.stringify({ title: 'x', description: 'd'.repeat(70 * 1024) }) }), { status: 413, code: 'payload_too_large', op })
      }
      db.mode = 'down'
      check(t, `${op} database down`, await inject(method, url, { payload }), { status: 503, code: 'database_unavailable', op })
      db.mode = 'bug'
      check(t, `${op} a bug`, await inject(method, url, { payload }), { status: 500, code: 'internal_error', op })
      db.mode = 'up'
    }
    db.mode = 'down'
    check(t, '/readyz database down', await inject('GET', '/readyz'), { status: 503, code: 'database_unavailable', op: 'GET /readyz' })
    db.mode = 'up'
    check(t, 'Content-Length that does not match', await inject('POST', '/tasks', { headers: { ...json, 'content-length': '3' }, payload: '{"title":"x"}' }), { status: 400, code: 'invalid_content_length', op: 'POST /tasks' })
  })

  t.test('validation errors name the field and say why, in words', async (t) => {
    const cases: Array<[string, string, object | string, string, Array<[string, string]>]> = [
      ['POST', '/tasks', { title: 'x'.repeat(201) }, '/tasks', [['title', 'must be at most 200 characters']]],
      ['POST', '/tasks', { title: '   ' }, '/tasks', [['title', 'must not be empty']]],
      ['POST', '/tasks', {}, '/tasks', [['title', 'is required']]],
      ['POST', '/tasks', { title: 'x', colour: 'red' }, '/tasks', [['colour', 'unknown field']]],
      ['POST', '/tasks', { title: 'x', completed: 'yes' }, '/tasks', [['completed', 'must be true or false']]],
      ['POST', '/tasks', { title: 'x', description: 5 }, '/tasks', [['description', 'must be a string or null']]],
      ['POST', '/tasks', { title: 'x', description: 'd'.repeat(1001) }, '/tasks', [['description', 'must be at most 1000 characters']]],
      ['POST', '/tasks', { title: 'a\u0000b' }, '/tasks', [['title', 'must not contain the NUL character (U+0000)']]],
      ['POST', '/tasks', { title: 'lone \ud800' }, '/tasks', [['title', 'is not well-formed Unicode (it contains a lone surrogate)']]],
      ['POST', '/tasks', '[1]', '/tasks', [['body', 'must be a JSON object']]],
      ['POST', '/tasks', { title: 5, extra: 1 }, '/tasks', [['title', 'must be a string'], ['extra', 'unknown field']]],
      ['PUT', `/tasks/${task.id}`, { description: 'no title' }, '/tasks/{id}', [['title', 'is required']]],
      ['PATCH', `/tasks/${task.id}`, {}, '/tasks/{id}', [['body', 'must contain at least one of: title, description, completed']]],
      ['PATCH', `/tasks/${task.id}`, { id: MISSING }, '/tasks/{id}', [['id', 'unknown field']]],
      ['GET', '/tasks?page=2', '', '/tasks', [['page', 'unknown query parameter']]],
      ['GET', '/tasks?status=done', '', '/tasks', [['status', 'must be one of: all, pending, completed']]],
      ['GET', '/tasks?sort=priority', '', '/tasks', [['sort', 'must be one of: created, updated, title']]],
      ['GET', '/tasks?order=up', '', '/tasks', [['order', 'must be one of: asc, desc']]],
      ['GET', '/tasks?status=all&status=pending', '', '/tasks', [['status', 'must be given only once']]],
      ['GET', '/tasks?limit=0', '', '/tasks', [['limit', 'must be at least 1']]],
      ['GET', '/tasks?limit=201', '', '/tasks', [['limit', 'must be at most 200']]],
      ['GET', '/tasks?limit=1.5', '', '/tasks', [['limit', 'must be an integer']]],
      ['GET', '/tasks?limit=1&limit=2', '', '/tasks', [['limit', 'must be given only once']]],
      ['GET', '/tasks?cursor=', '', '/tasks', [['cursor', 'must not be empty']]],
      ['GET', '/tasks?cursor=!!!', '', '/tasks', [['cursor', 'is malformed; use the Link rel="next" URL as given']]],
      ['POST', '/tasks', { title: 'x', user_id: 'mallory' }, '/tasks', [['user_id', 'is not accepted in the body: the owner is always the caller']]]
    ]
    for (const [method, url, payload, template, details] of cases) {
      const res = await inject(method, url, payload === '' ? {} : { headers: json, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })
      const code = url.includes('cursor=!') ? 'invalid_cursor' : JSON.stringify(payload).includes('user_id') ? 'user_id_not_allowed' : 'validation_error'
      const body = check(t, `${method} ${url.slice(0, 60)} ${JSON.stringify(payload).slice(0, 60)}`, res, { status: 400, code, op: `${method} ${template}` })
      t.same(body?.error.details, details.map(([field, message]) => ({ field, message })), 'details: field + message')
      t.equal(body?.error.message, details.map(([f, m]) => `${f}: ${m}`).join('; '), 'message: "field: why"')
      t.notMatch(body?.error.message, /querystring|schema is false|constant|anyOf|\//, 'no validator jargon')
    }
    // A cursor made for another sort.
    const page = await app.inject({ url: '/tasks?limit=1', headers: { 'x-user-id': user } })
    await createTask(app, user)
    const again = await app.inject({ url: '/tasks?limit=1', headers: { 'x-user-id': user } })
    const link = String(again.headers.link ?? page.headers.link)
    const cursor = /cursor=([^&>]+)/.exec(link)?.[1]
    t.ok(cursor, 'a next-page cursor')
    check(t, 'cursor for another order', await inject('GET', `/tasks?order=desc&cursor=${cursor ?? ''}`), { status: 400, code: 'invalid_cursor', op: 'GET /tasks' })
  })

  t.test('routes, router errors and malformed HTTP', async (t) => {
    for (const [method, url] of [['GET', '/nope'], ['POST', `/tasks/${MISSING}`], ['GET', '/tasks/a/b/c'], ['GET', '/tasks/%zz'], ['GET', `/tasks/${'a'.repeat(200)}`], ['OPTIONS', '/tasks']] as const) {
      check(t, `${method} ${url.slice(0, 40)}`, await inject(method, url), { status: 404, code: 'route_not_found' })
    }
    const listening = await buildTestApp(t)
    await listening.listen({ port: 0, host: '127.0.0.1' })
    const [bad] = await raw(port(listening), 'GET /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    check(t, 'malformed HTTP', { status: bad?.status ?? 0, body: bad?.body ?? '' }, { status: 400, code: 'bad_request' })
    const [big] = await raw(port(listening), `GET /tasks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`)
    check(t, 'oversized headers', { status: big?.status ?? 0, body: big?.body ?? '' }, { status: 431, code: 'bad_request' })
  })

  t.test('a request on an open connection while the service shuts down → 503 shutting_down', async (t) => {
    const closing = await buildTestApp(t)
    await closing.listen({ port: 0, host: '127.0.0.1' })
    const body = JSON.stringify({ title: 'in flight' })
    const assertion = await assertionFor(user)
    const [first, second] = await duringClose(
      closing,
      once(closing.server, 'request'),
      `POST /tasks HTTP/1.1\r\nHost: localhost\r\nX-User-Id: ${user}\r\nX-Gateway-Assertion: ${assertion}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 5)}`,
      body.slice(5),
      `GET /tasks HTTP/1.1\r\nHost: localhost\r\nX-User-Id: ${user}\r\nX-Gateway-Assertion: ${assertion}\r\nX-Request-Id: after-close\r\n\r\n`
    )
    t.equal(first?.status, 201, 'the request in flight finishes')
    check(t, 'request after close began', { status: second?.status ?? 0, body: second?.body ?? '', requestId: second?.headers['x-request-id'] }, { status: 503, code: 'shutting_down', op: 'GET /tasks' })
    t.equal(second?.headers.connection, 'close')
    t.equal(second?.headers['retry-after'], '1')
  })
})

t.test('gateway: every error path, its own and forwarded, answers in the one shape', async (t) => {
  const doc = openapiDocument as unknown as OpenApiDoc
  const check = makeChecker(doc, 'gateway')
  const db = new ControlledDatabase(await openTestDatabase(t))
  const taskService = await startTaskService(t, { db })
  const upstream = taskService.url
  const gateways: FastifyInstance[] = []
  t.teardown(async () => { for (const g of gateways) await g.close().catch(() => undefined) })
  const startGateway = async (env: Record<string, string> = {}): Promise<FastifyInstance> => {
    const { app: g } = await startTestGateway({ TASK_SERVICE_URL: upstream, ...env })
    gateways.push(g)
    return g
  }
  const gateway = await startGateway()
  const base = `http://127.0.0.1:${port(gateway)}`

  t.test('the OpenAPI document is valid OpenAPI 3.1 and has the task service\'s Error schema', async (t) => {
    const served = await request(`${base}/openapi.json`)
    const body = await served.body.json() as OpenApiDoc
    t.same(body, JSON.parse(JSON.stringify(openapiDocument)), 'served as built')
    const result = await validator.validate(structuredClone(body) as never)
    if (!t.ok(result.valid, 'valid')) t.comment(JSON.stringify(result.errors, null, 2).slice(0, 4000))
    t.equal(validator.version, '3.1')
    checkDocument(t, body, 'gateway')
    const ts = (await taskService.app.inject({ url: '/openapi.json' })).json<OpenApiDoc>()
    t.same(body.components.schemas.Error, ts.components.schemas.Error, 'the same Error schema in both documents')
  })

  const alice = newUser('alice')
  const token = await mintDevToken({ secret: SECRET, subject: alice, ttlSeconds: 300 })
  const bob = await mintDevToken({ secret: SECRET, subject: newUser('bob'), ttlSeconds: 300 })
  const expired = await signHs({ sub: alice, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }, SECRET)
  const created = await request(`${base}/api/tasks`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"title":"mine"}' })
  const task = await created.body.json() as { id: string }
  const call = async (g: FastifyInstance | string, method: string, path: string, opts: { auth?: string | null, headers?: Record<string, string>, body?: string } = {}): Promise<{ status: number, body: string, requestId: string }> => {
    const origin = typeof g === 'string' ? g : `http://127.0.0.1:${port(g)}`
    const auth = opts.auth === undefined ? token : opts.auth
    const res = await request(origin + path, {
      method: method as 'GET',
      headers: { ...(auth !== null ? { authorization: `Bearer ${auth}` } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { body: opts.body } : {}),
      headersTimeout: 10_000
    })
    return { status: res.statusCode, body: await res.body.text(), requestId: String(res.headers['x-request-id']) }
  }
  const json = { 'content-type': 'application/json' }

  t.test('every operation on both route styles', async (t) => {
    for (const prefix of ['/api', `/api/${encodeURIComponent(alice)}`]) {
      const tp = prefix === '/api' ? '/api' : '/api/{user_id}'
      const ops = [
        ['GET', '/tasks', '/tasks'], ['POST', '/tasks', '/tasks'], ['GET', `/tasks/${task.id}`, '/tasks/{id}'], ['PUT', `/tasks/${task.id}`, '/tasks/{id}'],
        ['PATCH', `/tasks/${task.id}`, '/tasks/{id}'], ['PATCH', `/tasks/${task.id}/complete`, '/tasks/{id}/complete'], ['DELETE', `/tasks/${task.id}`, '/tasks/{id}']
      ] as const
      for (const [method, p, template] of ops) {
        const path = prefix + p
        const op = `${method} ${tp}${template}`
        const body = method === 'POST' || method === 'PUT' || (method === 'PATCH' && !p.endsWith('/complete')) ? '{"title":"ok"}' : undefined
        const withBody = body !== undefined ? { headers: json, body } : {}
        check(t, `${op} no token`, await call(gateway, method, path, { auth: null, ...withBody }), { status: 401, code: 'missing_token', op })
        check(t, `${op} expired token`, await call(gateway, method, path, { auth: expired, ...withBody }), { status: 401, code: 'token_expired', op })
        check(t, `${op} garbage token`, await call(gateway, method, path, { auth: 'abc.def', ...withBody }), { status: 401, code: 'malformed_token', op })
        check(t, `${op} ?user_id= (task service)`, await call(gateway, method, `${path}?user_id=x`, withBody), { status: 400, code: 'user_id_not_allowed', op })
        if (template !== '/tasks') {
          check(t, `${op} missing task`, await call(gateway, method, path.replace(task.id, MISSING), withBody), { status: 404, code: 'task_not_found', op })
          check(t, `${op} another user's task`, await call(gateway, method, path, { auth: bob, ...withBody }), prefix === '/api' ? { status: 404, code: 'task_not_found', op } : { status: 403, code: 'forbidden_user', op })
        } else if (prefix !== '/api') {
          check(t, `${op} another user's path`, await call(gateway, method, path, { auth: bob, ...withBody }), { status: 403, code: 'forbidden_user', op })
        }
        if (method !== 'GET') {
          check(t, `${op} text/plain`, await call(gateway, method, path, { headers: { 'content-type': 'text/plain' }, body: 'x' }), { status: 415, code: 'unsupported_media_type', op })
          check(t, `${op} malformed JSON`, await call(gateway, method, path, { headers: json, body: '{' }), { status: 400, code: 'invalid_json', op })
          check(t, `${op} 70 KiB`, await call(gateway, method, path, { headers: json, body: JSON.stringify({ title: 'x', description: 'd'.repeat(70 * 1024) }) }), { status: 413, code: 'payload_too_large', op })
        }
        db.mode = 'down'
        check(t, `${op} database down (forwarded)`, await call(gateway, method, path, withBody), { status: 503, code: 'database_unavailable', op })
        db.mode = 'bug'
        check(t, `${op} task service bug (forwarded)`, await call(gateway, method, path, withBody), { status: 500, code: 'internal_error', op })
        db.mode = 'up'
        const [tooBig] = await raw(port(gateway), `${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n`)
        check(t, `${op} Content-Length over MAX_BODY_BYTES`, { status: tooBig?.status ?? 0, body: tooBig?.body ?? '', requestId: tooBig?.headers['x-request-id'] }, { status: 413, code: 'payload_too_large', op })
        const [upgrade] = await raw(port(gateway), `${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close, Upgrade\r\nUpgrade: websocket\r\n\r\n`)
        check(t, `${op} Upgrade`, { status: upgrade?.status ?? 0, body: upgrade?.body ?? '', requestId: upgrade?.headers['x-request-id'] }, { status: 400, code: 'upgrade_not_supported', op })
        const [query] = await raw(port(gateway), `${method} ${path}?q=\u00e9 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)
        check(t, `${op} non-ASCII query`, { status: query?.status ?? 0, body: query?.body ?? '', requestId: query?.headers['x-request-id'] }, { status: 400, code: 'bad_request', op })
      }
      for (const [method, p, template] of [['PUT', '/tasks', '/tasks'], ['DELETE', '/tasks', '/tasks'], ['POST', `/tasks/${task.id}`, '/tasks/{id}'], ['GET', `/tasks/${task.id}/complete`, '/tasks/{id}/complete']] as const) {
        const op = `${method} ${tp}${template}`
        check(t, `${op} (not served)`, await call(gateway, method, prefix + p), { status: 405, code: 'method_not_allowed', op })
        check(t, `${op} (not served) without a token`, await call(gateway, method, prefix + p, { auth: null }), { status: 401, code: 'missing_token', op })
      }
    }
  })

  t.test('outside the route table, router and HTTP errors', async (t) => {
    check(t, 'unknown route', await call(gateway, 'GET', '/api/nope'), { status: 404, code: 'not_found' })
    check(t, 'unknown route without a token', await call(gateway, 'GET', '/api/nope', { auth: null }), { status: 401, code: 'missing_token' })
    check(t, 'malformed percent-encoding', await call(gateway, 'GET', '/api/tasks/%zz'), { status: 404, code: 'not_found', op: 'GET /api/tasks/{id}' })
    check(t, 'malformed percent-encoding without a token', await call(gateway, 'GET', '/api/tasks/%zz', { auth: null }), { status: 401, code: 'missing_token', op: 'GET /api/tasks/{id}' })
    const [smuggle] = await raw(port(gateway), 'POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    check(t, 'malformed HTTP', { status: smuggle?.status ?? 0, body: smuggle?.body ?? '' }, { status: 400, code: 'bad_request' })
    const [big] = await raw(port(gateway), `GET /api/tasks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`)
    check(t, 'oversized headers', { status: big?.status ?? 0, body: big?.body ?? '' }, { status: 431, code: 'bad_request' })
  })

  t.test('502 and 504 from the forwarder', async (t) => {
    const unused = net.createServer()
    unused.listen(0, '127.0.0.1')
    await once(unused, 'listening')
    const closedPort = (unused.address() as AddressInfo).port
    await new Promise((resolve) => unused.close(resolve))
    const refused = await startGateway({ TASK_SERVICE_URL: `http://127.0.0.1:${closedPort}` })
    check(t, 'task service refuses connections', await call(refused, 'GET', '/api/tasks'), { status: 502, code: 'upstream_unavailable', op: 'GET /api/tasks' })
    check(t, 'task service refuses connections (POST)', await call(refused, 'POST', '/api/tasks', { headers: json, body: '{"title":"x"}' }), { status: 502, code: 'upstream_unavailable', op: 'POST /api/tasks' })

    const hanging = http.createServer(() => { /* never answers */ })
    hanging.listen(0, '127.0.0.1')
    await once(hanging, 'listening')
    t.teardown(() => { hanging.closeAllConnections(); hanging.close() })
    const slow = await startGateway({ TASK_SERVICE_URL: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`, UPSTREAM_TIMEOUT_MS: '200' })
    check(t, 'task service does not answer', await call(slow, 'GET', `/api/tasks/${task.id}`), { status: 504, code: 'upstream_timeout', op: 'GET /api/tasks/{id}' })
  })

  t.test('429 from both limits', async (t) => {
    // The per-address limit counts requests without a valid token (here: one expired token, its budget).
    const perIp = await startGateway({ RATE_LIMIT_IP_MAX: '1', RATE_LIMIT_USER_MAX: '0', RATE_LIMIT_WINDOW_MS: '600000' })
    t.equal((await call(perIp, 'GET', '/api/tasks', { auth: expired })).status, 401)
    check(t, 'per-address limit', await call(perIp, 'GET', '/api/tasks', { auth: expired }), { status: 429, code: 'rate_limited', op: 'GET /api/tasks' })
    check(t, 'per-address limit on the document', await call(perIp, 'GET', '/openapi.json'), { status: 429, code: 'rate_limited', op: 'GET /openapi.json' })
    const perUser = await startGateway({ RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '1', RATE_LIMIT_WINDOW_MS: '600000' })
    t.equal((await call(perUser, 'GET', '/api/tasks')).status, 200)
    check(t, 'per-user limit', await call(perUser, 'POST', '/api/tasks', { headers: json, body: '{"title":"x"}' }), { status: 429, code: 'rate_limited', op: 'POST /api/tasks' })
  })

  t.test('503 overloaded (load shedding)', async (t) => {
    const shedding = await startGateway({ LOAD_SHED_MAX_HEAP_BYTES: '1', LOAD_SHED_SAMPLE_INTERVAL_MS: '10' })
    let res = await call(shedding, 'GET', '/api/tasks')
    // The first sample decides: wait for it (a condition, not a duration).
    for (let i = 0; i < 200 && res.status !== 503; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      res = await call(shedding, 'GET', '/api/tasks')
    }
    check(t, 'shed', res, { status: 503, code: 'overloaded', op: 'GET /api/tasks' })
    check(t, 'shed /readyz', await call(shedding, 'GET', '/readyz'), { status: 503, code: 'overloaded', op: 'GET /readyz' })
  })

  t.test('a request on an open connection while the gateway shuts down → 503 shutting_down', async (t) => {
    const closing = await startGateway()
    const body = JSON.stringify({ title: 'in flight' })
    // The gateway reads a body whole before forwarding it: the request is in flight once the gateway has it.
    const [first, second] = await duringClose(
      closing,
      once(closing.server, 'request'),
      `POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 5)}`,
      body.slice(5),
      `GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Request-Id: after-close\r\n\r\n`
    )
    t.equal(first?.status, 201, 'the request in flight finishes')
    check(t, 'request after close began', { status: second?.status ?? 0, body: second?.body ?? '', requestId: second?.headers['x-request-id'] }, { status: 503, code: 'shutting_down', op: 'GET /api/tasks' })
    t.equal(second?.headers.connection, 'close')
  })
})

t.test('every status each service can produce was observed and validated', async (t) => {
  const statuses = (s: 'task-service' | 'gateway'): number[] => [...seen[s].keys()].sort()
  t.same(statuses('task-service'), [400, 401, 404, 413, 415, 421, 431, 500, 503])
  t.same(statuses('gateway'), [400, 401, 403, 404, 405, 413, 415, 429, 431, 500, 502, 503, 504])
  for (const s of ['task-service', 'gateway'] as const) {
    t.comment(`${s}: ${[...seen[s]].map(([status, codes]) => `${status} ${[...codes].sort().join(' ')}`).join(' | ')}`)
  }
})
