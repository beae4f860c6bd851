// The real entry point as a child process: bad config or an unreachable database → one line on stderr and exit 1;
// SIGTERM → in-flight requests finish, then a clean exit 0.
import { spawn, type ChildProcess } from 'node:child_process'
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { freePort } from '../../support/ports.js'
import { assertionFor, createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchemaName } from './helpers.js'
import { ASSERTION_KEYS } from '../../support/tokens.js'

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))

interface Run {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

function start (env: Record<string, string>): Run {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !['PORT', 'HOST', 'DATABASE_URL', 'DATA_DIR', 'LOG_LEVEL', 'METRICS_HOST', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'ALLOWED_HOSTS', 'GATEWAY_ASSERTION_PUBLIC_KEY'].includes(k))
  )
  // The public half of the tests' assertion key pair, as a docker env file carries it: one line, \n escapes.
  base.GATEWAY_ASSERTION_PUBLIC_KEY = ASSERTION_KEYS.publicKeyPem.replace(/\n/g, '\\n')
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    // Metrics off unless a test asks: parallel test processes must not compete for the default metrics port.
    env: { ...base, METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** stderr without Node's own deprecation/experimental warnings. */
const ownLines = (stderr: string): string[] =>
  stderr.split('\n').filter((l) => l !== '' && !/Warning|--trace-warnings|nodedir/.test(l))

async function failsWith (t: Test, env: Record<string, string>, pattern: RegExp): Promise<string> {
  const run = start(env)
  const code = await run.exited
  t.equal(code, 1, 'exit code 1')
  const lines = ownLines(run.stderr())
  t.equal(lines.length, 1, `one line on stderr: ${JSON.stringify(lines)}`)
  t.match(lines[0], pattern)
  t.notMatch(run.stdout(), /listening/i, 'never listened')
  return lines[0] ?? ''
}

// Each spawn costs a Node start plus TypeScript loading, so: one bad-config case here (the others are unit tests of
// loadConfig in config.test.ts) and one unreachable database, run side by side.
t.test('invalid configuration, or an unreachable DATABASE_URL → one clear line, exit 1', async (t) => {
  const [, , line] = await Promise.all([
    failsWith(t, { PORT: 'eighty' }, /^task-service: invalid configuration: PORT must be an integer/),
    failsWith(t, { GATEWAY_ASSERTION_PUBLIC_KEY: '' }, /^task-service: invalid configuration: GATEWAY_ASSERTION_PUBLIC_KEY is not set: .*npm run keys.*openssl genpkey -algorithm ed25519/),
    failsWith(
      t,
      { DATABASE_URL: 'postgres://app:hunter2@127.0.0.1:1/tasks', PORT: '0' },
      /^task-service: cannot use PostgreSQL at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/tasks \(DATABASE_URL\): .*ECONNREFUSED/
    )
  ])
  t.notMatch(line, /hunter2/, 'the password is not printed')
})

function listeningPort (run: Run): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(run.stdout())
      if (m) {
        clearInterval(timer)
        resolve(Number(m[1]))
      }
    }, 50)
    void run.exited.then((code) => {
      clearInterval(timer)
      reject(new Error(`server exited early (${code}): ${run.stderr()}`))
    })
  })
}

function post (port: number, body: string, assertion: string): { req: http.ClientRequest; response: Promise<{ status: number; body: string }> } {
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/tasks',
    // Expect: 100-continue: Node's server answers 100 Continue just as it hands the request to the app,
    // so the client's 'continue' event tells the test that the request is in flight.
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-user-id': 'graceful', 'x-gateway-assertion': assertion, expect: '100-continue' }
  })
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let data = ''
      res.on('data', (d: Buffer) => (data += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }))
    })
    req.on('error', reject)
  })
  return { req, response }
}

t.test('SIGTERM: the in-flight request completes, then the process exits 0', async (t) => {
  const metricsPort = await freePort()
  const env: Record<string, string> = { PORT: '0', LOG_LEVEL: 'info', METRICS_PORT: String(metricsPort) }
  if (TEST_DATABASE_URL) {
    const schema = uniqueSchemaName()
    await createSchema(schema)
    t.teardown(() => dropSchema(schema))
    const url = new URL(TEST_DATABASE_URL)
    url.searchParams.set('options', `-c search_path=${schema}`)
    env.DATABASE_URL = url.toString()
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'task-service-server-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    env.DATA_DIR = dir
  }
  const run = start(env)
  t.teardown(() => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL')
  })
  const port = await listeningPort(run)
  // Metrics on their own listener, never on the API port.
  const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(scrape.status, 200, 'the metrics listener answers')
  t.match(await scrape.text(), /^process_cpu_user_seconds_total /m)
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'the API port does not serve /metrics')
  t.match(run.stdout(), /"metrics":"http:\/\/127\.0\.0\.1:\d+\/metrics".*metrics listener started/)

  const body = JSON.stringify({ title: 'in flight when SIGTERM arrived' })
  const { req, response } = post(port, body, await assertionFor('graceful'))
  // Once the server has taken the request (100 Continue), send half of the body, SIGTERM, then the rest.
  const accepted = new Promise((resolve) => req.once('continue', resolve))
  req.flushHeaders()
  await accepted
  req.write(body.slice(0, 10))
  run.child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 200))
  req.end(body.slice(10))
  const res = await response
  t.equal(res.status, 201, 'the in-flight request was served')
  t.match(JSON.parse(res.body), { title: 'in flight when SIGTERM arrived', user_id: 'graceful' })
  t.equal(await run.exited, 0, 'clean exit')
  t.match(run.stdout(), /shutting down/)
  t.equal(ownLines(run.stderr()).length, 0, 'nothing on stderr')
  await t.rejects(fetch(`http://127.0.0.1:${metricsPort}/metrics`), 'the metrics listener closed with the process')
})

async function walk (path: string): Promise<{ path: string; mode: number; dir: boolean }[]> {
  const stats = await lstat(path)
  const here = { path, mode: stats.mode & 0o777, dir: stats.isDirectory() }
  if (!stats.isDirectory()) return [here]
  const below = await Promise.all((await readdir(path)).map((name) => walk(join(path, name))))
  return [here, ...below.flat()]
}

t.test('started as in production: X-User-Id alone gets 401, a foreign Host 421, and DATA_DIR is owner-only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'task-service-modes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const run = start({ PORT: '0', LOG_LEVEL: 'info', DATA_DIR: dataDir })
  t.teardown(() => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL')
  })
  const base = `http://127.0.0.1:${await listeningPort(run)}`
  const unsigned = await fetch(`${base}/tasks`, { headers: { 'x-user-id': 'victim' } })
  t.equal(unsigned.status, 401)
  t.match(await unsigned.json(), { error: { code: 'missing_gateway_assertion' } })
  const created = await fetch(`${base}/tasks`, {
    method: 'POST',
    headers: { 'x-user-id': 'owner', 'x-gateway-assertion': await assertionFor('owner'), 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'written to disk' })
  })
  t.equal(created.status, 201, 'a signed request is served')
  // DNS rebinding: the browser sends the attacker's name as Host.
  const rebound = await new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: new URL(base).port, path: '/tasks', headers: { host: 'attacker.example:3001', 'x-user-id': 'owner' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    }).on('error', reject)
  })
  t.equal(rebound, 421)
  run.child.kill('SIGTERM')
  t.equal(await run.exited, 0)
  if (TEST_DATABASE_URL) return
  const entries = await walk(dataDir)
  t.ok(entries.length > 50, `PGlite wrote its files (${entries.length})`)
  t.equal(entries[0]?.mode, 0o700, 'DATA_DIR is 0700')
  const open = entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`)
  t.same(open, [], 'nothing under DATA_DIR is readable or writable by group or other')
})
