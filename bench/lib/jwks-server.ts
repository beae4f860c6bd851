// A JWKS endpoint in the harness process: the gateway fetches it at start and on refresh only, so it can
// share the load generator's event loop without disturbing the measurement.
import { createServer, type Server } from 'node:http'
import type { JWK } from 'jose'

export interface JwksServer {
  url: string
  origin: string
  /** The keys are created after the server, because the issuer in the tokens is the server's origin. */
  setKeys(publicJwks: JWK[]): void
  close(): Promise<void>
}

export async function startJwksServer (): Promise<JwksServer> {
  let body = JSON.stringify({ keys: [] })
  const server: Server = createServer((req, res) => {
    if (req.url === '/api/auth/jwks') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' })
      res.end(body)
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (!address || typeof address !== 'object') throw new Error('JWKS server has no address')
  const origin = `http://127.0.0.1:${address.port}`
  return {
    // Better Auth's path, so the same URL works as JWKS_URL and under BETTER_AUTH_URL.
    url: `${origin}/api/auth/jwks`,
    origin,
    setKeys: (publicJwks) => {
      body = JSON.stringify({ keys: publicJwks })
    },
    close: () => new Promise((resolve) => server.close(() => resolve()))
  }
}
