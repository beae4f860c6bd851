// Fresh-token verification cost of the gateway's authenticator against an earlier build of it, in one
// process, alternating: every round verifies the same N distinct tokens (no verification cache, so each
// one is a full signature and claim check) with the baseline and with the current code, in turn, swapping
// which goes first. CPU is process.cpuUsage() (all threads, so WebCrypto's thread-pool work counts).
//
//   npx tsx bench/jwt-verify.ts [--baseline <git rev>] [--tokens N] [--rounds R] [--concurrency C]
//
// The baseline's authenticator, key import and error module are read with `git show` into a temporary
// directory and loaded from there; nothing of it lives in the tree.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createAuthenticator } from '../gateway/src/pipeline/authenticate.js'
import { importJwk, type VerificationKey } from '../gateway/src/keys/import.js'
import { median } from '../support/stats.js'
import { createKeys, mintToken } from './lib/tokens.js'
import { markdownTable } from './lib/table.js'

// The last commit whose gateway verified tokens with node:crypto by hand.
const DEFAULT_BASELINE = '5fbef13'
const ISSUER = 'https://auth.bench.test'

interface Verifier { verifyToken: (token: string) => unknown }

const { values } = parseArgs({
  options: {
    baseline: { type: 'string', default: DEFAULT_BASELINE },
    tokens: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '1' }
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
