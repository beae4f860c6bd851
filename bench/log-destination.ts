// One process, same run: CPU per access line written through pino to a file by the gateway's batched
// destination (gateway/src/log-destination.ts: lines kept and joined once per write) against
// sonic-boom's own batching (pino.destination with minLength, the library alternative) and against one write
// per line (no batching), each batching 4 KiB (LOG_BUFFER_BYTES' default). The lines are the access line's shape
// (access-log.ts). Rounds rotate the order; median and best of ROUNDS per side, CPU from process.cpuUsage()
// (user + system: the write(2) calls count). Also checks that every side wrote the same bytes.
//   npm run bench:log        (ROUNDS=5 LINES=200000)
import { randomUUID } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { bufferedStdout } from '../gateway/src/log-destination.js'
import { median } from '../support/stats.js'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const LINES = Number(process.env.LINES ?? 200_000)
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || !Number.isInteger(LINES) || LINES < 1) {
  console.error('ROUNDS and LINES take positive whole numbers')
  process.exit(2)
}
const BATCH_BYTES = 4096
const WARMUP_LINES = 20_000

const dir = mkdtempSync(join(tmpdir(), 'bench-log-'))
const fds: number[] = []
const file = (name: string): { fd: number, path: string } => {
  const path = join(dir, name)
  const fd = openSync(path, 'w')
  fds.push(fd)
  return { fd, path }
}
// No timestamp, so that every side's output is the same bytes.
const loggerOptions = { timestamp: false, base: { pid: 1, hostname: 'gateway-1' } }
const gatewayFile = file('gateway.log')
const gatewayDestination = bufferedStdout(BATCH_BYTES, gatewayFile.fd)
const boomFile = file('sonic-boom.log')
const boomDestination = pino.destination({ dest: boomFile.fd, minLength: BATCH_BYTES, sync: true })
const directFile = file('direct.log')
const sides = {
  gateway: pino(loggerOptions, gatewayDestination.stream),
  'sonic-boom minLength': pino(loggerOptions, boomDestination),
  'one write per line': pino(loggerOptions, pino.destination({ dest: directFile.fd, sync: true }))
}

/** 64 distinct requests, as the access line describes them. */
const REQUESTS = Array.from({ length: 64 }, (_, i) => ({
  reqId: randomUUID(),
  userId: `user-${i % 16}`,
  clientIp: `10.0.${i % 4}.${i}`,
  traceId: randomUUID().replaceAll('-', ''),
  method: i % 5 === 0 ? 'POST' : 'GET',
  path: i % 3 === 0 ? '/api/tasks' : `/api/tasks/${randomUUID()}`,
  statusCode: i % 7 === 0 ? 201 : 200,
  responseTimeMs: 1 + (i % 13) * 0.37
}))

function writeLines (log: pino.Logger, n: number): void {
  for (let i = 0; i < n; i++) {
    const r = REQUESTS[i & 63] as typeof REQUESTS[number]
    log.info({ reqId: r.reqId, userId: r.userId, clientIp: r.clientIp, traceId: r.traceId, method: r.method, path: r.path, statusCode: r.statusCode, responseTimeMs: r.responseTimeMs, aborted: undefined }, 'request completed')
  }
}

function cpuNsPerLine (log: pino.Logger): number {
  const before = process.cpuUsage()
  writeLines(log, LINES)
  const used = process.cpuUsage(before)
  return ((used.user + used.system) * 1000) / LINES
}

const names = Object.keys(sides) as Array<keyof typeof sides>
for (const name of names) writeLines(sides[name], WARMUP_LINES)
const results = new Map<string, number[]>(names.map((name) => [name, []]))
for (let r = 0; r < ROUNDS; r++) {
  // Each round starts with the next side, so none always runs first.
  for (let k = 0; k < names.length; k++) {
    const name = names[(r + k) % names.length] as keyof typeof sides
    results.get(name)?.push(cpuNsPerLine(sides[name]))
  }
}
gatewayDestination.close()
boomDestination.flushSync()
const written = [gatewayFile, boomFile, directFile].map((f) => readFileSync(f.path))
const same = written.every((b) => b.equals(written[0] as Buffer))
for (const [name, ns] of results) console.log(`${name.padEnd(22)} best ${(Math.min(...ns) / 1000).toFixed(2)} µs  median ${(median(ns) / 1000).toFixed(2)} µs CPU per line`)
console.log(`${ROUNDS} rounds of ${LINES} lines each (${(written[0] as Buffer).length / (LINES * ROUNDS + WARMUP_LINES) | 0} bytes per line); output identical on every side: ${same}`)
for (const fd of fds) closeSync(fd)
rmSync(dir, { recursive: true, force: true })
if (!same) process.exitCode = 1
