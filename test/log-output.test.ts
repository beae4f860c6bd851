// The gateway's log output as a real process writes it (gateway/src/server.ts, stdout): lines are batched
// (LOG_BUFFER_BYTES) but never held longer than the flush interval, and nothing pending is lost when the
// gateway stops on SIGTERM. LOG_BUFFER_BYTES=0 writes each line at once.
import t from 'tap'
import { request } from 'undici'
import { stubUpstream } from '../gateway/test/helpers/upstream.js'
import { FLUSH_INTERVAL_MS } from '../gateway/src/log-destination.js'
import { mintDevToken, SECRET } from '../support/tokens.js'
import { spawnGateway } from '../support/gateway.js'
import { exitWithin } from '../support/processes.js'
import { sleep } from '../support/wait.js'

const completedLines = (out: string, user: string): number => out.split('\n').filter((l) => l.includes('"request completed"') && l.includes(`"userId":"${user}"`)).length

async function get (url: string, token: string): Promise<number> {
  const res = await request(url + '/api/tasks', { headers: { authorization: `Bearer ${token}` }, headersTimeout: 10_000, bodyTimeout: 10_000 })
  await res.body.dump()
  return res.statusCode
}

t.test('batched lines reach stdout within the flush interval, and all of them on SIGTERM', async (t) => {
  const up = await stubUpstream(t)
  const g = await spawnGateway({ TASK_SERVICE_URL: up.url, LOG_LEVEL: 'info' }, { t })
  const token = await mintDevToken({ secret: SECRET, subject: 'log-flush-user', ttlSeconds: 600 })

  t.equal(await get(g.url, token), 200)
  const sent = Date.now()
  while (completedLines(g.output(), 'log-flush-user') === 0 && Date.now() - sent < FLUSH_INTERVAL_MS + 2_000) await sleep(25)
  t.equal(completedLines(g.output(), 'log-flush-user'), 1, `one quiet request's line was written within ${FLUSH_INTERVAL_MS} ms (+ slack)`)

  for (let i = 0; i < 30; i++) t.equal(await get(g.url, token), 200)
  g.child.kill('SIGTERM')
  const exit = await exitWithin(g, 15_000)
  t.same(exit, { code: 0, signal: null }, 'exited 0')
  t.equal(completedLines(g.output(), 'log-flush-user'), 31, 'every request\'s line was written before the process exited')
})

t.test('LOG_BUFFER_BYTES=0: each line is written at once', async (t) => {
  const up = await stubUpstream(t)
  const g = await spawnGateway({ TASK_SERVICE_URL: up.url, LOG_LEVEL: 'info', LOG_BUFFER_BYTES: '0' }, { t })
  const token = await mintDevToken({ secret: SECRET, subject: 'log-direct-user', ttlSeconds: 600 })
  for (let i = 0; i < 3; i++) t.equal(await get(g.url, token), 200)
  // Well under the flush interval: only an unbuffered write can have put them there already.
  const end = Date.now() + 300
  while (completedLines(g.output(), 'log-direct-user') < 3 && Date.now() < end) await sleep(10)
  t.equal(completedLines(g.output(), 'log-direct-user'), 3)
  g.child.kill('SIGTERM')
  await g.exited
})
