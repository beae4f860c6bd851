// End-to-end smoke test, the README way: `npm start`, mint tokens with `npm run token`, then create / list /
// toggle / delete through the gateway on both route styles, check that a second user sees nothing and gets 403
// on the first user's /api/{user_id}/tasks, that the task service refuses a direct request carrying only
// X-User-Id, and stop the stack with Ctrl-C (SIGINT to its process group).
// Prints one line per check and a closing `smoke: N passed, M failed`; exits non-zero on any failure.
// Bounded: every request has a timeout, the whole run a deadline; traffic goes to 127.0.0.1 only.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from './dev-env.js'

const GATEWAY_PORT = Number(process.env.SMOKE_GATEWAY_PORT || 18080)
const TASK_SERVICE_PORT = Number(process.env.SMOKE_TASK_SERVICE_PORT || 13001)
const base = `http://127.0.0.1:${GATEWAY_PORT}`
const RUN_DEADLINE_MS = 120_000

let passed = 0
let failed = 0
function check (name: string, ok: boolean, detail = ''): void {
  if (ok) passed++
  else failed++
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - smoke: ${name}${ok || !detail ? '' : ` (${detail})`}\n`)
}

const dataDir = mkdtempSync(join(tmpdir(), 'todo-smoke-'))
const stack = spawn('npm', ['start'], {
  cwd: repoRoot,
  env: { ...process.env, GATEWAY_PORT: String(GATEWAY_PORT), TASK_SERVICE_PORT: String(TASK_SERVICE_PORT), DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'pipe', 'pipe'],
  detached: true // its own process group, so SIGINT reaches it the way a terminal's Ctrl-C does
})
let stackLog = ''
stack.stdout.on('data', (chunk: Buffer) => { stackLog += chunk.toString() })
stack.stderr.on('data', (chunk: Buffer) => { stackLog += chunk.toString() })
// 'close', not 'exit': 'exit' can come before the last lines the launcher wrote ("[stack] stopped") have
// been read from its stdout; 'close' comes after its output streams have ended.
const stackExited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => stack.once('close', (code, signal) => resolve({ code, signal })))
const killTimer = setTimeout(() => {
  process.stdout.write('smoke: deadline reached, stopping\n')
  try { process.kill(-stack.pid!, 'SIGKILL') } catch { /* already gone */ }
}, RUN_DEADLINE_MS)

function listening (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

function token (user: string): string {
  return execFileSync('npm', ['run', '-s', 'token', '--', user], { cwd: repoRoot, encoding: 'utf8' }).trim()
}

async function call (method: string, path: string, bearer?: string, body?: unknown): Promise<{ status: number, json: unknown, headers: Headers }> {
  const headers: Record<string, string> = {}
  if (bearer) headers.authorization = `Bearer ${bearer}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
  const text = await response.text()
  let json: unknown = null
  try { json = text ? JSON.parse(text) : null } catch { json = text }
  return { status: response.status, json, headers: response.headers }
}

/** The `error.code` of a body in the one error shape both services answer with, else undefined. */
function errorCode (json: unknown): string | undefined {
  const e = (json as { error?: { code?: unknown, message?: unknown, requestId?: unknown } } | null)?.error
  return typeof e?.code === 'string' && typeof e.message === 'string' && typeof e.requestId === 'string' ? e.code : undefined
}

async function waitForReady (): Promise<boolean> {
  const deadline = Date.now() + 90_000
  while (Date.now() < deadline && stack.exitCode === null) {
    if (stackLog.includes('[stack] ready')) return true
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}

async function run (): Promise<void> {
  const ready = await waitForReady()
  check('npm start brings the stack up', ready)
  if (!ready) return

  const health = await call('GET', '/healthz')
  check('GET /healthz → 200', health.status === 200, `got ${health.status}`)
  const anonymous = await call('GET', '/api/tasks')
  check('no token → 401 missing_token', anonymous.status === 401 && errorCode(anonymous.json) === 'missing_token', `got ${anonymous.status} ${JSON.stringify(anonymous.json)}`)
  // What an attacker on the host would try: the task service directly, with a victim's user id.
  const direct = await fetch(`http://127.0.0.1:${TASK_SERVICE_PORT}/tasks`, { headers: { 'x-user-id': 'alice' }, signal: AbortSignal.timeout(10_000) })
  const directBody = await direct.json().catch(() => undefined)
  check('the task service directly, with only X-User-Id → 401 missing_gateway_assertion', direct.status === 401 && errorCode(directBody) === 'missing_gateway_assertion', `got ${direct.status} ${JSON.stringify(directBody)}`)

  const alice = `smoke-alice-${process.pid}`
  const bob = `smoke-bob-${process.pid}`
  const aliceToken = token(alice)
  const bobToken = token(bob)

  for (const prefix of ['/api/tasks', `/api/${alice}/tasks`]) {
    const created = await call('POST', prefix, aliceToken, { title: `buy milk via ${prefix}` })
    const task = created.json as { id?: string, user_id?: string, completed?: boolean }
    check(`${prefix}: create → 201`, created.status === 201 && typeof task.id === 'string', `got ${created.status}`)
    check(`${prefix}: owner is the token's sub`, task.user_id === alice, `got ${task.user_id}`)
    const location = created.headers.get('location') ?? ''
    check(`${prefix}: Location names the public path`, location.startsWith(prefix + '/'), `got ${location}`)

    const list = await call('GET', prefix, aliceToken)
    check(`${prefix}: list shows it`, list.status === 200 && Array.isArray(list.json) && (list.json as { id: string }[]).some((t) => t.id === task.id), `got ${list.status}`)

    const toggled = await call('PATCH', `${prefix}/${task.id}/complete`, aliceToken)
    check(`${prefix}: toggle → completed`, toggled.status === 200 && (toggled.json as { completed?: boolean }).completed === true, `got ${toggled.status}`)

    const bobList = await call('GET', '/api/tasks', bobToken)
    check(`${prefix}: a second user sees none of it`, bobList.status === 200 && Array.isArray(bobList.json) && (bobList.json as unknown[]).length === 0, `got ${bobList.status} ${JSON.stringify(bobList.json)}`)
    const bobRead = await call('GET', `/api/tasks/${task.id}`, bobToken)
    check(`${prefix}: a second user reading it by id → 404 task_not_found`, bobRead.status === 404 && errorCode(bobRead.json) === 'task_not_found', `got ${bobRead.status} ${JSON.stringify(bobRead.json)}`)

    const deleted = await call('DELETE', `${prefix}/${task.id}`, aliceToken)
    check(`${prefix}: delete → 204`, deleted.status === 204, `got ${deleted.status}`)
    const gone = await call('GET', `${prefix}/${task.id}`, aliceToken)
    check(`${prefix}: deleted task → 404`, gone.status === 404, `got ${gone.status}`)
  }

  const forbidden = await call('GET', `/api/${alice}/tasks`, bobToken)
  check("a second user on the first user's /api/{user_id}/tasks → 403 forbidden_user", forbidden.status === 403 && errorCode(forbidden.json) === 'forbidden_user', `got ${forbidden.status}`)
  const invalid = await call('POST', '/api/tasks', aliceToken, { title: 'x'.repeat(201) })
  check('an over-long title → 400 validation_error naming the field', invalid.status === 400 && errorCode(invalid.json) === 'validation_error' &&
    (invalid.json as { error: { message: string } }).error.message === 'title: must be at most 200 characters', `got ${invalid.status} ${JSON.stringify(invalid.json)}`)
}

try {
  await run()
} catch (error) {
  check('smoke run completed', false, (error as Error).message)
}

if (stack.exitCode === null) {
  process.kill(-stack.pid!, 'SIGINT')
  const { code, signal } = await stackExited
  // npm re-raises the SIGINT it was stopped by, so "exit 0 or ended by SIGINT" is a clean stop; what matters
  // is that the launcher stopped both services and nothing is left listening.
  check('Ctrl-C stops the stack cleanly', (code === 0 || signal === 'SIGINT') && stackLog.includes('[stack] stopped'), `code ${code}, signal ${signal}`)
  for (const port of [GATEWAY_PORT, TASK_SERVICE_PORT]) {
    check(`nothing listens on ${port} afterwards`, !(await listening(port)))
  }
} else {
  check('the stack kept running until stopped', false, `exited early with ${stack.exitCode}`)
}
clearTimeout(killTimer)
rmSync(dataDir, { recursive: true, force: true })
if (failed > 0) process.stdout.write('--- stack log ---\n' + stackLog.slice(-6000) + '\n')
process.stdout.write(`smoke: ${passed} passed, ${failed} failed\n`)
process.exit(failed === 0 ? 0 : 1)
