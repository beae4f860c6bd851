// Waiting on conditions in tests, benchmarks and scripts: poll until something holds, never sleep as
// synchronisation.

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Polls `cond` every `intervalMs` until it holds (true) or `ms` pass (false). */
export async function poll (cond: () => boolean | Promise<boolean>, ms: number, intervalMs = 20): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return true
    await sleep(intervalMs)
  }
  return false
}

/** Polls until `cond` holds, or throws after `ms` naming `what`. Behavioural waiting, not a timing assertion. */
export async function eventually (cond: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  if (!await poll(cond, ms)) throw new Error(`${what}: not reached within ${ms} ms`)
}
