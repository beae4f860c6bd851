// A TCP proxy on 127.0.0.1 that injects faults between two services (gateway → task service, or task
// service → PostgreSQL). Modes apply to new connections; switching mode also resets every open one, so
// pooled keep-alive connections feel the fault at once.
//   pass     forward bytes both ways
//   refuse   the listener is closed: connections are refused (ECONNREFUSED)
//   reset    accept, then reset (RST) at once
//   garbage  accept, read the request, answer bytes that are not HTTP, close
//   hang     accept and never answer (the peer's timeout must fire)
//   slow     forward, but hold every answer back for `slowMs` before passing it on
import net from 'node:net'

export type FaultMode = 'pass' | 'refuse' | 'reset' | 'garbage' | 'hang' | 'slow'

export class FaultProxy {
  mode: FaultMode = 'pass'
  slowMs = 2_000
  port = 0
  connections = 0
  private server: net.Server | undefined
  private readonly sockets = new Set<net.Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor (private readonly target: { host: string, port: number }) {}

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    if (this.server !== undefined) return
    const server = net.createServer((client) => { this.accept(client) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    this.port = (server.address() as net.AddressInfo).port
    this.server = server
  }

  private track (s: net.Socket): void {
    this.sockets.add(s)
    s.on('close', () => this.sockets.delete(s))
    s.on('error', () => {})
  }

  private accept (client: net.Socket): void {
    this.connections++
    this.track(client)
    switch (this.mode) {
      case 'reset':
        client.resetAndDestroy()
        return
      case 'garbage':
        client.once('data', () => { client.end('\u0000\u0001 this is not HTTP \r\n\r\n\u00ff') })
        return
      case 'hang':
        client.on('data', () => {})
        return
      default: {
        const upstream = net.connect(this.target.port, this.target.host)
        this.track(upstream)
        client.pipe(upstream)
        if (this.mode === 'slow') {
          const delay = this.slowMs
          upstream.on('data', (chunk: Buffer) => {
            const timer = setTimeout(() => { this.timers.delete(timer); if (!client.destroyed) client.write(chunk) }, delay)
            this.timers.add(timer)
          })
          upstream.on('end', () => {
            const timer = setTimeout(() => { this.timers.delete(timer); client.end() }, delay)
            this.timers.add(timer)
          })
        } else {
          upstream.pipe(client)
        }
        client.on('close', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
      }
    }
  }

  /** Resets every open connection. */
  cutAll (): void {
    // RST where the connection is established; a socket still connecting is simply destroyed.
    for (const s of this.sockets) {
      if (s.connecting || s.destroyed) s.destroy()
      else s.resetAndDestroy()
    }
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
  }

  /** Switches mode; open connections are reset so the new mode is felt at once. */
  async set (mode: FaultMode): Promise<void> {
    this.mode = mode
    this.cutAll()
    if (mode === 'refuse') {
      const server = this.server
      this.server = undefined
      if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
    } else {
      await this.start()
    }
  }

  async close (): Promise<void> {
    await this.set('refuse')
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }
}
