// Fresh-token verification cost: jose (this tree) against the hand-written node:crypto verifier (the
// commit before the switch), in one run. Two modes:
//
//   npm run bench:jwt [-- --baseline <git rev>] [--tokens N] [--rounds R] [--concurrency C]
//     The authenticators alone, in one process: every round verifies the same N distinct tokens (no
//     verification cache, so each one is a full signature and claim check) with the baseline's authenticator
//     and with this tree's, in turn, swapping which goes first. CPU is process.cpuUsage() (all threads, so
//     WebCrypto's thread-pool work counts). The baseline's authenticator, key import and error module are
//     read with `git show` into a temporary directory and loaded from there.
//
//   npm run bench:jwt -- --baseline-tree <dir> [--requests N] [--rounds R] [--connections 1,16] [--users U]
//                        [--callgrind]
//     Whole gateways: this tree's gateway beside the one in <dir> (a checkout of the baseline commit with its
//     dependencies installed, e.g. `git worktree add --detach <dir> <rev> && npm ci` there; its
//     gateway/dist is built when missing), both `node gateway/dist/server.js` on the proxy core, the
//     upstream and the load generator (wrk; autocannon without it) on the other. Four token shapes: a fresh EdDSA (JWKS) or HS256 token per
//     request (a cache miss: full verification; tokens for U users, 100 by default), and one repeated EdDSA or HS256 token per connection (a
//     verification-cache hit). Each window sends N requests at one concurrency to one gateway; windows
//     are interleaved (baseline then this tree, swapped every round). The figure is the gateway process's
//     CPU time (utime + stime of all threads, /proc/<pid>/stat) per request; medians of the rounds.
//     --callgrind instead runs each gateway under `valgrind --tool=callgrind` and counts the instructions
//     (all threads) executed for N requests after a warm-up (callgrind_control zeroes and dumps the
//     counters around them): repeatable on a busy machine, but blind to the kernel (system calls, context
//     switches), which is where a thread-pool hand-off costs most.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createAuthenticator } from '../gateway/src/pipeline/authenticate.js'
import { importJwk, type VerificationKey } from '../gateway/src/keys/import.js'
import { startJwks } from '../support/jwks-server.js'
import { median } from '../support/stats.js'
import { hotSpots, readProfiles, type CpuProfile } from './lib/cpu-profile.js'
import { buildWorkspaceIfStale, gatewayEntry, startGateway } from './lib/gateway.js'
import { runClosedLoop } from './lib/load.js'
import { processCpuMicros } from './lib/proc-stats.js'
import { hasTaskset, LOAD_CORE, prepareLoadGenerator, restoreSessionPriority, stopAll } from './lib/processes.js'
import { createKeys, gatewayAuth, mintPool, mintToken, type TokenAlgorithm } from './lib/tokens.js'
import { markdownTable } from './lib/table.js'
import { startUpstream, type HttpTarget } from './lib/upstream.js'

// The last commit whose gateway verified tokens with node:crypto by hand.
const DEFAULT_BASELINE = '5fbef13'
const ISSUER = 'https://auth.bench.test'

interface Verifier { verifyToken: (token: string) => unknown }

const { values } = parseArgs({
  options: {
    baseline: { type: 'string', default: DEFAULT_BASELINE },
    tokens: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '1' },
    'baseline-tree': { type: 'string' },
    requests: { type: 'string', default: '4000' },
    connections: { type: 'string', default: '1,16' },
    users: { type: 'string', default: '100' },
    shapes: { type: 'string', default: 'EdDSA fresh,HS256 fresh,EdDSA repeated,HS256 repeated' },
    'cpu-prof': { type: 'boolean', default: false },
    callgrind: { type: 'boolean', default: false }
  }
})
const N = Number(values.tokens)
const ROUNDS = Number(values.rounds)
const CONCURRENCY = Number(values.concurrency)
if (![N, ROUNDS, CONCURRENCY].every((n) => Number.isInteger(n) && n > 0)) throw new Error('--tokens, --rounds and --concurrency take positive whole numbers')

const repoRoot = new URL('..', import.meta.url)
async function loadBaseline (rev: string): Promise<{ createAuthenticator: typeof createAuthenticator, importJwk: (jwk: unknown, algs: string[]) => unknown, dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'jwt-verify-baseline-'))
  for (const file of ['pipeline/authenticate.ts', 'keys/import.ts', 'errors.ts']) {
    const text = execFileSync('git', ['show', `${rev}:gateway/src/${file}`], { cwd: repoRoot, encoding: 'utf8' })
    mkdirSync(join(dir, file, '..'), { recursive: true })
    writeFileSync(join(dir, file), text)
  }
  const auth = await import(pathToFileURL(join(dir, 'pipeline/authenticate.ts')).href)
  const keys = await import(pathToFileURL(join(dir, 'keys/import.ts')).href)
  return { createAuthenticator: auth.createAuthenticator, importJwk: keys.importJwk, dir }
}

async function runAll (v: Verifier, tokens: string[]): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < tokens.length) {
      const token = tokens[next++] as string
      await v.verifyToken(token)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
}

async function measure (v: Verifier, tokens: string[]): Promise<{ cpuUs: number, wallUs: number }> {
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await runAll(v, tokens)
  const wall = Number(process.hrtime.bigint() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { cpuUs: (cpu.user + cpu.system) / tokens.length, wallUs: wall / tokens.length }
}

async function verifierAb (): Promise<void> {
  const baseline = await loadBaseline(values.baseline)
  try {
    const keys = await createKeys(ISSUER)
    const jwk = keys.eddsaPublicJwk
    const oldKey = baseline.importJwk(jwk, ['EdDSA'])
    const newKey = await importJwk(jwk, ['EdDSA']) as VerificationKey
    const common = { secret: Buffer.from(keys.hmacSecret), hmacAlgorithms: ['HS256'] as const, asymmetricAlgorithms: ['EdDSA'] as const, issuer: ISSUER, audience: [ISSUER], clockToleranceSec: 5 }
    const impls: Record<'baseline' | 'jose', Verifier> = {
      baseline: baseline.createAuthenticator({ ...common, keys: { resolve: () => oldKey as VerificationKey } }),
      jose: createAuthenticator({ ...common, keys: { resolve: () => newKey } })
    }

    const rows: Array<Array<string | number>> = []
    for (const alg of ['EdDSA', 'HS256'] as const) {
      const tokens = await Promise.all(Array.from({ length: N }, async (_, i) => await mintToken(keys, alg, i)))
      for (const v of Object.values(impls)) await measure(v, tokens.slice(0, Math.min(500, N))) // warm-up
      const cpu: Record<string, number[]> = { baseline: [], jose: [] }
      const wall: Record<string, number[]> = { baseline: [], jose: [] }
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? ['baseline', 'jose'] as const : ['jose', 'baseline'] as const
        for (const name of order) {
          const m = await measure(impls[name], tokens)
          cpu[name]?.push(m.cpuUs)
          wall[name]?.push(m.wallUs)
        }
      }
      const b = { cpu: median(cpu.baseline ?? []), wall: median(wall.baseline ?? []) }
      const j = { cpu: median(cpu.jose ?? []), wall: median(wall.jose ?? []) }
      rows.push([alg, 'hand-written (baseline)', b.cpu.toFixed(1), b.wall.toFixed(1), ''])
      rows.push([alg, 'jose', j.cpu.toFixed(1), j.wall.toFixed(1), `${((j.cpu / b.cpu - 1) * 100).toFixed(0)} %`])
    }
    process.stdout.write(`node ${process.version}, ${N} fresh tokens × ${ROUNDS} rounds per build, concurrency ${CONCURRENCY}, baseline ${values.baseline}; medians of the rounds\n\n`)
    process.stdout.write(markdownTable(['alg', 'verifier', 'CPU µs / token', 'wall µs / token', 'CPU vs baseline'], rows, [false, false, true, true, true]) + '\n')
  } finally {
    rmSync(baseline.dir, { recursive: true, force: true })
  }
}

type Shape = 'EdDSA fresh' | 'HS256 fresh' | 'EdDSA repeated' | 'HS256 repeated'
const SHAPES: ReadonlyArray<{ shape: Shape, alg: TokenAlgorithm, fresh: boolean }> = [
  { shape: 'EdDSA fresh', alg: 'EdDSA', fresh: true },
  { shape: 'HS256 fresh', alg: 'HS256', fresh: true },
  { shape: 'EdDSA repeated', alg: 'EdDSA', fresh: false },
  { shape: 'HS256 repeated', alg: 'HS256', fresh: false }
]
const BUILDS = ['baseline', 'jose'] as const
type Build = typeof BUILDS[number]

/** Builds the baseline tree's gateway with that tree's own compiler when its dist/ is missing. */
function buildBaseline (tree: string): string {
  const entry = join(tree, 'gateway', 'dist', 'server.js')
  if (!existsSync(entry)) {
    const result = spawnSync(join(tree, 'node_modules', '.bin', 'tsc'), ['-p', join(tree, 'gateway', 'tsconfig.build.json')], { cwd: tree, encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`baseline build failed:\n${(result.stdout + result.stderr).slice(-3000)}`)
  }
  return entry
}

const hasWrk = spawnSync('wrk', ['-v'], { stdio: 'ignore' }).error === undefined

// wrk sends the i-th token of a file with the i-th request: a fresh token per request without a JavaScript
// client on the load core (autocannon cannot saturate a gateway there). After a fixed count the script says
// so and the harness interrupts wrk (SIGINT ends its run early and it still prints its totals).
const WRK_SCRIPT = `
local tokens, limit, sent, done = {}, 0, 0, 0
function init (args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  limit = tonumber(args[2])
end
function request ()
  sent = sent + 1
  return wrk.format("GET", nil, { Authorization = "Bearer " .. tokens[((sent - 1) % #tokens) + 1] })
end
function response ()
  done = done + 1
  if done == limit then
    io.write("window complete\\n")
    io.flush()
  end
end
`

interface Load { requests: number, seconds: number, errors: number }

/** One fixed-count window with wrk (pinned to the load core), or autocannon where wrk is missing. */
async function drive (url: string, tokens: string[], connections: number, amount: number, workDir: string): Promise<Load> {
  if (!hasWrk) {
    const load = await runClosedLoop({ url, connections, amount, tokenFor: (i) => tokens[i % tokens.length] as string })
    return { requests: load.requests, seconds: load.seconds, errors: load.errors }
  }
  const script = join(workDir, 'tokens.lua')
  const tokenFile = join(workDir, 'tokens.txt')
  if (!existsSync(script)) writeFileSync(script, WRK_SCRIPT)
  writeFileSync(tokenFile, tokens.join('\n') + '\n')
  const args = ['-t1', `-c${connections}`, '-d120s', '-s', script, url, '--', tokenFile, String(amount)]
  const [cmd, argv] = hasTaskset ? ['taskset', ['-c', String(LOAD_CORE), 'wrk', ...args]] : ['wrk', args]
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    if (child.signalCode === null && out.includes('window complete')) child.kill('SIGINT')
  })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const m = /(\d+) requests in ([\d.]+)(ms|s|m)\b/.exec(out)
  if (code !== 0 || m === null) throw new Error(`wrk failed (exit ${code}):\n${out}`)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    requests: Number(m[1]),
    seconds: Number(m[2]) * (m[3] === 'ms' ? 0.001 : m[3] === 'm' ? 60 : 1),
    errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) + (sock === null ? 0 : sock.slice(1).reduce((sum, x) => sum + Number(x), 0))
  }
}

// vgdb (behind callgrind_control) finds a valgrind process by FIFO names that include $USER and $HOST as
// that process saw them; the gateway's HOST is its listen address.
const VGDB_ENV = { ...process.env, HOST: '127.0.0.1' }

/**
 * Asks callgrind for a dump and reads its instruction total (all threads: callgrind runs them one at a
 * time). Dumps go to <outFile>.<n>; the n-th is waited for, since valgrind writes it when it next polls.
 */
async function dumpInstructions (pid: number, outFile: string, n: number): Promise<number> {
  const said = execFileSync('callgrind_control', ['-d', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: VGDB_ENV })
  const file = `${outFile}.${n}`
  for (let waited = 0; !existsSync(file) || !/^totals: \d+/m.test(readFileSync(file, 'utf8')); waited += 100) {
    if (waited > 60_000) throw new Error(`callgrind wrote no ${file}; callgrind_control said: ${said}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return Number(/^totals: (\d+)/m.exec(readFileSync(file, 'utf8'))?.[1])
}

async function gatewayAb (tree: string): Promise<number> {
  const requests = Number(values.requests)
  const connectionLevels = (values.connections ?? '').split(',').map(Number)
  if (!Number.isInteger(requests) || requests < 1 || !connectionLevels.every((c) => Number.isInteger(c) && c > 0)) throw new Error('--requests takes a positive whole number, --connections a comma-separated list of them')
  const users = Number(values.users)
  if (!Number.isInteger(users) || users < 1) throw new Error('--users takes a positive whole number')
  const shapes = SHAPES.filter((s) => (values.shapes ?? '').split(',').includes(s.shape))
  if (shapes.length === 0) throw new Error(`--shapes takes a comma-separated list of: ${SHAPES.map((s) => s.shape).join(', ')}`)
  const cpuProf = values['cpu-prof'] === true
  const callgrind = values.callgrind === true
  const rounds = callgrind ? 1 : ROUNDS
  const baselineRev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: tree, encoding: 'utf8' }).trim()
  const ownRev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' }).trim()
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'gateway/src'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' }).trim() !== ''
  buildWorkspaceIfStale('gateway')
  const entries: Record<Build, string> = { baseline: buildBaseline(tree), jose: gatewayEntry }
  prepareLoadGenerator()
  const loadBefore = loadavg()[0] as number
  const workDir = mkdtempSync(join(tmpdir(), 'jwt-gateway-ab-'))
  try {
    const jwks = await startJwks()
    const keys = await createKeys(jwks.origin)
    jwks.keys = [keys.eddsaPublicJwk]
    const upstream = await startUpstream('upstream', workDir, LOAD_CORE)
    const gateways = new Map<Build, HttpTarget & { cgOut: string, dumps: number }>()
    for (const build of BUILDS) {
      const cgOut = join(workDir, `${build}.callgrind`)
      gateways.set(build, {
        ...await startGateway({
          name: `gateway-${build}`,
          upstreamUrl: upstream.baseUrl,
          ...gatewayAuth(keys, jwks.url),
          logDir: workDir,
          logLevel: 'info',
          entry: entries[build],
          ...(cpuProf ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${join(workDir, `profile-${build}`)}`] } : {}),
          // Under valgrind every request is slow: load shedding would refuse them, so it is off there.
          ...(callgrind
            ? { launcher: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${cgOut}`], readyTimeoutMs: 300_000, env: { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION: '0' } }
            : {})
        }),
        cgOut,
        dumps: 0
      })
    }

    // Token pools: one repeated token per connection; fresh tokens never sent before (the same pool goes to
    // both gateways, each with its own cache). A client may send a request or two past the count. Fresh
    // tokens cycle through a bounded set of users, as a busy service's are: the figure is the cost of
    // verifying, not that of the gateway's once-per-user work (its identity assertion is signed once per
    // user and cached, and the baseline commit has none).
    const repeated = new Map<TokenAlgorithm, string[]>()
    for (const alg of ['EdDSA', 'HS256'] as const) repeated.set(alg, await mintPool(keys, alg, Math.max(...connectionLevels)))
    let nextUser = 1_000_000
    const freshPool = async (alg: TokenAlgorithm, count: number): Promise<string[]> => {
      const pool = await mintPool(keys, alg, count, nextUser, users)
      nextUser += count
      return pool
    }

    const window = async (build: Build, alg: TokenAlgorithm, tokens: string[], connections: number, amount: number): Promise<{ cost: number, requests: number, coreUse: number, errors: number }> => {
      const gateway = gateways.get(build) as HttpTarget & { cgOut: string, dumps: number }
      const pid = gateway.managed.pid
      if (callgrind) execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore', env: VGDB_ENV })
      const cpu0 = processCpuMicros(pid)
      const load = await drive(`${gateway.baseUrl}/api/tasks`, tokens, connections, amount, workDir)
      const cpu = processCpuMicros(pid) - cpu0
      let cost = cpu / load.requests
      if (callgrind) cost = await dumpInstructions(pid, gateway.cgOut, ++gateway.dumps) / load.requests
      return { cost, requests: load.requests, coreUse: cpu / (load.seconds * 1e6), errors: load.errors }
    }

    // Warm-up: JIT, upstream connections, JWKS, for every build and shape.
    const warmup = callgrind ? 200 : 1000
    for (const build of BUILDS) {
      for (const { alg, fresh } of shapes) {
        const tokens = fresh ? await freshPool(alg, warmup + 64) : repeated.get(alg) as string[]
        const w = await window(build, alg, tokens, Math.max(...connectionLevels), warmup)
        if (w.errors > 0) throw new Error(`${build} gateway answered ${w.errors} of ${w.requests} ${alg} warm-up requests with an error (see ${workDir})`)
      }
    }

    const results = new Map<string, Array<{ cost: number, coreUse: number }>>()
    const key = (build: Build, shape: Shape, connections: number): string => `${build}|${shape}|${connections}`
    let errors = 0
    for (let round = 1; round <= rounds; round++) {
      for (const connections of connectionLevels) {
        for (const { shape, alg, fresh } of shapes) {
          const tokens = fresh ? await freshPool(alg, requests + 4 * connections) : repeated.get(alg) as string[]
          const order = round % 2 === 1 ? BUILDS : [...BUILDS].reverse()
          for (const build of order) {
            const w = await window(build, alg, tokens, connections, requests)
            errors += w.errors
            const list = results.get(key(build, shape, connections)) ?? []
            list.push({ cost: w.cost, coreUse: w.coreUse })
            results.set(key(build, shape, connections), list)
            console.log(`round ${round} c=${connections} ${shape.padEnd(14)} ${build.padEnd(8)} ${callgrind ? `${Math.round(w.cost)} instructions/req` : `${w.cost.toFixed(1)} µs/req  core ${(w.coreUse * 100).toFixed(0)} %`}${w.errors > 0 ? `  ERRORS ${w.errors}` : ''}`)
          }
        }
      }
    }

    const unit = callgrind ? 'instructions / request' : 'CPU µs / request (median)'
    const rows: Array<Array<string | number>> = []
    for (const connections of connectionLevels) {
      for (const { shape } of shapes) {
        const base = median((results.get(key('baseline', shape, connections)) ?? []).map((r) => r.cost))
        for (const build of BUILDS) {
          const mine = results.get(key(build, shape, connections)) ?? []
          const cost = median(mine.map((r) => r.cost))
          rows.push([
            shape,
            connections,
            build === 'baseline' ? `hand-written (${baselineRev})` : `jose (${ownRev}${dirty ? '+' : ''})`,
            callgrind ? Math.round(cost).toLocaleString('en-US') : cost.toFixed(1),
            ...(callgrind ? [] : [mine.map((r) => r.cost.toFixed(1)).join(' / '), `${Math.round(Math.min(...mine.map((r) => r.coreUse)) * 100)} %`]),
            build === 'baseline' ? '' : `${cost >= base ? '+' : ''}${((cost / base - 1) * 100).toFixed(0)} %`
          ])
        }
      }
    }
    process.stdout.write(`\nnode ${process.version}; ${rounds} interleaved round(s) × ${requests} requests per window, ${hasWrk ? 'wrk' : 'autocannon'}; ${hasTaskset ? 'gateways on core 1, load generator and upstream on core 0' : 'not pinned (no taskset)'}; 1-minute load average ${loadBefore.toFixed(1)} at the start, ${(loadavg()[0] as number).toFixed(1)} at the end\n\n`)
    process.stdout.write(markdownTable(
      ['token', 'in flight', 'gateway', unit, ...(callgrind ? [] : ['rounds', 'min core use']), 'vs baseline'],
      rows,
      [false, true, false, true, ...(callgrind ? [] : [false, true]), true]
    ) + '\n')
    if (errors > 0) process.stdout.write(`\n${errors} requests failed: the figures are not comparable.\n`)
    if (cpuProf) {
      await stopAll() // each gateway writes its profile on exit
      for (const build of BUILDS) {
        const { totalMs, spots, packages } = hotSpots(readProfiles(join(workDir, `profile-${build}`))[0] as CpuProfile, 25)
        process.stdout.write(`\n${build} gateway, whole run (warm-up included): ${Math.round(totalMs)} ms of samples\n\n`)
        process.stdout.write(markdownTable(['self ms', '%', 'function', 'where', 'via'], spots.map((h) => [h.selfMs.toFixed(0), h.percent.toFixed(1), h.name, h.location, h.via]), [true, true]) + '\n\n')
        process.stdout.write(markdownTable(['package', 'self ms', '%'], packages.map((p) => [p.name, p.selfMs.toFixed(0), p.percent.toFixed(1)]), [false, true, true]) + '\n')
      }
    }
    await jwks.close()
    return errors > 0 ? 1 : 0
  } finally {
    await stopAll()
    restoreSessionPriority()
    rmSync(workDir, { recursive: true, force: true })
  }
}

const tree = values['baseline-tree']
if (tree !== undefined) {
  process.exitCode = await gatewayAb(resolve(tree))
} else {
  await verifierAb()
}
