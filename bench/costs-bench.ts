// `npm run bench -- --costs`: what each of the gateway's features costs per request, in one run.
// The gateway as deployed (as the proxy benchmark starts it) and, each in a process of its own, the same
// build with one feature switched off through its own production configuration, then with all of them
// off (its fixed core), next to the bare Node proxy floor. Same harness as the proxy benchmark: pinned,
// saturated by wrk, CPU per request from /proc, every row proven to do the real job first, interleaved
// rounds, medians (bench/lib/scenarios.ts). The variants and tables are in bench/lib/costs-report.ts.
import type { BenchOptions } from './lib/args.js'
import {
  COST_LOADS,
  COST_VARIANTS,
  costScenarioId,
  renderCostsTable,
  renderCostSummary,
  summarizeCosts,
  type VariantRow
} from './lib/costs-report.js'
import { benchGatewayOptions, prepareGatewayBuild, startGateway } from './lib/gateway.js'
import { describeMachine } from './lib/machine.js'
import { publishBenchResult } from './lib/report.js'
import {
  chooseLoadGenerator,
  CPU_COLUMNS_NOTE,
  describeRun,
  FLOOR_ID,
  gatewayScenario,
  NO_GATEWAY_NOTE,
  runnableScenarios,
  runSaturatedRounds,
  startBenchUpstream,
  startFloorScenario,
  TokenPools,
  type Scenario
} from './lib/scenarios.js'
import { gatewayAuth, startKeyServer } from './lib/tokens.js'

export async function runCostsBench (options: BenchOptions, workDir: string): Promise<number> {
  if (!prepareGatewayBuild(options)) throw new Error(`--costs: ${NO_GATEWAY_NOTE}`)
  const machine = describeMachine()
  const notes: string[] = []
  console.log(`machine: ${machine.cpus} CPUs, ${machine.cpuModel}, Node ${machine.node}; ${machine.pinning}`)

  const generator = chooseLoadGenerator(options, notes)
  const { jwks, keys } = await startKeyServer()
  const upstream = await startBenchUpstream(options, workDir, notes)
  const floor = await startFloorScenario(upstream.target, keys, workDir)

  const gatewayBase = benchGatewayOptions(options, upstream.target.baseUrl, gatewayAuth(keys, jwks.url), workDir)
  const scenarios: Scenario[] = [floor]
  for (const variant of COST_VARIANTS) {
    console.log(`starting the gateway: ${variant.label}`)
    const gateway = await startGateway({ ...gatewayBase, name: `gateway-${variant.id}`, env: variant.env })
    for (const load of COST_LOADS) scenarios.push(gatewayScenario(costScenarioId(variant, load), `${variant.label}, ${load.label}`, gateway, load.alg))
  }

  console.log('minting tokens…')
  const pools = await TokenPools.mint(keys, options, COST_LOADS.map((load) => load.alg), { fresh: false })
  const runnable = await runnableScenarios(scenarios, pools, notes)
  for (const note of notes) console.log(`note: ${note}`)

  const saturated = await runSaturatedRounds(generator, runnable, pools, options, workDir)
  notes.push(...saturated.notes)
  await jwks.close()
  const rowOf = (id: string) => saturated.rows.find((row) => row.id === id)
  const floorRow = rowOf(FLOOR_ID)

  const lines = describeRun(options, machine, generator, upstream.kind)
  lines.push(
    `Gateways: ${COST_VARIANTS.length} processes of the same build, each started as the proxy benchmark starts it ` +
      `(LOG_LEVEL=${options.logLevel}, metrics on, rate limits on with ceilings out of reach) with the settings in the second column on top; ` +
      'the floor verifies HS256 only, so it is the reference of both tables.'
  )
  for (const load of COST_LOADS) {
    const variantRows: VariantRow[] = COST_VARIANTS.flatMap((variant) => {
      const row = rowOf(costScenarioId(variant, load))
      return row === undefined ? [] : [{ variant, row }]
    })
    if (variantRows.length === 0) continue
    lines.push('', `**${load.label}**`, '', renderCostsTable(variantRows, floorRow), '', renderCostSummary(summarizeCosts(variantRows, floorRow)))
  }
  lines.push('', `${CPU_COLUMNS_NOTE} "saved" is the deployed gateway's CPU per request minus the variant's (for the floor: the whole gap).`)
  if (notes.length > 0) lines.push('', ...notes.map((note) => `- ${note}`))

  publishBenchResult('costs', lines.join('\n'), options.write)
  const errors = saturated.rows.reduce((sum, row) => sum + row.errors, 0)
  const skipped = runnable.length < scenarios.length
  return errors > 0 || saturated.stalled || skipped ? 1 : 0
}
