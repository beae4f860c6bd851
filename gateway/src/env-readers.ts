// Readers for one environment variable each, shared by config.ts and limits-config.ts, so every
// setting is parsed, bounded and reported the same way. They read the env object they are given; only
// config.ts hands them process.env.

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export function fail (message: string): never {
  throw new ConfigError(message)
}

/** The trimmed value; unset and empty (as compose passes `${UNSET:-}`) both mean "not set". */
export function str (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]
  if (v === undefined) return undefined
  const t = v.trim()
  return t === '' ? undefined : t
}

/** A whole number within [min, max], or the default when unset. */
export function int (env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = str(env, name)
  if (raw === undefined) return def
  if (!/^\d+$/.test(raw)) fail(`${name} must be a whole number between ${min} and ${max}, got "${raw}"`)
  const n = Number(raw)
  if (n < min || n > max) fail(`${name} must be a whole number between ${min} and ${max}, got ${n}`)
  return n
}
