// Keyset pagination: Link rel="next" (RFC 8288) with an opaque cursor on (sort key, id); every sort and order;
// no duplicates and no gaps while other tasks are inserted between pages.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, createTask, newUser, nextMillisecond, type TaskJson } from './helpers.js'
import { errorCode } from './error-schema.js'

const app = await buildTestApp(t)

function nextLink (link: unknown): string | undefined {
  if (link === undefined) return undefined
  const match = /^<([^>]+)>; rel="next"$/.exec(String(link))
  if (!match) throw new Error(`unexpected Link header: ${String(link)}`)
  return match[1]
}

/** Follows Link rel="next" from url to the end; returns the pages. */
async function walk (app: FastifyInstance, user: string, url: string, between?: () => Promise<void>): Promise<TaskJson[][]> {
  const pages: TaskJson[][] = []
  let next: string | undefined = url
  while (next !== undefined) {
    const res = await app.inject({ url: next, headers: { 'x-user-id': user } })
    if (res.statusCode !== 200) throw new Error(`${next}: ${res.statusCode} ${res.body}`)
    pages.push(res.json<TaskJson[]>())
    next = nextLink(res.headers.link)
    if (pages.length > 100) throw new Error('pagination does not end')
    if (between) await between()
  }
  return pages
}

t.test('Link header names the next page under /tasks with every parameter; the last page has none', async (t) => {
  const user = newUser()
  for (let i = 0; i < 5; i++) await createTask(app, user, { title: `t${i}` })
  const res = await app.inject({ url: '/tasks?limit=2&status=all', headers: { 'x-user-id': user } })
  t.equal(res.json<TaskJson[]>().length, 2)
  const next = nextLink(res.headers.link)
  t.ok(next)
  const url = new URL(String(next), 'http://x')
  t.equal(url.pathname, '/tasks', 'relative to the service root, so the gateway can rewrite it')
  t.same([...url.searchParams.keys()].sort(), ['cursor', 'limit', 'order', 'sort', 'status'])
  t.equal(url.searchParams.get('limit'), '2')
  t.match(url.searchParams.get('cursor'), /^[A-Za-z0-9_-]+$/, 'URL-safe cursor')
  const pages = await walk(app, user, '/tasks?limit=2')
  t.same(pages.map((p) => p.length), [2, 2, 1])
  const exact = await walk(app, user, '/tasks?limit=5')
  t.same(exact.map((p) => p.length), [5], 'no Link when the page holds everything')
})

t.test('every sort and order pages through the same total order as one big page', async (t) => {
  const user = newUser()
  // Duplicate titles, and identical created_at (created in one statement burst) exercise the id tie-breaker.
  const titles = ['b', 'a', 'c', 'a', 'B', 'b', 'é', 'a', 'z', 'm', 'a']
  await Promise.all(titles.map((title, i) => createTask(app, user, { title, completed: i % 3 === 0 })))
  // Touch some tasks so updated_at differs from created_at order.
  const all = (await app.inject({ url: '/tasks?limit=200', headers: { 'x-user-id': user } })).json<TaskJson[]>()
  for (const task of all.slice(0, 4)) {
    await app.inject({ method: 'PATCH', url: `/tasks/${task.id}`, headers: { 'x-user-id': user }, payload: { description: 'touched' } })
  }
  for (const sort of ['created', 'updated', 'title']) {
    for (const order of ['asc', 'desc']) {
      for (const status of ['all', 'pending', 'completed']) {
        const base = `/tasks?sort=${sort}&order=${order}&status=${status}`
        const whole = (await app.inject({ url: `${base}&limit=200`, headers: { 'x-user-id': user } })).json<TaskJson[]>()
        for (const limit of [1, 2, 4]) {
          const pages = await walk(app, user, `${base}&limit=${limit}`)
          t.same(pages.flat().map((x) => x.id), whole.map((x) => x.id), `${sort} ${order} ${status} limit=${limit}`)
          t.ok(pages.every((p) => p.length <= limit))
        }
      }
    }
  }
})

t.test('orders are what they say', async (t) => {
  const user = newUser()
  for (const title of ['b', 'c', 'a']) {
    await createTask(app, user, { title })
    await nextMillisecond()
  }
  const get = async (q: string): Promise<string[]> =>
    (await app.inject({ url: `/tasks?${q}`, headers: { 'x-user-id': user } })).json<TaskJson[]>().map((x) => x.title)
  t.same(await get('sort=title&order=asc'), ['a', 'b', 'c'])
  t.same(await get('sort=title&order=desc'), ['c', 'b', 'a'])
  t.same(await get('sort=created&order=asc'), ['b', 'c', 'a'])
  t.same(await get('sort=created&order=desc'), ['a', 'c', 'b'])
  t.same(await get(''), ['b', 'c', 'a'], 'default: created ascending')
})

t.test('stable under concurrent inserts: no duplicates, nothing that existed is skipped', async (t) => {
  const user = newUser()
  const existing: string[] = []
  for (let i = 0; i < 12; i++) existing.push((await createTask(app, user, { title: `m${String(i).padStart(2, '0')}` })).id)
  for (const [sort, order] of [
    ['created', 'asc'],
    ['created', 'desc'],
    ['title', 'asc'],
    ['title', 'desc']
  ]) {
    let n = 0
    const pages = await walk(app, user, `/tasks?sort=${sort}&order=${order}&limit=3`, async () => {
      // Between pages, others write: titles land before and after the cursor, timestamps after.
      await Promise.all([createTask(app, user, { title: `a-new-${sort}-${order}-${n}` }), createTask(app, user, { title: `z-new-${sort}-${order}-${n}` })])
      n++
    })
    const seen = pages.flat().map((x) => x.id)
    t.equal(new Set(seen).size, seen.length, `${sort} ${order}: no task appears twice`)
    t.ok(existing.every((id) => seen.includes(id)), `${sort} ${order}: every task that existed at the start is listed`)
  }
})

t.test('a deleted cursor row does not break the walk', async (t) => {
  const user = newUser()
  const tasks: TaskJson[] = []
  for (let i = 0; i < 4; i++) {
    tasks.push(await createTask(app, user, { title: `d${i}` }))
    await nextMillisecond()
  }
  const first = await app.inject({ url: '/tasks?limit=2', headers: { 'x-user-id': user } })
  const next = nextLink(first.headers.link)
  await app.inject({ method: 'DELETE', url: `/tasks/${tasks[1]?.id}`, headers: { 'x-user-id': user } })
  const second = await app.inject({ url: String(next), headers: { 'x-user-id': user } })
  t.same(second.json<TaskJson[]>().map((x) => x.title), ['d2', 'd3'])
})

t.test('cursor errors → 400 invalid_cursor', async (t) => {
  const user = newUser()
  for (let i = 0; i < 3; i++) await createTask(app, user, { title: `c${i}` })
  const first = await app.inject({ url: '/tasks?limit=1', headers: { 'x-user-id': user } })
  const cursor = new URL(String(nextLink(first.headers.link)), 'http://x').searchParams.get('cursor') as string
  const other = await app.inject({ url: `/tasks?limit=1&sort=title&cursor=${cursor}`, headers: { 'x-user-id': user } })
  t.equal(other.statusCode, 400, 'a cursor for another sort')
  t.equal(errorCode(other), 'invalid_cursor')
  const reversed = await app.inject({ url: `/tasks?limit=1&order=desc&cursor=${cursor}`, headers: { 'x-user-id': user } })
  t.equal(errorCode(reversed), 'invalid_cursor', 'a cursor for another order')
  const forge = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const forged = [
    'not base64!',
    cursor.slice(0, -3),
    forge({ s: 'created', o: 'asc', k: 'yesterday', i: '00000000-0000-4000-8000-000000000000' }),
    forge({ s: 'created', o: 'asc', k: '2026-01-01T00:00:00.000Z', i: "x' OR 1=1 --" }),
    forge({ s: 'created', o: 'asc', k: 42, i: '00000000-0000-4000-8000-000000000000' }),
    forge({ s: 'title', o: 'asc', k: 'a\u0000b', i: '00000000-0000-4000-8000-000000000000' }),
    forge([1, 2]),
    forge(null)
  ]
  for (const c of forged) {
    const sortParam = c.includes(forge({ s: 'title' }).slice(0, 8)) ? 'title' : 'created'
    const res = await app.inject({ url: `/tasks?sort=${sortParam}&cursor=${encodeURIComponent(c)}`, headers: { 'x-user-id': user } })
    t.equal(res.statusCode, 400, `forged cursor ${c.slice(0, 30)}`)
    t.equal(errorCode(res), 'invalid_cursor')
  }
  const title = forge({ s: 'title', o: 'asc', k: 'c0', i: '00000000-0000-4000-8000-000000000000' })
  const ok = await app.inject({ url: `/tasks?sort=title&cursor=${title}`, headers: { 'x-user-id': user } })
  t.equal(ok.statusCode, 200, 'a well-formed cursor is just a position')
  t.same(ok.json<TaskJson[]>().map((x) => x.title), ['c0', 'c1', 'c2'], 'position (c0, nil uuid) precedes (c0, any id)')
})

t.test('limit defaults to 50 and caps at 200', async (t) => {
  const user = newUser()
  await Promise.all(Array.from({ length: 55 }, (_, i) => createTask(app, user, { title: `l${i}` })))
  const res = await app.inject({ url: '/tasks', headers: { 'x-user-id': user } })
  t.equal(res.json<TaskJson[]>().length, 50)
  t.ok(nextLink(res.headers.link))
  const all = await app.inject({ url: '/tasks?limit=200', headers: { 'x-user-id': user } })
  t.equal(all.json<TaskJson[]>().length, 55)
  t.notOk(all.headers.link)
})
