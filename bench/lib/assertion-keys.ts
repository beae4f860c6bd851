// The identity-assertion key pair for a benchmark run: the gateway signs with the private half, the real task
// service (--e2e) verifies with the public half. Made once per run, like `npm run keys` would.
import { generateKeyPairSync } from 'node:crypto'

const pair = generateKeyPairSync('ed25519')
export const BENCH_ASSERTION_PRIVATE_KEY = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
export const BENCH_ASSERTION_PUBLIC_KEY = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()
