// Raw HTTP/1.1 over node:net: bytes exactly as written (inject and undici would normalize them).
import net from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  /** True when the server closed the connection after answering. */
  closed: boolean
}

function parse (buf: Buffer): { status: number, headers: Record<string, string>, body: string, complete: boolean } | undefined {
  const text = buf.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const lines = text.slice(0, end).split('\r\n')
  const status = Number((lines[0] ?? '').split(' ')[1])
  const headers: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    const k = l.slice(0, i).trim().toLowerCase()
    headers[k] = headers[k] !== undefined ? `${headers[k]}, ${l.slice(i + 1).trim()}` : l.slice(i + 1).trim()
  }
  let body = text.slice(end + 4)
  let complete: boolean
  if (headers['content-length'] !== undefined) {
    complete = Buffer.byteLength(body, 'latin1') >= Number(headers['content-length'])
  } else if (headers['transfer-encoding'] === 'chunked') {
    complete = body.includes('0\r\n\r\n')
    if (complete) {
      let out = ''
      let rest = body
      for (;;) {
        const nl = rest.indexOf('\r\n')
        const n = parseInt(rest.slice(0, nl), 16)
        if (!(n > 0)) break
        out += rest.slice(nl + 2, nl + 2 + n)
        rest = rest.slice(nl + 2 + n + 2)
      }
      body = out
    }
  } else {
    complete = status === 204 || status === 304
  }
  return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8'), complete }
}

/**
 * Sends `data` and resolves with the first response. With `waitClose`, also waits (up to `closeWaitMs`)
 * to learn whether the server closed the connection.
 */
export async function rawHttp (port: number, data: string | Buffer, opts: { waitClose?: boolean, closeWaitMs?: number } = {}): Promise<RawResponse> {
  return await new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let buf = Buffer.alloc(0)
    let parsed: ReturnType<typeof parse>
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      socket.destroy()
      if (parsed === undefined) reject(new Error(`no HTTP response (got ${JSON.stringify(buf.toString('latin1'))})`))
      else resolve({ status: parsed.status, headers: parsed.headers, body: parsed.body, closed })
    }
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      parsed = parse(buf)
      if (parsed?.complete === true && opts.waitClose !== true) finish(false)
      if (parsed?.complete === true && opts.waitClose === true) {
        setTimeout(() => { finish(false) }, opts.closeWaitMs ?? 10_000).unref()
      }
    })
    socket.on('close', () => { finish(true) })
    socket.on('error', () => { /* reset after an answer counts as closed */ })
    socket.write(data)
  })
}

export function req (method: string, target: string, headers: Array<[string, string]>, body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: gateway.test', ...headers.map(([k, v]) => `${k}: ${v}`)]
  return lines.join('\r\n') + '\r\n\r\n' + body
}
