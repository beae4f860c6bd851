// Logs: pino JSON, exactly one "request completed" line per request with the request id and user id; never a
// body, never Authorization or cookies, never the X-User-Id header itself as a header dump.
import t from 'tap'
import { buildTestApp, newUser } from './helpers.js'

const lines: Record<string, unknown>[] = []
const app = await buildTestApp(t, {
  config: { logLevel: 'info' },
  logStream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }
})

t.test('one line per request, with reqId and userId; no bodies or secret headers', async (t) => {
  lines.length = 0
  const user = newUser('logged')
  const secretTitle = 'TOP-SECRET-TITLE-1234'
  const requests = [
    { method: 'POST', url: '/tasks', payload: { title: secretTitle, description: 'PRIVATE-DESCRIPTION' } },
    { method: 'GET', url: '/tasks' },
    { method: 'POST', url: '/tasks', payload: { title: '', description: 'PRIVATE-INVALID-BODY' } },
    { method: 'GET', url: '/tasks/not-a-uuid' }
  ] as const
  const ids: string[] = []
  for (const [i, r] of requests.entries()) {
    const res = await app.inject({
      ...r,
      headers: {
        'x-user-id': user,
        'x-request-id': `req-${i}`,
        authorization: 'Bearer SECRET-TOKEN-abc',
        cookie: 'session=SECRET-COOKIE-xyz'
      }
    })
    ids.push(String(res.headers['x-request-id']))
  }
  const completed = lines.filter((l) => l.msg === 'request completed')
  t.equal(completed.length, requests.length, 'exactly one completion line per request')
  t.same(completed.map((l) => l.reqId), ids, 'each line carries its request id (the one the gateway sent)')
  t.ok(completed.every((l) => l.userId === user), 'each line carries the user id')
  t.same(completed.map((l) => l.statusCode), [201, 200, 400, 404])
  t.ok(completed.every((l) => typeof l.responseTime === 'number' && typeof l.method === 'string'))
  const all = JSON.stringify(lines)
  for (const secret of [secretTitle, 'PRIVATE-DESCRIPTION', 'PRIVATE-INVALID-BODY', 'SECRET-TOKEN', 'SECRET-COOKIE']) {
    t.notOk(all.includes(secret), `logs never contain ${secret}`)
  }
})

t.test('an unauthenticated request is logged without a user id', async (t) => {
  lines.length = 0
  await app.inject({ url: '/tasks' })
  const completed = lines.filter((l) => l.msg === 'request completed')
  t.equal(completed.length, 1)
  t.equal(completed[0]?.statusCode, 401)
  t.notOk('userId' in (completed[0] ?? {}))
})
