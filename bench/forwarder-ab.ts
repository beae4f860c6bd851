// The forwarder A/B: the gateway forwarding with its own undici dispatcher forwarder (A) against the same
// gateway forwarding with @fastify/reply-from on the same pool (B), measured in one run.
//
//   npm run bench:forwarder [-- --rounds 3 --seconds 5 --connections 50]
//
// Method (issue 15's): both gateways run side by side, each pinned to the proxy core (taskset -c 1); the
// upstream (bench/servers/upstream-server.ts) and `wrk -t1 -c<connections>` share the other core. Each
// window drives one gateway to saturation with one repeated token (HS256, or EdDSA from a JWKS, which the
// verification cache serves after the first request); windows are interleaved (A B, then B A, per round
// and algorithm), so drift on a shared machine falls on both. The figure is the gateway process's CPU time
// (user + system, all threads, from /proc) divided by the requests wrk completed in that window; a window
// where the gateway used under 90 % of its core is flagged as not saturated. Requires `wrk` (Debian
// package `wrk`). Both gateways start from bench/servers/gateway-ab.ts, so only the engine differs.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGateway } from './lib/gateway.js'
import { LOAD_CORE, prepareLoadGenerator, restoreSessionPriority } from './lib/processes.js'
import { hasTaskset, stopAll } from '../support/processes.js'
import { processCpuMicros } from './lib/proc-stats.js'
import { median } from '../support/stats.js'
import { gatewayAuth, mintToken, startKeyServer, type TokenAlgorithm } from './lib/tokens.js'
import { startUpstream, type HttpTarget } from './lib/upstream.js'

const ENGINES = ['dispatcher', 'reply-from'] as const
type Engine = typeof ENGINES[number]
const ALGS: TokenAlgorithm[] = ['HS256', 'EdDSA']
const abEntry = fileURLToPath(new URL('./servers/gateway-ab.ts', import.meta.url))

function option (name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i === -1) return def
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} needs a whole number ≥ 1`)
  return v
}

interface WrkResult { requests: number, non2xx: number, socketErrors: number, seconds: number }

/** One wrk window against `url`, pinned to the load core. */
async function wrk (url: string, token: string, seconds: number, connections: number): Promise<WrkResult> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '-H', `Authorization: Bearer ${token}`, url]
  const [cmd, argv] = hasTaskset ? ['taskset', ['-c', String(LOAD_CORE), 'wrk', ...args]] : ['wrk', args]
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const m = /(\d+) requests in ([\d.]+)(m?s)/.exec(out)
  if (code !== 0 || m === null) throw new Error(`wrk failed (exit ${code}):\n${out}`)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    requests: Number(m[1]),
    seconds: Number(m[2]) / (m[3] === 'ms' ? 1000 : 1),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: sock === null ? 0 : sock.slice(1).reduce((s, x) => s + Number(x), 0)
  }
}

interface Window { engine: Engine, alg: TokenAlgorithm, round: number, cpuUsPerRequest: number, requestsPerSecond: number, coreUse: number, failures: number }

async function main (): Promise<number> {
  const rounds = option('rounds', 3)
  const seconds = option('seconds', 5)
  const connections = option('connections', 50)
  prepareLoadGenerator()
  const workDir = mkdtempSync(join(tmpdir(), 'forwarder-ab-'))
  try {
    const { jwks, keys } = await startKeyServer()
    const upstream = await startUpstream('upstream', workDir, LOAD_CORE)
    const gateways = new Map<Engine, HttpTarget>()
    for (const engine of ENGINES) {
      gateways.set(engine, await startGateway({
        name: `gateway-${engine}`,
        upstreamUrl: upstream.baseUrl,
        ...gatewayAuth(keys, jwks.url),
        logDir: workDir,
        logLevel: 'info',
        entry: abEntry,
        nodeFlags: ['--import', 'tsx'],
        env: { FORWARDER: engine }
      }))
    }
    const tokens = new Map<TokenAlgorithm, string>()
    for (const alg of ALGS) tokens.set(alg, await mintToken(keys, alg, 0))

    // Warm-up: JIT, pool connections, the verification cache, for every engine and algorithm.
    for (const engine of ENGINES) for (const alg of ALGS) await wrk(`${gateways.get(engine)!.baseUrl}/api/tasks`, tokens.get(alg)!, 2, connections)

    const windows: Window[] = []
    for (let round = 1; round <= rounds; round++) {
      for (const alg of ALGS) {
        const order = round % 2 === 1 ? ENGINES : [...ENGINES].reverse()
        for (const engine of order) {
          const gateway = gateways.get(engine)!
          const before = processCpuMicros(gateway.managed.pid)
          const result = await wrk(`${gateway.baseUrl}/api/tasks`, tokens.get(alg)!, seconds, connections)
          const cpu = processCpuMicros(gateway.managed.pid) - before
          const w: Window = {
            engine,
            alg,
            round,
            cpuUsPerRequest: cpu / result.requests,
            requestsPerSecond: result.requests / result.seconds,
            coreUse: cpu / (result.seconds * 1e6),
            failures: result.non2xx + result.socketErrors
          }
          windows.push(w)
          console.log(`round ${round} ${alg.padEnd(5)} ${engine.padEnd(10)} ${w.cpuUsPerRequest.toFixed(1)} µs/req  ${Math.round(w.requestsPerSecond)} req/s  core ${(w.coreUse * 100).toFixed(0)} %${w.failures > 0 ? `  FAILURES ${w.failures}` : ''}`)
        }
      }
    }

    console.log(`\n${rounds} interleaved rounds of ${seconds} s per window, wrk -t1 -c${connections}, ${hasTaskset ? 'gateways on core 1, wrk and upstream on core 0' : 'not pinned (no taskset)'}\n`)
    console.log('| token | engine | CPU µs / request (median) | rounds | req/s (median) | vs dispatcher | saturated |')
    console.log('|---|---|---:|---|---:|---:|---|')
    let failed = false
    for (const alg of ALGS) {
      const base = median(windows.filter((w) => w.alg === alg && w.engine === 'dispatcher').map((w) => w.cpuUsPerRequest))
      for (const engine of ENGINES) {
        const mine = windows.filter((w) => w.alg === alg && w.engine === engine)
        const cpu = median(mine.map((w) => w.cpuUsPerRequest))
        const saturated = mine.every((w) => w.coreUse >= 0.9)
        if (mine.some((w) => w.failures > 0)) failed = true
        console.log(`| ${alg === 'EdDSA' ? 'EdDSA, repeated' : alg} | ${engine} | ${cpu.toFixed(1)} | ${mine.map((w) => w.cpuUsPerRequest.toFixed(1)).join(' / ')} | ${Math.round(median(mine.map((w) => w.requestsPerSecond)))} | ${(cpu / base).toFixed(2)}× | ${saturated ? 'yes' : 'no (min ' + Math.round(Math.min(...mine.map((w) => w.coreUse)) * 100) + ' %)'} |`)
      }
    }
    if (failed) console.log('\nSome windows had non-2xx answers or socket errors: the figures are not comparable.')
    await jwks.close()
    return failed ? 1 : 0
  } finally {
    await stopAll()
    restoreSessionPriority()
    rmSync(workDir, { recursive: true, force: true })
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  void stopAll().finally(() => process.exit(1))
})
