// Fresh-token verification cost: jose (this tree) against the hand-written node:crypto verifier (the
// commit before the switch), in one run. Two modes:
//
//   npm run bench:jwt [-- --baseline <git rev>] [--tokens N] [--rounds R] [--concurrency C]
//     The authenticators alone, in one process: every round verifies the same N distinct tokens (no
//     verification cache, so each one is a full signature and claim check) with the baseline's authenticator,
//     with this tree's, and with the bare signature check each of them makes (node:crypto, crypto.subtle),
//     in turn, each round starting with the next one. CPU is process.cpuUsage() (all threads, so
//     WebCrypto's thread-pool work counts). The baseline's authenticator, key import and error module are
//     read with `git show` into a temporary directory and loaded from there.
//
//   npm run bench:jwt -- --baseline-tree <dir> [--seconds S] [--rounds R] [--connections 1,16] [--users U]
//                        [--shapes 'EdDSA fresh,…'] [--instances N] [--env KEY=VALUE …] [--cpu-prof] [--callgrind]
//     Whole gateways: this tree's gateway beside the one in <dir>, a checkout of the baseline commit with
//     its dependencies installed (`git worktree add --detach <dir> <rev>`, then `npm ci` there; its
//     gateway/dist is built when missing). Both run `node gateway/dist/server.js` on the proxy core; the
//     upstream and wrk (bench/lib/wrk.ts; autocannon without it) share the other core. Four token shapes:
//     a fresh EdDSA (JWKS) or HS256 token per request (a verification-cache miss: full verification), and
//     one repeated token per connection (a cache hit). Fresh tokens are never sent twice and cycle through
//     U users (100 by default), so the gateway's once-per-user work (its identity assertion, signed once per
//     user and cached; the baseline has none) stays out of the figure. Each window drives one gateway for
//     S seconds at one concurrency; windows are interleaved (baseline first, then this tree first, in
//     turn). --instances N (default 2) starts N processes of each build and drives each of them in every
//     round, the builds' processes taking turns: two processes of one build can differ by several per cent
//     for as long as they live (where V8 placed and how it compiled their code), so a round's figure for a
//     build is the mean of its processes' windows. The figure is the gateway process's CPU time (utime + stime of every thread, from
//     /proc/<pid>/stat) per request, medians of the rounds, and the median of each round's own ratio (the two
//     builds' windows of a round ran back to back); --cpu-prof adds each gateway's hot spots.
//     --env KEY=VALUE (repeatable) sets a gateway setting for both builds, e.g. every optional feature off
//     (LOG_LEVEL=warn, RATE_LIMIT_USER_MAX=0, …) to compare what is left when they are.
//     --tree <dir> measures another checkout (set up the same way) in place of this tree, e.g. the commit
//     that switched to jose, to tell its cost from that of what later commits added to every request.
//     --callgrind runs each gateway under `valgrind --tool=callgrind` instead and counts the instructions
//     (every thread) executed per request in each window (callgrind_control zeroes and dumps the counters
//     around it): independent of other work on the machine, but blind to the kernel (system calls, context
//     switches, thread wake-ups), which is where a hand-off to the libuv thread pool costs most, and found
//     not to repeat between runs for whole gateways (V8's compiler and GC threads and the event loop's
//     batching under valgrind dominate a window; docs/performance.md).
import { execFileSync, spawnSync } from 'node:child_process'
import { createHmac, createPublicKey, timingSafeEqual, verify as verifySignature, type JsonWebKey } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createAuthenticator } from '../gateway/src/pipeline/authenticate.js'
import { importJwk, type VerificationKey } from '../gateway/src/keys/import.js'
import { median } from '../support/stats.js'
import { hotSpots, readProfiles, type CpuProfile } from './lib/cpu-profile.js'
import { startGateway } from './lib/gateway.js'
import { buildWorkspaceIfStale, distEntry, repoRoot } from '../support/workspaces.js'
import { runClosedLoop } from './lib/load.js'
import { runWrk, wrkInstalled } from './lib/wrk.js'
import { processCpuMicros } from './lib/proc-stats.js'
import { LOAD_CORE, prepareLoadGenerator, restoreSessionPriority } from './lib/processes.js'
import { hasTaskset, stopAll } from '../support/processes.js'
import { createKeys, gatewayAuth, mintPool, mintToken, startKeyServer, type TokenAlgorithm } from './lib/tokens.js'
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
    tree: { type: 'string' },
    seconds: { type: 'string' },
    connections: { type: 'string', default: '1,16' },
    users: { type: 'string', default: '100' },
    instances: { type: 'string', default: '2' },
    env: { type: 'string', multiple: true, default: [] },
    shapes: { type: 'string', default: 'EdDSA fresh,HS256 fresh,EdDSA repeated,HS256 repeated' },
    'cpu-prof': { type: 'boolean', default: false },
    callgrind: { type: 'boolean', default: false }
  }
})
const N = Number(values.tokens)
const ROUNDS = Number(values.rounds)
const CONCURRENCY = Number(values.concurrency)
if (![N, ROUNDS, CONCURRENCY].every((n) => Number.isInteger(n) && n > 0)) throw new Error('--tokens, --rounds and --concurrency take positive whole numbers')

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
    // The signature check alone, as each verifier makes it: what the arithmetic costs, and what running it
    // through WebCrypto (a job on the libuv thread pool) adds, without any token parsing or claim checks.
    const edKeyObject = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    const hmacCryptoKey = await crypto.subtle.importKey('raw', Buffer.from(keys.hmacSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    const split = (token: string): [Buffer, Buffer] => {
      const dot = token.lastIndexOf('.')
      return [Buffer.from(token.slice(0, dot)), Buffer.from(token.slice(dot + 1), 'base64url')]
    }
    const signatureOnly: Record<'EdDSA' | 'HS256', Record<'node:crypto signature only' | 'crypto.subtle signature only', Verifier>> = {
      EdDSA: {
        'node:crypto signature only': { verifyToken: (t) => { const [input, sig] = split(t); return verifySignature(null, input, edKeyObject, sig) } },
        'crypto.subtle signature only': { verifyToken: async (t) => { const [input, sig] = split(t); return await crypto.subtle.verify('Ed25519', newKey.key, sig, input) } }
      },
      HS256: {
        'node:crypto signature only': { verifyToken: (t) => { const [input, sig] = split(t); return timingSafeEqual(createHmac('sha256', keys.hmacSecret).update(input).digest(), sig) } },
        'crypto.subtle signature only': { verifyToken: async (t) => { const [input, sig] = split(t); return await crypto.subtle.verify('HMAC', hmacCryptoKey, sig, input) } }
      }
    }

    const rows: Array<Array<string | number>> = []
    for (const alg of ['EdDSA', 'HS256'] as const) {
      const tokens = await Promise.all(Array.from({ length: N }, async (_, i) => await mintToken(keys, alg, i)))
      const all: Record<string, Verifier> = { ...impls, ...signatureOnly[alg] }
      const names = Object.keys(all)
      for (const v of Object.values(all)) await measure(v, tokens.slice(0, Math.min(500, N))) // warm-up
      const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
      const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
      for (let r = 0; r < ROUNDS; r++) {
        // Each round starts with the next verifier, so none always runs first.
        for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
          const m = await measure(all[name] as Verifier, tokens)
          cpu[name]?.push(m.cpuUs)
          wall[name]?.push(m.wallUs)
        }
      }
      const base = median(cpu.baseline ?? [])
      for (const name of names) {
        const c = median(cpu[name] ?? [])
        rows.push([alg, name === 'baseline' ? 'hand-written (baseline)' : name, c.toFixed(1), median(wall[name] ?? []).toFixed(1), name === 'baseline' ? '' : signedPercent(c / base - 1)])
      }
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

/** --env KEY=VALUE arguments as an environment; exits 2 on one that is not a setting's name and a value. */
function gatewaySettings (pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const pair of pairs) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/s.exec(pair)
    if (m === null) {
      console.error(`--env ${pair}: expected KEY=VALUE with an upper-case setting name, e.g. --env LOG_LEVEL=warn`)
      process.exit(2)
    }
    env[m[1] as string] = m[2] as string
  }
  return env
}

function signedPercent (fraction: number): string {
  return `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(0)} %`
}

/** Builds a checkout's gateway with that checkout's own compiler when its dist/ is missing. */
function buildCheckout (tree: string): string {
  const entry = join(tree, 'gateway', 'dist', 'server.js')
  if (!existsSync(entry)) {
    const result = spawnSync(join(tree, 'node_modules', '.bin', 'tsc'), ['-p', join(tree, 'gateway', 'tsconfig.build.json')], { cwd: tree, encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`build of ${tree} failed:\n${(result.stdout + result.stderr).slice(-3000)}`)
  }
  return entry
}

interface Load { requests: number, seconds: number, errors: number }

/** One window of `seconds` with wrk on the load core, or autocannon where wrk is missing. */
async function drive (url: string, tokens: string[], connections: number, seconds: number, workDir: string): Promise<Load> {
  if (!wrkInstalled()) {
    const load = await runClosedLoop({ url, connections, durationSeconds: seconds, tokenFor: (i) => tokens[i % tokens.length] as string })
    return { requests: load.requests, seconds: load.seconds, errors: load.errors }
  }
  return await runWrk({ url, tokens, connections, seconds, core: LOAD_CORE, workDir })
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

async function gatewayAb (tree: string, ownTree: string | undefined): Promise<number> {
  const callgrind = values.callgrind === true
  // Under valgrind a gateway answers a few hundred requests a second: longer windows for the same count.
  const seconds = Number(values.seconds ?? (callgrind ? 8 : 2))
  const connectionLevels = (values.connections ?? '').split(',').map(Number)
  if (!Number.isInteger(seconds) || seconds < 1 || !connectionLevels.every((c) => Number.isInteger(c) && c > 0)) throw new Error('--seconds takes a positive whole number, --connections a comma-separated list of them')
  const users = Number(values.users)
  if (!Number.isInteger(users) || users < 1) throw new Error('--users takes a positive whole number')
  const shapes = SHAPES.filter((s) => (values.shapes ?? '').split(',').includes(s.shape))
  if (shapes.length === 0) throw new Error(`--shapes takes a comma-separated list of: ${SHAPES.map((s) => s.shape).join(', ')}`)
  const cpuProf = values['cpu-prof'] === true
  const rounds = callgrind ? 1 : ROUNDS
  // Under valgrind or the profiler one process per build: instruction counts and profiles are read per process.
  const instances = callgrind || cpuProf ? 1 : Number(values.instances)
  if (!Number.isInteger(instances) || instances < 1) throw new Error('--instances takes a positive whole number')
  const extraEnv = gatewaySettings(values.env ?? [])
  const baselineRev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: tree, encoding: 'utf8' }).trim()
  const ownDir = ownTree ?? repoRoot
  const ownRev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ownDir, encoding: 'utf8' }).trim()
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'gateway/src'], { cwd: ownDir, encoding: 'utf8' }).trim() !== ''
  if (ownTree === undefined) buildWorkspaceIfStale('gateway')
  const entries: Record<Build, string> = { baseline: buildCheckout(tree), jose: ownTree === undefined ? distEntry('gateway') : buildCheckout(ownTree) }
  prepareLoadGenerator()
  const loadBefore = loadavg()[0] as number
  const workDir = mkdtempSync(join(tmpdir(), 'jwt-gateway-ab-'))
  try {
    const { jwks, keys } = await startKeyServer()
    const upstream = await startUpstream('upstream', workDir, LOAD_CORE)
    type Instance = HttpTarget & { cgOut: string, dumps: number }
    const gateways = new Map<Build, Instance[]>(BUILDS.map((build) => [build, []]))
    for (let i = 1; i <= instances; i++) {
      for (const build of BUILDS) {
        const cgOut = join(workDir, `${build}.callgrind`)
        gateways.get(build)?.push({
          ...await startGateway({
            name: `gateway-${build}-${i}`,
            upstreamUrl: upstream.baseUrl,
            ...gatewayAuth(keys, jwks.url),
            logDir: workDir,
            logLevel: 'info',
            entry: entries[build],
            ...(cpuProf ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${join(workDir, `profile-${build}`)}`] } : {}),
            // Under valgrind every request is slow: load shedding would refuse them, so it is off there.
            env: { ...extraEnv, ...(callgrind ? { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', LOAD_SHED_MAX_EVENT_LOOP_UTILIZATION: '0' } : {}) },
            ...(callgrind ? { launcher: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${cgOut}`], readyTimeoutMs: 300_000 } : {})
          }),
          cgOut,
          dumps: 0
        })
      }
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

    const window = async (build: Build, instance: number, tokens: string[], connections: number, windowSeconds: number): Promise<{ cost: number, requests: number, rate: number, coreUse: number, errors: number }> => {
      const gateway = gateways.get(build)?.[instance] as Instance
      const pid = gateway.managed.pid
      if (callgrind) execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore', env: VGDB_ENV })
      const cpu0 = processCpuMicros(pid)
      const load = await drive(`${gateway.baseUrl}/api/tasks`, tokens, connections, windowSeconds, workDir)
      const cpu = processCpuMicros(pid) - cpu0
      let cost = cpu / load.requests
      if (callgrind) cost = await dumpInstructions(pid, gateway.cgOut, ++gateway.dumps) / load.requests
      return { cost, requests: load.requests, rate: load.requests / load.seconds, coreUse: cpu / (load.seconds * 1e6), errors: load.errors }
    }

    // Warm-up: JIT (under valgrind V8 needs far longer to reach its optimized code, and compiling counts as
    // instructions), upstream connections, JWKS, for every build and shape; it also gives the fastest rate
    // seen per algorithm, which sizes the fresh-token pools (a window must never run out of new tokens).
    const fastest = new Map<TokenAlgorithm, number>()
    const warmupPool = callgrind ? 6000 : 12_000
    for (let i = 0; i < instances; i++) {
      for (const build of BUILDS) {
        for (const { alg, fresh } of shapes) {
          const tokens = fresh ? await freshPool(alg, warmupPool) : repeated.get(alg) as string[]
          const w = await window(build, i, tokens, Math.max(...connectionLevels), callgrind ? 30 : 2)
          if (w.errors > 0) throw new Error(`${build} gateway answered ${w.errors} of ${w.requests} ${alg} warm-up requests with an error`)
          fastest.set(alg, Math.max(fastest.get(alg) ?? 0, w.rate))
        }
      }
    }

    const results = new Map<string, Array<{ cost: number, coreUse: number }>>()
    const key = (build: Build, shape: Shape, connections: number): string => `${build}|${shape}|${connections}`
    let errors = 0
    for (let round = 1; round <= rounds; round++) {
      for (const connections of connectionLevels) {
        for (const { shape, alg, fresh } of shapes) {
          // Three times the fastest rate seen so far: the warm-up runs colder code, and the machine may quieten.
          const tokens = fresh ? await freshPool(alg, Math.ceil(3 * (fastest.get(alg) as number) * seconds) + 100) : repeated.get(alg) as string[]
          const order = round % 2 === 1 ? BUILDS : [...BUILDS].reverse()
          const windows = new Map<Build, Array<{ cost: number, coreUse: number }>>(BUILDS.map((build) => [build, []]))
          for (let i = 0; i < instances; i++) {
            for (const build of order) {
              const w = await window(build, i, tokens, connections, seconds)
              if (fresh && w.requests > tokens.length) throw new Error(`${build} answered ${w.requests} requests but only ${tokens.length} fresh tokens were minted: some were repeats`)
              errors += w.errors
              fastest.set(alg, Math.max(fastest.get(alg) as number, w.rate))
              windows.get(build)?.push({ cost: w.cost, coreUse: w.coreUse })
              console.log(`round ${round} c=${connections} ${shape.padEnd(14)} ${build.padEnd(8)}${instances > 1 ? ` #${i + 1}` : ''} ${callgrind ? `${Math.round(w.cost)} instructions/req` : `${w.cost.toFixed(1)} µs/req  core ${(w.coreUse * 100).toFixed(0)} %`}${w.errors > 0 ? `  ERRORS ${w.errors}` : ''}`)
            }
          }
          for (const build of BUILDS) {
            const mine = windows.get(build) ?? []
            const list = results.get(key(build, shape, connections)) ?? []
            list.push({ cost: mine.reduce((sum, w) => sum + w.cost, 0) / mine.length, coreUse: Math.min(...mine.map((w) => w.coreUse)) })
            results.set(key(build, shape, connections), list)
          }
        }
      }
    }

    const unit = callgrind ? 'instructions / request' : 'CPU µs / request (median)'
    const rows: Array<Array<string | number>> = []
    for (const connections of connectionLevels) {
      for (const { shape } of shapes) {
        const baseRounds = (results.get(key('baseline', shape, connections)) ?? []).map((r) => r.cost)
        const base = median(baseRounds)
        for (const build of BUILDS) {
          const mine = results.get(key(build, shape, connections)) ?? []
          const cost = median(mine.map((r) => r.cost))
          // The two builds' windows of one round ran back to back, under the same load on the host: the
          // round's own ratio is the comparison least moved by drift between rounds.
          const ratios = mine.map((r, i) => r.cost / (baseRounds[i] as number))
          rows.push([
            shape,
            connections,
            build === 'baseline' ? `hand-written (${baselineRev})` : `jose (${ownRev}${dirty ? '+' : ''})`,
            callgrind ? Math.round(cost).toLocaleString('en-US') : cost.toFixed(1),
            ...(callgrind ? [] : [mine.map((r) => r.cost.toFixed(1)).join(' / '), `${Math.round(Math.min(...mine.map((r) => r.coreUse)) * 100)} %`]),
            build === 'baseline' ? '' : signedPercent(cost / base - 1),
            ...(callgrind ? [] : [build === 'baseline' ? '' : `${signedPercent(median(ratios) - 1)} (${ratios.filter((r) => r < 1).length}/${ratios.length} cheaper)`])
          ])
        }
      }
    }
    process.stdout.write(`\nnode ${process.version}; ${rounds} interleaved round(s) of ${seconds} s windows, ${instances} process(es) per build (a round's figure is their mean), ${Object.keys(extraEnv).length > 0 ? `both builds with ${Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`).join(' ')}, ` : ''}${wrkInstalled() ? 'wrk' : 'autocannon'}; ${hasTaskset ? 'gateways on core 1, load generator and upstream on core 0' : 'not pinned (no taskset)'}; 1-minute load average ${loadBefore.toFixed(1)} at the start, ${(loadavg()[0] as number).toFixed(1)} at the end\n\n`)
    process.stdout.write(markdownTable(
      ['token', 'in flight', 'gateway', unit, ...(callgrind ? [] : ['rounds', 'min core use']), 'vs baseline', ...(callgrind ? [] : ['per round (median)'])],
      rows,
      [false, true, false, true, ...(callgrind ? [] : [false, true]), true, ...(callgrind ? [] : [true])]
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

/** A checkout given on the command line, as an absolute path; exits with a message when it holds no gateway. */
function checkoutArgument (option: string, dir: string): string {
  const path = resolve(dir)
  if (!existsSync(join(path, 'gateway', 'package.json')) || !existsSync(join(path, 'node_modules'))) {
    console.error(`--${option} ${dir}: not a checkout of this repository with its dependencies installed (git worktree add --detach <dir> <rev>, then npm ci there)`)
    process.exit(2)
  }
  return path
}

const tree = values['baseline-tree']
if (tree !== undefined) {
  process.exitCode = await gatewayAb(checkoutArgument('baseline-tree', tree), values.tree === undefined ? undefined : checkoutArgument('tree', values.tree))
} else {
  await verifierAb()
}
