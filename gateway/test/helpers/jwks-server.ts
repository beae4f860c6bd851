// A JWKS endpoint the test controls: serve keys, fail with 500, answer garbage, or hang.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JWK } from 'jose'

export type JwksMode = 'ok' | 'down' | 'garbage' | 'hang' | 'empty'

export interface JwksServer {
  url: string
  fetches: number
  keys: JWK[]
  mode: JwksMode
  /** Raw body override (e.g. a JWKS from Better Auth). */
  body: string | undefined
  close: () => Promise<void>
}

export async function startJwks (keys: JWK[] = []): Promise<JwksServer> {
  const state: JwksServer = { url: '', fetches: 0, keys, mode: 'ok', body: undefined, close: async () => {} }
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
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
  state.close = async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return state
}
