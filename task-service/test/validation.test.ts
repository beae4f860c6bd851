// Validation edges. Lengths are counted in Unicode code points, after trimming the title.
import fc from 'fast-check'
import t from 'tap'
import { buildTestApp, createTask, newUser, type TaskJson } from './helpers.js'
import { errorCode } from './error-schema.js'

const app = await buildTestApp(t)
const user = newUser('v')

async function post (payload: unknown): Promise<{ status: number; body: Record<string, unknown>; code?: string }> {
  const res = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': user }, payload: payload as object })
  return { status: res.statusCode, body: res.json(), ...(res.statusCode >= 400 ? { code: errorCode(res) } : {}) }
}

t.test('title: 200 code points accepted, 201 refused', async (t) => {
  t.equal((await post({ title: 'a'.repeat(200) })).status, 201)
  const over = await post({ title: 'a'.repeat(201) })
  t.equal(over.status, 400)
  t.equal(over.code, 'validation_error')
  t.match(over.body, { error: { code: 'validation_error', message: 'title: must be at most 200 characters', requestId: String, details: [{ field: 'title', message: 'must be at most 200 characters' }] } })
})

t.test('emoji count as one character each (code points, not UTF-16 units or bytes)', async (t) => {
  const emoji200 = '😀'.repeat(200) // 400 UTF-16 units, 800 bytes
  const ok = await post({ title: emoji200 })
  t.equal(ok.status, 201)
  t.equal(ok.body.title, emoji200, 'stored and returned intact')
  t.equal((await post({ title: '😀'.repeat(201) })).status, 400)
})

t.test('combining characters count as separate code points', async (t) => {
  const eAcute = 'e\u0301' // 2 code points, 1 grapheme
  t.equal((await post({ title: eAcute.repeat(100) })).status, 201, '200 code points')
  t.equal((await post({ title: eAcute.repeat(100) + 'x' })).status, 400, '201 code points, though 101 graphemes')
  const family = '👨‍👩‍👧' // 5 code points (3 emoji + 2 ZWJ), 1 grapheme
  t.equal((await post({ title: family.repeat(40) })).status, 201, '200 code points')
  t.equal((await post({ title: family.repeat(40) + 'x' })).status, 400, '201 code points')
})

t.test('title is trimmed before its length is checked', async (t) => {
  const padded = await post({ title: `   ${'a'.repeat(200)}\n\t ` })
  t.equal(padded.status, 201)
  t.equal(padded.body.title, 'a'.repeat(200))
  const nbsp = await post({ title: '\u00a0\u3000 x \u2003' })
  t.equal(nbsp.body.title, 'x', 'Unicode spaces are trimmed too')
})

t.test('whitespace-only and empty titles → 400', async (t) => {
  for (const title of ['', ' ', '   ', '\n\t', '\u00a0', '\u3000\u2003']) {
    const res = await post({ title })
    t.equal(res.status, 400, JSON.stringify(title))
    t.equal(res.code, 'validation_error')
  }
})

t.test('wrong types and nulls', async (t) => {
  const bad: unknown[] = [
    { title: null },
    { title: 123 },
    { title: ['x'] },
    { title: { x: 1 } },
    { title: 'x', completed: null },
    { title: 'x', completed: 'true' },
    { title: 'x', completed: 1 },
    { title: 'x', description: 5 },
    { title: 'x', description: false },
    {},
    [],
    [{ title: 'x' }],
    'x',
    42,
    null
  ]
  for (const payload of bad) {
    const res = await app.inject({
      method: 'POST',
      url: '/tasks',
      headers: { 'x-user-id': user, 'content-type': 'application/json' },
      payload: JSON.stringify(payload)
    })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(errorCode(res), 'validation_error', JSON.stringify(payload))
  }
  const nullDescription = await post({ title: 'x', description: null })
  t.equal(nullDescription.status, 201)
  t.equal(nullDescription.body.description, null)
})

t.test('description: 1000 code points accepted, 1001 refused; empty string kept', async (t) => {
  t.equal((await post({ title: 'x', description: '😀'.repeat(1000) })).status, 201)
  t.equal((await post({ title: 'x', description: 'd'.repeat(1001) })).status, 400)
  const empty = await post({ title: 'x', description: '' })
  t.equal(empty.status, 201)
  t.equal(empty.body.description, '')
})

t.test('NUL characters and lone surrogates → 400, never a database error', async (t) => {
  for (const payload of [
    { title: 'a\u0000b' },
    { title: 'x', description: 'nul \u0000 here' },
    { title: 'lone \ud800 surrogate' },
    { title: 'x', description: '\udc00' }
  ]) {
    const res = await post(payload)
    t.equal(res.status, 400, JSON.stringify(payload))
    t.equal(res.code, 'validation_error')
  }
})

t.test('PATCH and PUT apply the same rules', async (t) => {
  const task = await createTask(app, user)
  for (const [method, payload] of [
    ['PATCH', { title: '  ' }],
    ['PATCH', { title: 'a'.repeat(201) }],
    ['PATCH', { title: null }],
    ['PATCH', { completed: null }],
    ['PATCH', { description: 'd'.repeat(1001) }],
    ['PUT', { title: '' }],
    ['PUT', { title: 'x', completed: 'yes' }]
  ] as const) {
    const res = await app.inject({ method, url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload })
    t.equal(res.statusCode, 400, `${method} ${JSON.stringify(payload).slice(0, 60)}`)
  }
  const ok = await app.inject({ method: 'PATCH', url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload: { title: 'b'.repeat(200) } })
  t.equal(ok.statusCode, 200)
})

t.test('query parameters: limit bounds, unknown values and parameters', async (t) => {
  const cases: [string, number][] = [
    ['limit=1', 200],
    ['limit=200', 200],
    ['limit=0', 400],
    ['limit=201', 400],
    ['limit=-1', 400],
    ['limit=1.5', 400],
    ['limit=abc', 400],
    ['limit=1&limit=2', 400],
    ['sort=title&order=desc', 200],
    ['sort=priority', 400],
    ['order=up', 400],
    ['status=', 400],
    ['foo=bar', 400],
    ['cursor=', 400],
    ['cursor=!!!', 400],
    ['cursor=eyJ4IjoxfQ', 400]
  ]
  for (const [query, status] of cases) {
    const res = await app.inject({ url: `/tasks?${query}`, headers: { 'x-user-id': user } })
    t.equal(res.statusCode, status, query)
    if (status === 400) t.match(errorCode(res), /^(validation_error|invalid_cursor)$/)
  }
})

t.test('property: random bodies never give a 5xx and never touch another user', async (t) => {
  const victim = newUser('victim')
  const victimTask = await createTask(app, victim, { title: 'victim' })
  const attacker = newUser('attacker')
  const body = fc.oneof(
    fc.jsonValue(),
    fc.record(
      {
        title: fc.oneof(fc.string({ unit: 'binary', maxLength: 260 }), fc.constant(null), fc.integer()),
        description: fc.oneof(fc.string({ unit: 'binary', maxLength: 1100 }), fc.constant(null), fc.boolean()),
        completed: fc.oneof(fc.boolean(), fc.constant(null), fc.string()),
        user_id: fc.constant(victim)
      },
      { requiredKeys: [] }
    )
  )
  const target = fc.constantFrom('/tasks', `/tasks/${victimTask.id}`, `/tasks/${victimTask.id}/complete`)
  const method = fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE', 'GET')
  await fc.assert(
    fc.asyncProperty(method, target, body, async (m, url, payload) => {
      const res = await app.inject({
        method: m,
        url,
        headers: { 'x-user-id': attacker, 'content-type': 'application/json' },
        payload: JSON.stringify(payload)
      })
      return res.statusCode < 500
    }),
    { numRuns: 150 }
  )
  const still = await app.inject({ url: '/tasks', headers: { 'x-user-id': victim } })
  t.same(still.json<TaskJson[]>(), [victimTask], 'the victim’s task is untouched')
})

t.test('property: random query strings never give a 5xx', async (t) => {
  const key = fc.constantFrom('status', 'sort', 'order', 'limit', 'cursor', 'x')
  const value = fc.oneof(fc.string(), fc.constantFrom('all', 'title', 'desc', '50', '0', 'eyJzIjoidGl0bGUifQ'))
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(key, value), { maxLength: 4 }), async (pairs) => {
      const qs = new URLSearchParams(pairs).toString()
      const res = await app.inject({ url: `/tasks?${qs}`, headers: { 'x-user-id': user } })
      return res.statusCode === 200 || res.statusCode === 400
    }),
    { numRuns: 150 }
  )
  t.pass('150 random queries answered with 200 or 400')
})
