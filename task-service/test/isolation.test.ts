// Isolation: user B can neither see nor touch user A's tasks, by listing or by guessing ids; another user's task
// answers exactly like a missing one. user_id in a body or query never changes ownership (400 user_id_not_allowed).
import t from 'tap'
import { buildTestApp, createTask, newUser, type TaskJson } from './helpers.js'
import { errorCode } from './error-schema.js'

const app = await buildTestApp(t)

t.test('B cannot list, read, replace, patch, toggle or delete A’s task', async (t) => {
  const alice = newUser('alice')
  const bob = newUser('bob')
  const task = await createTask(app, alice, { title: 'alice only', description: 'secret' })
  const bobList = await app.inject({ url: '/tasks', headers: { 'x-user-id': bob } })
  t.same(bobList.json(), [], 'B lists nothing')

  const missingId = '00000000-0000-4000-8000-000000000000'
  const attempts = [
    { method: 'GET', url: `/tasks/${task.id}` },
    { method: 'PUT', url: `/tasks/${task.id}`, payload: { title: 'pwned', completed: true } },
    { method: 'PATCH', url: `/tasks/${task.id}`, payload: { title: 'pwned' } },
    { method: 'PATCH', url: `/tasks/${task.id}/complete` },
    { method: 'DELETE', url: `/tasks/${task.id}` }
  ] as const
  for (const a of attempts) {
    // The same request id for both, so that the bodies can be compared byte for byte.
    const res = await app.inject({ ...a, headers: { 'x-user-id': bob, 'x-request-id': 'probe' } })
    const missing = await app.inject({ ...a, url: a.url.replace(task.id, missingId), headers: { 'x-user-id': bob, 'x-request-id': 'probe' } })
    t.equal(res.statusCode, 404, `${a.method} ${a.url} → 404`)
    t.equal(res.body, missing.body, `${a.method}: indistinguishable from a missing task`)
    t.equal(errorCode(res), 'task_not_found')
  }
  const after = await app.inject({ url: `/tasks/${task.id}`, headers: { 'x-user-id': alice } })
  t.same(after.json(), task, 'A’s task is untouched')
})

t.test('user ids differing only by case or whitespace are different users', async (t) => {
  const base = newUser('Carol')
  const task = await createTask(app, base)
  for (const other of [base.toLowerCase(), base.toUpperCase(), `${base} x`]) {
    const res = await app.inject({ url: `/tasks/${task.id}`, headers: { 'x-user-id': other } })
    t.equal(res.statusCode, 404, JSON.stringify(other))
  }
})

t.test('many users, interleaved: each sees exactly their own tasks', async (t) => {
  const users = Array.from({ length: 6 }, (_, i) => newUser(`u${i}`))
  const created = new Map<string, string[]>(users.map((u) => [u, []]))
  await Promise.all(
    users.flatMap((u) =>
      Array.from({ length: 5 }, async (_, i) => {
        const task = await createTask(app, u, { title: `${u} #${i}` })
        created.get(u)?.push(task.id)
      })
    )
  )
  for (const u of users) {
    const list = (await app.inject({ url: '/tasks?limit=200', headers: { 'x-user-id': u } })).json<TaskJson[]>()
    t.same(list.map((x) => x.id).sort(), [...(created.get(u) ?? [])].sort(), `${u} sees exactly their tasks`)
    t.ok(list.every((x) => x.user_id === u))
  }
})

t.test('user_id / userId in the body → 400 user_id_not_allowed, nothing written', async (t) => {
  const alice = newUser('alice')
  const bob = newUser('bob')
  const task = await createTask(app, alice)
  const cases = [
    { method: 'POST', url: '/tasks', payload: { title: 'x', user_id: bob } },
    { method: 'POST', url: '/tasks', payload: { title: 'x', userId: bob } },
    { method: 'PUT', url: `/tasks/${task.id}`, payload: { title: 'x', user_id: alice } },
    { method: 'PATCH', url: `/tasks/${task.id}`, payload: { user_id: bob } },
    { method: 'PATCH', url: `/tasks/${task.id}`, payload: { userId: bob } },
    { method: 'PATCH', url: `/tasks/${task.id}`, payload: { user_id: null } }
  ] as const
  for (const c of cases) {
    const res = await app.inject({ ...c, headers: { 'x-user-id': alice } })
    t.equal(res.statusCode, 400, `${c.method} ${JSON.stringify(c.payload)}`)
    t.equal(errorCode(res), 'user_id_not_allowed')
  }
  t.same((await app.inject({ url: '/tasks', headers: { 'x-user-id': bob } })).json(), [], 'B owns nothing')
  t.same((await app.inject({ url: '/tasks', headers: { 'x-user-id': alice } })).json(), [task], 'A’s task unchanged')
})

t.test('user_id / userId in the query → 400 user_id_not_allowed on every route', async (t) => {
  const alice = newUser('alice')
  const bob = newUser('bob')
  const task = await createTask(app, bob)
  for (const q of [`user_id=${bob}`, `userId=${bob}`]) {
    for (const [method, url] of [
      ['GET', '/tasks'],
      ['GET', `/tasks/${task.id}`],
      ['DELETE', `/tasks/${task.id}`],
      ['PATCH', `/tasks/${task.id}/complete`]
    ] as const) {
      const res = await app.inject({ method, url: `${url}?${q}`, headers: { 'x-user-id': alice } })
      t.equal(res.statusCode, 400, `${method} ${url}?${q}`)
      t.equal(errorCode(res), 'user_id_not_allowed')
    }
  }
  const still = await app.inject({ url: `/tasks/${task.id}`, headers: { 'x-user-id': bob } })
  t.same(still.json(), task)
})

t.test('other server-owned fields in a body are refused too (id, created_at)', async (t) => {
  const alice = newUser()
  const task = await createTask(app, alice)
  for (const payload of [{ title: 'x', id: task.id }, { title: 'x', created_at: '2000-01-01T00:00:00.000Z' }, { title: 'x', extra: 1 }]) {
    const res = await app.inject({ method: 'POST', url: '/tasks', headers: { 'x-user-id': alice }, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(errorCode(res), 'validation_error')
  }
})

t.test('a cursor made for A’s list reveals nothing to B', async (t) => {
  const alice = newUser('alice')
  const bob = newUser('bob')
  await createTask(app, alice, { title: 'a1' })
  await createTask(app, alice, { title: 'a2' })
  await createTask(app, alice, { title: 'a3' })
  const page = await app.inject({ url: '/tasks?limit=1', headers: { 'x-user-id': alice } })
  const next = /<([^>]+)>; rel="next"/.exec(String(page.headers.link))?.[1]
  t.ok(next, 'A has a next page')
  const res = await app.inject({ url: String(next), headers: { 'x-user-id': bob } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), [], 'B following A’s cursor sees only B’s (no) tasks')
})
