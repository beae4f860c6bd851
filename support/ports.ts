// Free loopback ports, asked from the kernel rather than hard-coded, so two runs (or a developer's stack
// on 8080/3001) never collide with a test or benchmark. A port is free when asked; whoever listens next takes it.
import { createServer } from 'node:net'

export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}
