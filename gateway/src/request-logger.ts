// The per-request logger (request.log), made only when something logs through it.
//
// Fastify gives every request a child logger bound to its request id, and the gateway binds the user id
// once the token is verified. pino's child() serializes its bindings when it is created, a cost paid twice
// per request that showed in the benchmark profile (docs/performance.md, "Hot-path choices"), while a
// successful request logs nothing through request.log (its one access line is written by the
// root logger with reqId and userId spelled out, access-log.ts). This logger keeps the bindings and makes the
// pino child on the first line actually written at an enabled level; what is logged is the same.
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'

type Bindings = Record<string, unknown>
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type LogArgs = Parameters<FastifyBaseLogger['info']>

function hasKeys (o: object): boolean {
  // A for-in that stops at the first key: no array of keys is built (Object.keys would).
  // eslint-disable-next-line no-unreachable-loop
  for (const _ in o) return true
  return false
}

/** pino's isLevelEnabled; a logger without it is asked every time. */
function levelEnabled (logger: FastifyBaseLogger, level: string): boolean {
  const check = (logger as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled
  return typeof check === 'function' ? check.call(logger, level) : true
}

export class LazyChildLogger {
  #real: FastifyBaseLogger | undefined

  constructor (private readonly parent: FastifyBaseLogger, readonly bindings: Bindings) {}

  get level (): string {
    return this.#real?.level ?? this.parent.level
  }

  set level (value: string) {
    this.materialize().level = value
  }

  fatal (...args: LogArgs): void { this.write('fatal', args) }
  error (...args: LogArgs): void { this.write('error', args) }
  warn (...args: LogArgs): void { this.write('warn', args) }
  info (...args: LogArgs): void { this.write('info', args) }
  debug (...args: LogArgs): void { this.write('debug', args) }
  trace (...args: LogArgs): void { this.write('trace', args) }
  silent (): void {}

  isLevelEnabled (level: string): boolean {
    return levelEnabled(this.#real ?? this.parent, level)
  }

  child (bindings: Bindings, options?: Record<string, unknown>): FastifyBaseLogger {
    if (this.#real !== undefined || (options !== undefined && hasKeys(options))) return this.materialize().child(bindings, options)
    return new LazyChildLogger(this.parent, { ...this.bindings, ...bindings }) as unknown as FastifyBaseLogger
  }

  /**
   * Adds a binding to this logger itself, for the lines it writes from now on — like replacing it by
   * child({ [key]: value }) without making a new logger. Only before its first line (after that,
   * pino has serialized the bindings): returns false then, and the caller makes a child instead.
   */
  bind (key: string, value: unknown): boolean {
    if (this.#real !== undefined) return false
    this.bindings[key] = value
    return true
  }

  private write (level: Level, args: LogArgs): void {
    const logger = this.#real ?? this.parent
    if (!levelEnabled(logger, level)) return
    const real = this.materialize()
    ;(real[level] as (...a: LogArgs) => void)(...args)
  }

  private materialize (): FastifyBaseLogger {
    this.#real ??= this.parent.child(this.bindings)
    return this.#real
  }
}

/** request.log with one more binding: the same lazy logger when it can take it, else a child. */
export function withBinding (logger: FastifyBaseLogger, key: string, value: unknown): FastifyBaseLogger {
  if (logger instanceof LazyChildLogger && logger.bind(key, value)) return logger
  return logger.child({ [key]: value })
}

/** Fastify's `childLoggerFactory`: a lazy child, or pino's own when a route sets logger options. */
export const lazyChildLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) => {
  if (hasKeys(options)) return logger.child(bindings, options)
  return new LazyChildLogger(logger, bindings) as unknown as FastifyBaseLogger
}
