// Property-based tests (fast-check) of the task service's inputs, beyond validation.test.ts's single
// requests: random SEQUENCES of operations by several users — random bodies, ids (own, another user's,
// garbage), queries and identity headers — checked against a model after every step and at the end.
// Properties: never a 5xx; a 2xx only ever concerns the caller's own rows; a request that is refused changes
// nothing; each user's rows are exactly what that user's successful requests made them.
import fc from 'fast-check'
import t from 'tap'
import { buildTestApp, newUser, type TaskJson } from './helpers.js'

const app = await buildTestApp(t)

type Op =
  | { kind: 'create'; user: number; body: unknown }
  | { kind: 'put' | 'patch'; user: number; target: Target; body: unknown }
  | { kind: 'toggle' | 'delete' | 'get'; user: number; target: Target }
  | { kind: 'list'; user: number; query: string }
  | { kind: 'identity'; header: string | string[] | undefined }

type Target = { own: number } | { other: number } | { raw: string }

const title = fc.oneof(
  fc.string({ minLength: 1, maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 210 }),
  fc.constantFrom('  padded  ', '', '   ', 'a'.repeat(200), 'a'.repeat(201), '\u0000', '\ud800', '👍🏽', 'e\u0301')
)
const body = fc.oneof(
  fc.record(
    {
      title,
      description: fc.oneof(fc.constant(null), fc.string({ maxLength: 40 }), fc.constant('x'.repeat(1001))),
      completed: fc.oneof(fc.boolean(), fc.constant('true'), fc.constant(null)),
      user_id: fc.constant('someone-else'),
      id: fc.uuid(),
      extra: fc.jsonValue()
    },
    { requiredKeys: [] }
  ),
  fc.jsonValue()
)
const target: fc.Arbitrary<Target> = fc.oneof(
  fc.nat(50).map((own) => ({ own })),
  fc.nat(50).map((other) => ({ other })),
  fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }), fc.constantFrom('..', '%2e%2e', '0', '-1', "1' OR '1'='1", '%00')).map((raw) => ({ raw }))
)
const user = fc.nat(2)
const query = fc
  .array(fc.tuple(fc.constantFrom('status', 'sort', 'order', 'limit', 'cursor', 'user_id', 'x'), fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('all', 'pending', 'completed', 'title', 'updated', 'asc', 'desc', '1', '200', '201'))), { maxLength: 4 })
  .map((pairs) => new URLSearchParams(pairs).toString())
const identity = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', ' ', 'a\u0000b', 'x'.repeat(256), 'é'),
  fc.array(fc.string({ minLength: 1, maxLength: 5 }), { minLength: 2, maxLength: 3 })
)
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('create' as const), user, body }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('put' as const, 'patch' as const), user, target, body }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('toggle' as const, 'delete' as const, 'get' as const), user, target }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('list' as const), user, query }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('identity' as const), header: identity }) }
)

let runs = 0
let requests = 0

t.test('property: random operation sequences by three users never give a 5xx, never cross users, and a refusal changes nothing', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
      runs++
      const users = [newUser('p0'), newUser('p1'), newUser('p2')]
      const model = users.map(() => new Map<string, TaskJson>())
      const ids = (u: number): string[] => [...(model[u] as Map<string, TaskJson>).keys()]
      const resolve = (u: number, tg: Target): { id: string; owner: number | undefined } => {
        if ('raw' in tg) return { id: tg.raw, owner: undefined }
        if ('own' in tg) {
          const own = ids(u)
          return own.length > 0 ? { id: own[tg.own % own.length] as string, owner: u } : { id: 'none', owner: undefined }
        }
        const others = users.flatMap((_x, o) => (o === u ? [] : ids(o).map((id) => ({ id, owner: o }))))
        return others.length > 0 ? (others[tg.other % others.length] as { id: string; owner: number }) : { id: 'none', owner: undefined }
      }
      for (const o of ops) {
        requests++
        if (o.kind === 'identity') {
          const headers = o.header === undefined ? {} : { 'x-user-id': o.header }
          const res = await app.inject({ method: 'GET', url: '/tasks', headers })
          if (res.statusCode >= 500) throw new Error(`5xx for X-User-Id ${JSON.stringify(o.header)}`)
          if (res.statusCode === 200) {
            const list = res.json<TaskJson[]>()
            const known = new Set(users)
            if (list.some((x) => known.has(x.user_id) && x.user_id !== o.header)) throw new Error('another user’s rows listed')
          }
          continue
        }
        const me = users[o.user] as string
        const mine = model[o.user] as Map<string, TaskJson>
        const headers = { 'x-user-id': me, 'content-type': 'application/json' }
        if (o.kind === 'create') {
          const res = await app.inject({ method: 'POST', url: '/tasks', headers, payload: JSON.stringify(o.body) })
          if (res.statusCode >= 500) throw new Error(`5xx on create ${JSON.stringify(o.body)}: ${res.body}`)
          if (res.statusCode === 201) {
            const task = res.json<TaskJson>()
            if (task.user_id !== me) throw new Error('created for another user')
            mine.set(task.id, task)
          }
          continue
        }
        if (o.kind === 'list') {
          const res = await app.inject({ method: 'GET', url: `/tasks?${o.query}`, headers: { 'x-user-id': me } })
          if (res.statusCode >= 500) throw new Error(`5xx on list ?${o.query}`)
          if (res.statusCode === 200 && res.json<TaskJson[]>().some((x) => x.user_id !== me || !mine.has(x.id))) throw new Error('list shows a row the user does not own')
          continue
        }
        const { id, owner } = resolve(o.user, o.target)
        const url = `/tasks/${encodeURIComponent(id)}${o.kind === 'toggle' ? '/complete' : ''}`
        const method = { put: 'PUT', patch: 'PATCH', toggle: 'PATCH', delete: 'DELETE', get: 'GET' }[o.kind] as 'GET'
        const payload = 'body' in o ? JSON.stringify(o.body) : undefined
        const res = await app.inject({ method, url, headers: payload === undefined ? { 'x-user-id': me } : headers, payload })
        if (res.statusCode >= 500) throw new Error(`5xx on ${method} ${url}: ${res.body}`)
        const ok = res.statusCode >= 200 && res.statusCode < 300
        if (ok && owner !== o.user) throw new Error(`${method} on a row the caller does not own answered ${res.statusCode}`)
        if (!ok) continue
        if (o.kind === 'delete') mine.delete(id)
        else {
          const task = res.json<TaskJson>()
          if (task.user_id !== me || task.id !== id) throw new Error('answered with another row')
          mine.set(id, task)
        }
      }
      // Each user's rows are exactly the model (a refused request changed nothing, nobody else wrote).
      for (const [u, me] of users.entries()) {
        const res = await app.inject({ method: 'GET', url: '/tasks?limit=200', headers: { 'x-user-id': me } })
        requests++
        const got = new Map(res.json<TaskJson[]>().map((x) => [x.id, x]))
        const want = model[u] as Map<string, TaskJson>
        if (got.size !== want.size) throw new Error(`${me}: ${got.size} rows, model ${want.size}`)
        for (const [id, w] of want) {
          const g = got.get(id)
          if (g === undefined || g.title !== w.title || g.description !== w.description || g.completed !== w.completed) {
            throw new Error(`${me}: row ${id} is ${JSON.stringify(g)}, model ${JSON.stringify(w)}`)
          }
        }
      }
      return true
    }),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) }
  )
  t.ok(runs > 0, `${runs} random sequences, ${requests} requests, no 5xx, no cross-user effect, refusals changed nothing`)
})
