// A bounded multi-user workload against the public gateway, with a model of what each user should own.
//
// Each simulated user runs its operations one after another (so its model is exact), all users run at once.
// Every response is checked as it arrives: a task in a body must belong to the caller (else a cross-user
// leak is counted), statuses must be the expected ones. Afterwards verify() lists every user's tasks
// through the gateway and compares them with the model: a task the model holds but the server lacks is a
// lost write; one the server holds that the model does not know is a phantom.
//
// Under injected faults some outcomes are unknowable (a create whose response was a 502 may or may not
// have committed); such ids are tracked as uncertain and excluded from the phantom/lost comparison, never
// from the leak checks.
import { randomBytes } from 'node:crypto'
import { Agent, request } from 'undici'
import { mintDevToken } from '../../support/tokens.js'
import { checkErrorBody } from '../../task-service/test/error-schema.js'
import { percentile } from '../../support/stats.js'
import type { TapTest } from '../../support/test-context.js'

export interface Task { id: string, user_id: string, title: string, description: string | null, completed: boolean }

export interface WorkloadOptions {
  /** Gateway base URLs (round-robin per request). */
  targets: string[]
  secret: string
  users: number
  /** Stop after this many operations per user… */
  opsPerUser?: number
  /** …or at this deadline (epoch ms), whichever comes first. */
  deadline?: number
  /** Max live tasks per user (older ones get deleted). */
  maxLiveTasks?: number
  /** Statuses that are tolerated without counting as errors (e.g. 502/503/504 while faults are injected). */
  tolerated?: ReadonlySet<number>
  /** Per-request timeout: a request that takes longer counts as a hung request. */
  requestTimeoutMs?: number
  label?: string
  connections?: number
  /** Sends one request (default: undici to the next target). A balancing, retrying client plugs in here. */
  dispatch?: (method: string, path: string, headers: Record<string, string>, body: string | undefined) => Promise<{ statusCode: number, text: string }>
  /** Token for a user (default: an HS256 token signed with `secret`). */
  mintToken?: (sub: string) => Promise<string>
}

export interface WorkloadResult {
  requests: number
  /** Unexpected statuses, network errors and timeouts (tolerated statuses excluded). */
  errors: number
  /** Responses with status >= 500 (tolerated ones included). */
  serverErrors: number
  tolerated: number
  status: Record<string, number>
  hung: number
  leaks: number
  crossUserProbes: number
  latenciesMs: number[]
  errorSamples: string[]
  /** Filled by verify(). */
  lostWrites: number
  /** Rows whose title and description were never sent together (a torn write). */
  partialWrites: number
  phantoms: number
  mismatches: number
  tasksChecked: number
}

interface UserState {
  id: string
  token: string
  tasks: Map<string, Task>
  uncertain: Set<string>
  seq: number
}

export function summary (r: WorkloadResult): string {
  const s = [...r.latenciesMs].sort((a, b) => a - b)
  return `requests=${r.requests} errors=${r.errors} 5xx=${r.serverErrors} tolerated=${r.tolerated} hung=${r.hung} ` +
    `p50=${percentile(s, 50).toFixed(1)}ms p99=${percentile(s, 99).toFixed(1)}ms ` +
    `lostWrites=${r.lostWrites} partialWrites=${r.partialWrites} phantoms=${r.phantoms} mismatches=${r.mismatches} crossUserLeaks=${r.leaks} ` +
    `crossUserProbes=${r.crossUserProbes} tasksChecked=${r.tasksChecked}`
}

/** What every run under load must show, whatever else it tolerates: nothing hung, leaked, lost or made up. */
export function assertIntact (t: Pick<TapTest, 'equal'>, r: WorkloadResult): void {
  t.equal(r.hung, 0, 'no request hung')
  t.equal(r.leaks, 0, 'no cross-user leak')
  t.equal(r.lostWrites, 0, 'no acknowledged write lost')
  t.equal(r.partialWrites, 0, 'no partial write')
  t.equal(r.mismatches, 0, 'every task holds its last acknowledged write')
  t.equal(r.phantoms, 0, 'no task appeared that the client never asked for')
}

export class Workload {
  readonly result: WorkloadResult = {
    requests: 0,
    errors: 0,
    serverErrors: 0,
    tolerated: 0,
    status: {},
    hung: 0,
    leaks: 0,
    crossUserProbes: 0,
    latenciesMs: [],
    errorSamples: [],
    lostWrites: 0,
    partialWrites: 0,
    phantoms: 0,
    mismatches: 0,
    tasksChecked: 0
  }

  readonly users: UserState[] = []
  /** Every task id ever acknowledged, with its owner (for cross-user probes). */
  private readonly owners: Array<{ owner: string, id: string }> = []
  private readonly agent: Agent
  private rr = 0
  private faultsExpected = false

  constructor (readonly opts: WorkloadOptions) {
    this.agent = new Agent({ connections: opts.connections ?? 64, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 4_000 })
  }

  async init (): Promise<void> {
    const run = randomBytes(4).toString('hex')
    for (let i = 0; i < this.opts.users; i++) {
      // Some users get characters that need percent-encoding in the /api/{user_id}/tasks form.
      const id = i % 5 === 4 ? `user ${run} ${i}@example.com` : `user-${run}-${i}`
      const token = this.opts.mintToken !== undefined ? await this.opts.mintToken(id) : await mintDevToken({ secret: this.opts.secret, subject: id, ttlSeconds: 3_600 })
      this.users.push({ id, token, tasks: new Map(), uncertain: new Set(), seq: 0 })
    }
  }

  /** While set, tolerated statuses and network errors make outcomes uncertain instead of failing. */
  setFaults (on: boolean): void {
    this.faultsExpected = on
  }

  async close (): Promise<void> {
    await this.agent.close()
  }

  private target (): string {
    const t = this.opts.targets[this.rr++ % this.opts.targets.length] as string
    return t
  }

  private prefix (u: UserState): string {
    return Math.random() < 0.5 ? '/api/tasks' : `/api/${encodeURIComponent(u.id)}/tasks`
  }

  /** One request; returns status and parsed body, or status 0 on a network error / timeout. */
  async call (u: UserState, method: string, path: string, body?: unknown): Promise<{ status: number, json: unknown, text: string }> {
    const started = performance.now()
    this.result.requests++
    const timeout = this.opts.requestTimeoutMs ?? 15_000
    const headers = { authorization: `Bearer ${u.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }
    const payload = body !== undefined ? JSON.stringify(body) : undefined
    try {
      let st: number
      let text: string
      if (this.opts.dispatch !== undefined) {
        ({ statusCode: st, text } = await this.opts.dispatch(method, path, headers, payload))
      } else {
        const res = await request(this.target() + path, {
          method: method as 'GET',
          dispatcher: this.agent,
          headers,
          body: payload,
          headersTimeout: timeout,
          bodyTimeout: timeout,
          signal: AbortSignal.timeout(timeout + 1_000)
        })
        text = await res.body.text()
        st = res.statusCode
      }
      this.result.latenciesMs.push(performance.now() - started)
      this.result.status[st] = (this.result.status[st] ?? 0) + 1
      if (st >= 500) this.result.serverErrors++
      let json: unknown
      try { json = text === '' ? undefined : JSON.parse(text) } catch { json = undefined }
      this.checkLeak(u, json, text)
      if (st >= 400) this.checkErrorShape(method, path, st, json, text)
      return { status: st, json, text }
    } catch (err) {
      const name = (err as { name?: string, code?: string }).code ?? (err as Error).name
      if (name === 'UND_ERR_HEADERS_TIMEOUT' || name === 'TimeoutError' || name === 'UND_ERR_BODY_TIMEOUT') this.result.hung++
      this.result.status.network = (this.result.status.network ?? 0) + 1
      this.noteError(`${method} ${path}: network ${name}`, true)
      return { status: 0, json: undefined, text: '' }
    }
  }

  /** Every error answer, whoever made it, is the one error shape (components.schemas.Error). */
  private checkErrorShape (method: string, path: string, status: number, json: unknown, text: string): void {
    try {
      checkErrorBody(json)
    } catch {
      this.noteError(`${method} ${path}: ${status} body is not the error shape: ${text.slice(0, 200)}`, false)
    }
  }

  private checkLeak (u: UserState, json: unknown, text: string): void {
    const items = Array.isArray(json) ? json : json !== null && typeof json === 'object' ? [json] : []
    for (const it of items) {
      const owner = (it as { user_id?: unknown }).user_id
      if (owner !== undefined && owner !== u.id) {
        this.result.leaks++
        this.noteError(`LEAK: ${u.id} received a task of ${String(owner)}`, false)
      }
    }
    // Another user's id appearing anywhere in the body is a leak too.
    for (const other of this.users) {
      if (other !== u && text.includes(`"${other.id}"`)) {
        this.result.leaks++
        this.noteError(`LEAK: ${u.id} response names ${other.id}`, false)
      }
    }
  }

  private noteError (msg: string, faultable: boolean): void {
    if (faultable && this.faultsExpected) {
      this.result.tolerated++
      return
    }
    this.result.errors++
    if (this.result.errorSamples.length < 20) this.result.errorSamples.push(msg)
  }

  /** Checks a status; returns true when it is the expected one. Tolerated statuses (under faults) return false. */
  private expect (u: UserState, res: { status: number, text: string }, want: number | number[], what: string): boolean {
    const got = res.status
    const ok = Array.isArray(want) ? want.includes(got) : got === want
    if (ok) return true
    if (got === 0) return false // counted already
    if (this.opts.tolerated?.has(got) === true || (this.faultsExpected && got >= 500)) {
      this.result.tolerated++
      return false
    }
    this.noteError(`${u.id} ${what}: status ${got} ${res.text.slice(0, 160)}`, false)
    return false
  }

  /** A 404 for a task whose delete had an unknown outcome: that delete did commit. */
  private gone (u: UserState, id: string, status: number): boolean {
    if (status !== 404 || !u.uncertain.has(id)) return false
    u.tasks.delete(id)
    u.uncertain.delete(id)
    return true
  }

  /** A 2xx answer is authoritative for that task again. */
  private settle (u: UserState, got: Task): void {
    u.tasks.set(got.id, got)
    u.uncertain.delete(got.id)
  }

  private pick (u: UserState): Task | undefined {
    if (u.tasks.size === 0) return undefined
    const i = Math.floor(Math.random() * u.tasks.size)
    let n = 0
    for (const t of u.tasks.values()) if (n++ === i) return t
    return undefined
  }

  private async step (u: UserState): Promise<void> {
    const r = Math.random()
    const max = this.opts.maxLiveTasks ?? 40
    const existing = this.pick(u)
    if (existing === undefined || (r < 0.35 && u.tasks.size < max)) {
      const title = `${u.id} #${u.seq++} ${randomBytes(3).toString('hex')}`
      const res = await this.call(u, 'POST', this.prefix(u), { title, description: Math.random() < 0.5 ? null : 'd' + u.seq })
      if (this.expect(u, res, 201, 'create')) {
        const task = res.json as Task
        if (task.title !== title || task.user_id !== u.id) this.noteError(`${u.id} create returned ${res.text}`, false)
        u.tasks.set(task.id, task)
        this.owners.push({ owner: u.id, id: task.id })
      } else {
        // The title is unique: if the create committed anyway, verify() recognizes it.
        u.uncertain.add('title:' + title)
      }
      return
    }
    if (r < 0.5) {
      const res = await this.call(u, 'GET', this.prefix(u) + '?limit=200')
      if (this.expect(u, res, 200, 'list') && !this.faultsExpected && u.uncertain.size === 0) {
        const ids = new Set((res.json as Task[]).map((x) => x.id))
        if (ids.size !== u.tasks.size || [...u.tasks.keys()].some((id) => !ids.has(id))) {
          this.noteError(`${u.id} list does not match the model (${ids.size} vs ${u.tasks.size})`, false)
        }
      }
      return
    }
    if (r < 0.6) {
      const res = await this.call(u, 'GET', `${this.prefix(u)}/${existing.id}`)
      if (this.gone(u, existing.id, res.status)) return
      if (this.expect(u, res, 200, 'read')) {
        const got = res.json as Task
        if (!u.uncertain.has(existing.id) && (got.title !== existing.title || got.completed !== existing.completed)) this.noteError(`${u.id} read stale task ${existing.id}`, false)
        this.settle(u, got)
      }
      return
    }
    if (r < 0.7) {
      const title = `${u.id} put ${u.seq++}`
      // The description names the title: a row holding one without the other would be a partial write.
      const res = await this.call(u, 'PUT', `${this.prefix(u)}/${existing.id}`, { title, description: 'for ' + title, completed: existing.completed })
      if (this.gone(u, existing.id, res.status)) return
      if (this.expect(u, res, 200, 'replace')) this.settle(u, res.json as Task)
      else u.uncertain.add(existing.id)
      return
    }
    if (r < 0.8) {
      const res = await this.call(u, 'PATCH', `${this.prefix(u)}/${existing.id}/complete`)
      if (this.gone(u, existing.id, res.status)) return
      if (this.expect(u, res, 200, 'toggle')) {
        const got = res.json as Task
        if (got.completed === existing.completed && !u.uncertain.has(existing.id)) this.noteError(`${u.id} toggle did not toggle`, false)
        this.settle(u, got)
      } else {
        u.uncertain.add(existing.id)
      }
      return
    }
    if (r < 0.9) {
      const res = await this.call(u, 'DELETE', `${this.prefix(u)}/${existing.id}`)
      if (res.status === 404 && u.uncertain.has(existing.id)) {
        // An earlier delete whose answer was lost did commit.
        u.tasks.delete(existing.id)
        u.uncertain.delete(existing.id)
      } else if (this.expect(u, res, 204, 'delete')) {
        u.tasks.delete(existing.id)
        u.uncertain.delete(existing.id)
      } else {
        u.uncertain.add(existing.id)
      }
      return
    }
    // Cross-user probe: another user's task id must look missing (404), for read, write and delete alike.
    const victim = this.owners[Math.floor(Math.random() * this.owners.length)]
    if (victim === undefined || victim.owner === u.id) return
    this.result.crossUserProbes++
    const which = Math.random()
    const res = which < 0.4
      ? await this.call(u, 'GET', `/api/tasks/${victim.id}`)
      : which < 0.7
        ? await this.call(u, 'PATCH', `/api/tasks/${victim.id}`, { title: 'stolen' })
        : which < 0.85
          ? await this.call(u, 'PATCH', `/api/tasks/${victim.id}/complete`)
          : await this.call(u, 'DELETE', `/api/tasks/${victim.id}`)
    this.expect(u, res, 404, `cross-user probe on ${victim.owner}'s task`)
  }

  async runUser (u: UserState): Promise<void> {
    const ops = this.opts.opsPerUser ?? Number.POSITIVE_INFINITY
    // The deadline is read on every step: a test may bring it forward while the load runs.
    for (let i = 0; i < ops && Date.now() < (this.opts.deadline ?? Number.POSITIVE_INFINITY); i++) await this.step(u)
  }

  async run (): Promise<WorkloadResult> {
    await Promise.all(this.users.map(async (u) => { await this.runUser(u) }))
    return this.result
  }

  /** Lists every user's tasks through the gateway (all pages) and compares with the model. */
  async verify (): Promise<WorkloadResult> {
    const saved = this.faultsExpected
    this.faultsExpected = false
    for (const u of this.users) {
      const server = new Map<string, Task>()
      let path: string | undefined = '/api/tasks?limit=200'
      let complete = true
      for (let page = 0; path !== undefined && page < 100; page++) {
        // A transient 5xx (e.g. a replica restarting) is retried; a listing that never completes is an
        // error, and that user's comparison is skipped rather than reported as lost writes.
        let res: Awaited<ReturnType<typeof request>> | undefined
        let text = ''
        for (let attempt = 0; attempt < 20; attempt++) {
          res = await request(this.target() + path, { dispatcher: this.agent, headers: { authorization: `Bearer ${u.token}` } })
          text = await res.body.text()
          if (res.statusCode < 500) break
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
        if (res === undefined || res.statusCode !== 200) {
          this.noteError(`verify ${u.id}: status ${res?.statusCode ?? 0}`, false)
          complete = false
          break
        }
        const list = JSON.parse(text) as Task[]
        this.checkLeak(u, list, text)
        for (const x of list) server.set(x.id, x)
        const link = res.headers.link
        const next = typeof link === 'string' ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined
        path = next === undefined ? undefined : next.startsWith('http') ? new URL(next).pathname + new URL(next).search : next
      }
      if (!complete) continue
      for (const got of server.values()) {
        const whole = got.description === null || /^d\d+$/.test(got.description) || got.description === 'for ' + got.title
        if (!whole) {
          this.result.partialWrites++
          this.noteError(`PARTIAL: ${u.id} task ${got.id}: ${JSON.stringify(got)}`, false)
        }
      }
      for (const [id, want] of u.tasks) {
        this.result.tasksChecked++
        const got = server.get(id)
        if (got === undefined) {
          if (!u.uncertain.has(id)) {
            this.result.lostWrites++
            this.noteError(`LOST: ${u.id} task ${id} (${want.title})`, false)
          }
          continue
        }
        if (!u.uncertain.has(id) && (got.title !== want.title || got.completed !== want.completed || got.description !== want.description)) {
          this.result.mismatches++
          this.noteError(`MISMATCH: ${u.id} task ${id}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`, false)
        }
      }
      for (const [id, got] of server) {
        if (u.tasks.has(id) || u.uncertain.has(id) || u.uncertain.has('title:' + got.title)) continue
        this.result.phantoms++
        this.noteError(`PHANTOM: ${u.id} has unknown task ${id} (${got.title})`, false)
      }
    }
    this.faultsExpected = saved
    return this.result
  }
}
