// Which environment variables a service's config loader reads, found by running it on an env object that
// records every name asked for. Deployment files (docker-compose.yml, the Kubernetes ConfigMaps) are compared
// with this, so that a setting the code reads cannot be missing from them, and a name they pass cannot be a typo.
import { generateKeyPairSync } from 'node:crypto'

/** The names `load` reads from env, over several envs (a loader reads some names only when others are set). */
export function keysRead (load: (env: NodeJS.ProcessEnv) => unknown, envs: NodeJS.ProcessEnv[]): Set<string> {
  const seen = new Set<string>()
  for (const env of envs) {
    const recording = new Proxy({ ...env }, {
      get (target, name) {
        if (typeof name === 'string') seen.add(name)
        return target[name as string]
      },
      has (target, name) {
        if (typeof name === 'string') seen.add(name)
        return name in target
      }
    })
    try { load(recording) } catch { /* a refusal still tells which names were read up to it */ }
  }
  return seen
}

const keys = generateKeyPairSync('ed25519', {
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' }
})

/** A complete, valid configuration of each service, in the ways its loader branches (HS256; JWKS). */
export const fullGatewayEnvs: NodeJS.ProcessEnv[] = [
  {
    BETTER_AUTH_SECRET: 'a-secret-of-at-least-thirty-two-bytes!!',
    BETTER_AUTH_URL: 'https://auth.example.com',
    JWT_AUDIENCE: 'https://app.example.com',
    GATEWAY_ASSERTION_PRIVATE_KEY: keys.privateKey,
    REDIS_URL: 'redis://redis:6379',
    METRICS_PORT: '9464'
  },
  {
    JWT_SECRET: 'a-secret-of-at-least-thirty-two-bytes!!',
    JWKS_URL: 'https://auth.example.com/jwks',
    JWT_ISSUER: 'https://auth.example.com',
    JWT_AUDIENCE: 'https://app.example.com',
    JWT_ALGORITHMS: 'HS256,EdDSA',
    GATEWAY_ASSERTION_PRIVATE_KEY: keys.privateKey,
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318'
  }
]

export const fullTaskServiceEnvs: NodeJS.ProcessEnv[] = [
  { DATABASE_URL: 'postgres://todo@postgres:5432/tasks', GATEWAY_ASSERTION_PUBLIC_KEY: keys.publicKey, METRICS_PORT: '9464' },
  { GATEWAY_ASSERTION_PUBLIC_KEY: keys.publicKey, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }
]

/**
 * Passed by the deployment files before the services read them (other work in flight wires them into the
 * config loaders; until then they are harmless). Each is either read by the loader or listed here.
 */
export const PENDING_KEYS: Record<'gateway' | 'task-service', readonly string[]> = {
  gateway: ['METRICS_PORT', 'METRICS_HOST', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
  'task-service': ['METRICS_PORT', 'METRICS_HOST', 'OTEL_EXPORTER_OTLP_ENDPOINT']
}

/** Read by node-postgres itself when the connection string names no user or password (libpq's variables). */
export const PG_DRIVER_KEYS: readonly string[] = ['PGUSER', 'PGPASSWORD']
