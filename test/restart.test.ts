// Restarts without dropping requests, with the gateway as a real process (gateway/src/server.ts):
//  - SIGTERM while requests are in flight: the process stops accepting, finishes every in-flight request,
//    and exits 0 within its grace period;
//  - with SHUTDOWN_DRAIN_MS: it first keeps serving with /readyz 503 (and Connection: close), then stops;
//  - a rolling restart of two gateways in front of the real task service, behind a client that routes by
//    readiness and retries idempotent requests: zero failed requests, nothing lost (gateways in-process,
//    stopped by the same drainAndClose() that server.ts runs on SIGTERM).
// Bounded: fixed request counts or deadlines, every request with a timeout; 127.0.0.1 only.
import t from 'tap'
import { request, Agent } from 'undici'
import { drainAndClose } from '../gateway/src/plugins/drain.js'
import { stubUpstream } from '../gateway/test/helpers/upstream.js'
import { mintDevToken, SECRET } from '../support/tokens.js'
import { spawnGateway, startGateway, type RunningGateway } from '../support/gateway.js'
import { exitWithin, refused } from '../support/processes.js'
import { startTaskService } from '../support/task-service.js'
import { eventually, sleep } from '../support/wait.js'
import { assertIntact, summary, Workload } from './helpers/workload.js'

t.test('SIGTERM during requests: stops accepting, finishes in-flight requests, exits 0 within the grace period', async (t) => {
  const up = await stubUpstream(t, (req, res) => {
    if (req.url === '/readyz') { res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}'); return }
    setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }).end('[]') }, 1_500)
  })
  const g = await spawnGateway({ TASK_SERVICE_URL: up.url }, { t })
  const token = await mintDevToken({ secret: SECRET, subject: 'drain-user', ttlSeconds: 600 })

  const inflight = Array.from({ length: 10 }, async () => {
    const res = await request(g.url + '/api/tasks', { headers: { authorization: `Bearer ${token}` }, headersTimeout: 20_000, bodyTimeout: 20_000 })
    return { status: res.statusCode, body: await res.body.text() }
  })
  await eventually(() => up.tasks().length >= 10, 15_000, '10 requests reached the task service')
  g.child.kill('SIGTERM')
  await eventually(async () => await refused(g.port), 15_000, 'the listener is closed')
  t.pass('new connections are refused once SIGTERM is handled')
  const results = await Promise.all(inflight)
  t.same(results.map((r) => r.status), Array(10).fill(200), 'all 10 in-flight requests completed with 200')
  t.same(results.map((r) => r.body), Array(10).fill('[]'), 'with their bodies')
  const exit = await exitWithin(g, 15_000)
  if (!t.same(exit, { code: 0, signal: null }, 'exited 0 within the grace period')) t.comment(g.output())
})

t.test('SHUTDOWN_DRAIN_MS: keeps serving with /readyz 503 and Connection: close, then stops and exits 0', async (t) => {
  const up = await stubUpstream(t)
  const g = await spawnGateway({ TASK_SERVICE_URL: up.url, SHUTDOWN_DRAIN_MS: '5000', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }, { t })
  const token = await mintDevToken({ secret: SECRET, subject: 'drain-user', ttlSeconds: 600 })
  await eventually(async () => {
    const r = await request(g.url + '/readyz', { reset: true })
    await r.body.dump()
    return r.statusCode === 200
  }, 15_000, '/readyz is 200 before the signal')
  g.child.kill('SIGTERM')
  await eventually(async () => {
    const r = await request(g.url + '/readyz', { reset: true })
    await r.body.dump()
    return r.statusCode === 503
  }, 15_000, '/readyz says draining')
  const during = await request(g.url + '/api/tasks', { headers: { authorization: `Bearer ${token}` }, reset: true })
  await during.body.dump()
  t.equal(during.statusCode, 200, 'still serving while draining')
  t.equal(during.headers.connection, 'close', 'and closing connections after each answer')
  await eventually(async () => await refused(g.port), 15_000, 'the listener is closed after the drain')
  t.same(await exitWithin(g, 15_000), { code: 0, signal: null }, 'exited 0')
})

/**
 * A client in front of several gateways, like a load balancer: it sends only to gateways whose /readyz is
 * 200 (polled every 100 ms), retries idempotent requests (GET, HEAD, PUT, DELETE) on another gateway after a
 * network error or a 502/503/504, and retries any request only when the connection was refused (then it was
 * never sent).
 */
class Balancer {
  ready = new Map<string, boolean>()
  retries = 0
  private stopped = false
  private readonly agent = new Agent({ connections: 64, keepAliveTimeout: 4_000 })
  private rr = 0
  private readonly polls: Array<Promise<void>>

  constructor (readonly targets: string[]) {
    for (const u of targets) this.ready.set(u, true)
    this.polls = targets.map(async (u) => {
      while (!this.stopped) {
        try {
          const r = await request(u + '/readyz', { reset: true, headersTimeout: 1_000, bodyTimeout: 1_000 })
          await r.body.dump()
          this.ready.set(u, r.statusCode === 200)
        } catch {
          this.ready.set(u, false)
        }
        await sleep(100)
      }
    })
  }

  private async pick (): Promise<string> {
    for (let i = 0; i < 400; i++) {
      const live = this.targets.filter((u) => this.ready.get(u) === true)
      if (live.length > 0) return live[this.rr++ % live.length] as string
      await sleep(25)
    }
    throw new Error('no gateway ready for 10 s')
  }

  readonly dispatch = async (method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<{ statusCode: number, text: string }> => {
    const idempotent = ['GET', 'HEAD', 'PUT', 'DELETE'].includes(method)
    let lastError: unknown
    for (let attempt = 0; attempt < 6; attempt++) {
      const target = await this.pick()
      try {
        const res = await request(target + path, { method: method as 'GET', headers, body, dispatcher: this.agent, headersTimeout: 15_000, bodyTimeout: 15_000 })
        const text = await res.body.text()
        if (idempotent && [502, 503, 504].includes(res.statusCode) && attempt < 5) {
          this.retries++
          continue
        }
        return { statusCode: res.statusCode, text }
      } catch (err) {
        lastError = err
        const code = (err as { code?: string }).code
        if (code === 'ECONNREFUSED' || idempotent) {
          this.ready.set(target, false)
          this.retries++
          continue
        }
        throw err
      }
    }
    throw lastError instanceof Error ? lastError : new Error('retries exhausted')
  }

  async close (): Promise<void> {
    this.stopped = true
    await Promise.all(this.polls)
    await this.agent.close()
  }
}

t.test('rolling restart of two gateways under load: zero failed requests, nothing lost', { timeout: 110_000 }, async (t) => {
  // The gateways run in this process (a restart takes milliseconds instead of a process start); the stop
  // is the same drainAndClose() that server.ts runs on SIGTERM (proven on a real process above).
  const taskService = await startTaskService(t)
  const env = { TASK_SERVICE_URL: taskService.url, SHUTDOWN_DRAIN_MS: '3000', RATE_LIMIT_IP_MAX: '0', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }
  const gateways = [await startGateway(env), await startGateway(env)]
  t.teardown(async () => { for (const g of gateways) await g.close() })
  const urls = gateways.map((g) => g.url)
  const balancer = new Balancer(urls)
  t.teardown(() => balancer.close())
  const load = new Workload({ targets: urls, secret: SECRET, users: 20, deadline: Date.now() + 60_000, dispatch: balancer.dispatch })
  await load.init()
  t.teardown(() => load.close())
  const running = load.run()

  await sleep(1_000)
  for (const i of [0, 1]) {
    const old = gateways[i] as RunningGateway
    const before = load.result.requests
    await drainAndClose(old.app, 3_000)
    t.ok(await refused(old.port), `gateway ${i} stopped accepting after its drain`)
    gateways[i] = await startGateway(env, { port: old.port })
    await eventually(() => balancer.ready.get(urls[i] as string) === true, 15_000, `gateway ${i} back in rotation`)
    t.ok(load.result.requests > before, `requests kept flowing while gateway ${i} restarted (${load.result.requests - before})`)
    await sleep(500)
  }
  load.opts.deadline = Date.now() + 1_000
  const r = await running
  await load.verify()
  t.comment(`${summary(r)}; retries by the client: ${balancer.retries}`)
  if (r.errorSamples.length > 0) t.comment(r.errorSamples.join('\n'))
  t.equal(r.errors, 0, 'zero failed requests')
  t.equal(r.serverErrors, 0, 'zero 5xx reached the client')
  assertIntact(t, r)
})
