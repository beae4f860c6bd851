// Statistics for tests, benchmarks and scripts: medians across rounds, exact percentiles of recorded latencies.

export function median (values: number[]): number {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b)
  if (finite.length === 0) return Number.NaN
  const middle = Math.floor(finite.length / 2)
  return finite.length % 2 === 1 ? finite[middle]! : (finite[middle - 1]! + finite[middle]!) / 2
}

/** Nearest-rank percentile of a sorted array (p in 0..100). */
export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/** Percentiles of a latency log: copies into a typed array, which sorts numerically and fast. */
export function latencyPercentiles (latenciesMs: number[]): { p50: number; p99: number } {
  const sorted = Float64Array.from(latenciesMs).sort()
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}
