// The metrics listener: GET /metrics in the Prometheus text format, on its own port (METRICS_PORT), so the
// public port never serves it and the two can face different networks. Nothing else is served here. A plain
// node:http server: no pipeline, no logging, no tracing of scrapes.
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { errorBody } from './errors.js'

export interface MetricsListener {
  /** The bound port (useful with port 0). */
  readonly port: number
  close: () => Promise<void>
}

const JSON_TYPE = 'application/json; charset=utf-8'

/** Starts the listener; rejects when the port cannot be bound (server.ts then exits with a message). */
export async function listenMetrics (registry: Registry, opts: { port: number, host: string }): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': JSON_TYPE }).end(JSON.stringify(errorBody('not_found', 'only /metrics is served here', randomUUID())))
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': JSON_TYPE, allow: 'GET, HEAD' }).end(JSON.stringify(errorBody('method_not_allowed', `method ${req.method ?? ''} not allowed on this route`, randomUUID())))
      return
    }
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, () => {
      res.writeHead(500, { 'content-type': JSON_TYPE }).end(JSON.stringify(errorBody('internal_error', 'metrics collection failed', randomUUID())))
    })
  })
  // A scrape is one short request; idle keep-alive connections must not hold a shutdown up.
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve() })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => { resolve() })
      server.closeAllConnections()
    })
  }
}
