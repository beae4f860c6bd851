// Reading a Prometheus text exposition in tests: what a scrape says, series by series.

/** Series (name with its labels, as exposed) → value. */
export function parseMetrics (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

/** How much a series grew from one scrape to a later one (a series absent from a scrape counts as 0). */
export function increase (before: Map<string, number>, after: Map<string, number>, series: string): number {
  return (after.get(series) ?? 0) - (before.get(series) ?? 0)
}
