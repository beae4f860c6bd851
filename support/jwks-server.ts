// A JWKS endpoint the caller controls, for tests and benchmarks: serve keys (or a raw body), fail with 500,
// answer garbage, an empty set, or hang. It answers on every path; `url` is Better Auth's path, so the same
// URL works as JWKS_URL and under BETTER_AUTH_URL. Listens on 127.0.0.1 only.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JWK } from 'jose'

export type JwksMode = 'ok' | 'down' | 'garbage' | 'hang' | 'empty'

export interface JwksServer {
  url: string
  /** http://127.0.0.1:<port>: the issuer of tokens whose keys this server publishes. */
  origin: string
  fetches: number
  keys: JWK[]
  mode: JwksMode
  /** Raw body override (e.g. a JWKS from Better Auth). */
  body: string | undefined
  close: () => Promise<void>
}

export async function startJwks (keys: JWK[] = []): Promise<JwksServer> {
  const state: JwksServer = { url: '', origin: '', fetches: 0, keys, mode: 'ok', body: undefined, close: async () => {} }
  const server = http.createServer((req, res) => {
    state.fetches++
    switch (state.mode) {
      case 'down': res.writeHead(500).end('oops'); return
      case 'garbage': res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [nope'); return
      case 'empty': res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}'); return
      case 'hang': return // never answers
      default:
        res.writeHead(200, { 'content-type': 'application/json' }).end(state.body ?? JSON.stringify({ keys: state.keys }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  state.url = `${state.origin}/api/auth/jwks`
  state.close = async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return state
}
