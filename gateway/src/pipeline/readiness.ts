// The task service's readiness, as /readyz reports it: GET <origin>/readyz on the forwarder's pool,
// ready on a 2xx within the timeout. Single-flight, and a result is reused for READINESS_TTL_MS: however
// many /readyz probes arrive, the task service gets at most one check per TTL, and a flood of probes
// cannot queue checks in the pool until they time out.
import type { Dispatcher } from 'undici'

/** How long one upstream readiness result is reused by /readyz. */
export const READINESS_TTL_MS = 1_000

export type ReadinessProbe = (timeoutMs: number) => Promise<boolean>

export function createReadinessProbe (pool: Dispatcher): ReadinessProbe {
  let last: { pending: boolean, expiresAt: number, result: Promise<boolean> } | undefined

  async function check (timeoutMs: number): Promise<boolean> {
    try {
      const res = await pool.request({ path: '/readyz', method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) })
      await res.body.dump()
      return res.statusCode >= 200 && res.statusCode < 300
    } catch {
      return false
    }
  }

  return async (timeoutMs) => {
    if (last !== undefined && (last.pending || Date.now() < last.expiresAt)) return await last.result
    const entry = { pending: true, expiresAt: 0, result: check(timeoutMs) }
    last = entry
    void entry.result.then(() => {
      entry.pending = false
      entry.expiresAt = Date.now() + READINESS_TTL_MS
    })
    return await entry.result
  }
}
