// A recording stub of the task service: plain node:http on 127.0.0.1:0. Records what it received
// and answers whatever the test wants.
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startGateway, type RunningGateway } from '../../../support/gateway.js'
import type { TapTest } from '../../../support/test-context.js'

export interface Recorded {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  body: string
  /** Date.now() when the request's head arrived. */
  receivedAt: number
}

export type Responder = (req: IncomingMessage, res: ServerResponse, body: string) => void

export interface StubUpstream {
  url: string
  origin: string
  received: Recorded[]
  /** Requests to /tasks… only (not /readyz probes). */
  tasks: () => Recorded[]
  respond: (r: Responder) => void
  /** TCP connections accepted so far (a pooled connection reused does not count again). */
  connections: () => number
  /** TCP connections open right now. */
  openConnections: () => number
  close: () => Promise<void>
}

export const defaultResponder: Responder = (req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}')
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
}

/**
 * Writes `count` copies of `chunk` as the reader takes them (the next only after 'drain' when the socket
 * is full), then ends the response. `count` may be Infinity: a body that never ends.
 */
export function sendChunks (res: ServerResponse, chunk: Buffer, count: number): void {
  let sent = 0
  const pump = (): void => {
    while (sent < count) {
      sent++
      if (!res.write(chunk)) { res.once('drain', pump); return }
    }
    res.end()
  }
  pump()
}

export async function startUpstream (responder: Responder = defaultResponder): Promise<StubUpstream> {
  let current = responder
  const received: Recorded[] = []
  const server = http.createServer((req, res) => {
    const receivedAt = Date.now()
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body, receivedAt })
      current(req, res, body)
    })
  })
  server.keepAliveTimeout = 5_000
  let connections = 0
  let open = 0
  server.on('connection', (socket) => {
    connections++
    open++
    socket.once('close', () => { open-- })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  return {
    url: origin,
    origin,
    received,
    tasks: () => received.filter((r) => r.url.startsWith('/tasks')),
    respond: (r) => { current = r },
    connections: () => connections,
    openConnections: () => open,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** A stub upstream closed at t's teardown. */
export async function stubUpstream (t: Pick<TapTest, 'teardown'>, responder: Responder = defaultResponder): Promise<StubUpstream> {
  const up = await startUpstream(responder)
  t.teardown(() => up.close())
  return up
}

/**
 * The usual file setup: a stub upstream and a test gateway in front of it, both closed at t's teardown (the
 * gateway first), the upstream's record cleared before each subtest.
 */
export async function stubbedGateway (t: Pick<TapTest, 'teardown' | 'beforeEach'>, env: Record<string, string> = {}): Promise<{ up: StubUpstream, gw: RunningGateway }> {
  const up = await startUpstream()
  const gw = await startGateway({ TASK_SERVICE_URL: up.url, ...env })
  t.teardown(async () => {
    await gw.close()
    await up.close()
  })
  t.beforeEach(() => { up.received.length = 0 })
  return { up, gw }
}
