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

t.test('the access line carries the trace id of a valid traceparent, and no trace id for an invalid one', async (t) => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const cases: Array<[string | undefined, string | undefined]> = [
    [`00-${traceId}-00f067aa0ba902b7-01`, traceId],
    [`00-${traceId}-00f067aa0ba902b7-00`, traceId],
    [`01-${traceId}-00f067aa0ba902b7-01-future`, traceId],
    [`00-${traceId.toUpperCase()}-00f067aa0ba902b7-01`, undefined],
    [`ff-${traceId}-00f067aa0ba902b7-01`, undefined],
    [`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, undefined],
    [`00-${traceId}-${'0'.repeat(16)}-01`, undefined],
    [`00-${traceId}-00f067aa0ba902b7-01-extra`, undefined],
    ['garbage', undefined],
    [undefined, undefined]
  ]
  for (const [traceparent, expected] of cases) {
    lines.length = 0
    await app.inject({ method: 'GET', url: '/tasks', headers: { 'x-user-id': newUser(), ...(traceparent !== undefined ? { traceparent } : {}) } })
    const line = lines.find((l) => l.msg === 'request completed')
    t.equal(line?.traceId, expected, String(traceparent))
  }
})
