// Command-line options of `npm run bench`. Every run is bounded: durations and counts are fixed here.
import { parseArgs } from 'node:util'

export interface BenchOptions {
  mode: 'proxy' | 'e2e' | 'costs'
  quick: boolean
  rounds: number
  /** Seconds per closed-loop measurement. */
  durationSeconds: number
  warmupSeconds: number
  connections: number
  /**
   * Fresh-token tokens minted per second of a window: above what the gateway can verify, so no token is
   * sent twice (a run that wrapped around says so).
   */
  freshTokensPerSecond: number
  /** The least number of tokens in a fresh-token pool. */
  freshTokenRequests: number
  /** Use autocannon worker processes even when wrk is available (or installable). */
  autocannon: boolean
  /** Number of autocannon worker processes when wrk is not used. */
  autocannonWorkers: number
  /** Skip the nginx rows (upstream and plain proxy) even when nginx is installed. */
  nginx: boolean
  fixedRatePerSecond: number
  fixedRateSeconds: number
  profile: boolean
  /** Only the profiles: no measurement rounds, nothing written. */
  profileOnly: boolean
  profileSeconds: number
  write: boolean
  logLevel: string
  /** Alternative gateway entry point (a JS file), for trying the harness before the gateway exists. */
  gatewayEntry: string | undefined
  /** The whole run is stopped (exit 124) after this many minutes. */
  timeLimitMinutes: number
  command: string
}

const usage = `npm run bench [-- options]
  --quick              smoke run (1 round of 2 s windows, about a minute); does not rewrite docs/performance.md
  --e2e                create/list/toggle/delete through gateway + task service and to the task service
                       directly, CPU per request of each process (PGlite, PostgreSQL)
  --costs              cost of each feature: the gateway as deployed and with one feature switched off at a
                       time (access log, metrics, rate limits, in-flight cap, connection caps, load shedding),
                       then all of them, against the bare Node proxy floor
  --rounds N           interleaved rounds (default 3)
  --duration S         seconds per measurement (default 8)
  --connections N      concurrent connections of the load generator (default 50)
  --autocannon         load from autocannon worker processes even when wrk is available
  --no-nginx           Node upstream instead of nginx, and no nginx plain-proxy row
  --profile            also profile the gateway under load (node --cpu-prof) and list its hot spots
  --profile-only       only the gateway profiles (~1 minute), for working on its hot path
  --write / --no-write write docs/performance.md (default: yes for full runs, no for --quick)
  --log-level LEVEL    gateway LOG_LEVEL (default info, as in production)
  --time-limit M       stop everything and fail after M minutes (default 15; 5 with --quick)
  --gateway-entry FILE run this JS file as the gateway instead of gateway/dist/server.js`

export function parseBenchArgs (argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      e2e: { type: 'boolean', default: false },
      costs: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      autocannon: { type: 'boolean', default: false },
      'no-nginx': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'profile-only': { type: 'boolean', default: false },
      write: { type: 'boolean' },
      'no-write': { type: 'boolean' },
      'log-level': { type: 'string', default: 'info' },
      'gateway-entry': { type: 'string' },
      'time-limit': { type: 'string' },
      help: { type: 'boolean', default: false }
    },
    strict: true
  })
  if (values.help) {
    console.log(usage)
    process.exit(0)
  }
  const quick = values.quick ?? false
  const costs = values.costs ?? false
  if (costs && values.e2e) throw new Error(`--costs and --e2e are two different runs: choose one\n${usage}`)
  if (costs && (values.profile || values['profile-only'])) throw new Error(`--costs takes no profiles: profile with the proxy run (--profile)\n${usage}`)
  const positiveInt = (text: string | undefined, fallback: number, name: string): number => {
    if (text === undefined) return fallback
    const value = Number(text)
    if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer\n${usage}`)
    return value
  }
  const rounds = positiveInt(values.rounds, quick ? 1 : 3, 'rounds')
  const durationSeconds = positiveInt(values.duration, quick ? 2 : 8, 'duration')
  const profileOnly = values['profile-only'] ?? false
  const write = profileOnly || values['no-write'] ? false : (values.write ?? !quick)
  return {
    mode: values.e2e ? 'e2e' : costs ? 'costs' : 'proxy',
    quick,
    rounds,
    durationSeconds,
    warmupSeconds: quick ? 1 : 2,
    connections: positiveInt(values.connections, 50, 'connections'),
    freshTokensPerSecond: 6000,
    freshTokenRequests: quick ? 1500 : 15_000,
    autocannon: values.autocannon ?? false,
    autocannonWorkers: 3,
    nginx: !(values['no-nginx'] ?? false),
    fixedRatePerSecond: 1000,
    fixedRateSeconds: quick ? 1 : 5,
    profile: (values.profile ?? false) || profileOnly,
    profileOnly,
    profileSeconds: quick ? 3 : 8,
    write,
    logLevel: values['log-level'] ?? 'info',
    gatewayEntry: values['gateway-entry'],
    timeLimitMinutes: positiveInt(values['time-limit'], quick ? 5 : 15, 'time-limit'),
    command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ')
  }
}
