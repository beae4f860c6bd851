// `npm run keys`: a fresh Ed25519 key pair for the gateway's identity assertions, printed as two .env lines
// (PEM with \n escapes, as docker compose env files carry it). The private key goes to the gateway only, the
// public key to the task service. `npm start` writes such a pair into .env by itself on first run.
import { assertionKeyLines } from './dev-env.js'

process.stdout.write(assertionKeyLines())
