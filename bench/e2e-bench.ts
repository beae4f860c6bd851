import type { BenchOptions } from './lib/args.js'

export async function runE2eBench(_options: BenchOptions, _workDir: string): Promise<number> {
  console.error('e2e: not wired yet')
  return 1
}
