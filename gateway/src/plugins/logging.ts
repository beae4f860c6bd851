// Logging: pino JSON lines on stdout (in batches, log-destination.ts), request ids, one access line per
// request (access-log.ts), per-request loggers made only when used (request-logger.ts).
//
// The logger is a server option (loggingOptions(), given to Fastify() by app.ts); the plugin adds the
// access line and writes out what is buffered when the gateway closes.
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { LogController, type FastifyServerOptions } from 'fastify'
import { wellFormedRequestId } from 'identity-rules'
import type { GatewayConfig } from '../config.js'
import { logAccess } from '../access-log.js'
import { bufferedStdout, type LogDestination } from '../log-destination.js'
import { lazyChildLoggerFactory } from '../request-logger.js'

export interface LoggingSetupOptions {
  /** Fastify logger option (default: pino at config.logLevel, with redaction). */
  logger?: FastifyServerOptions['logger']
  /** Destination for the default pino logger (default: stdout). Lets tests read the real log lines. */
  logStream?: { write: (line: string) => void }
}

export interface LoggingSetup {
  serverOptions: FastifyServerOptions
  /** The buffered stdout, when the gateway writes there itself (no logger or stream given). */
  destination: LogDestination | undefined
}

export function loggingOptions (config: GatewayConfig, options: LoggingSetupOptions): LoggingSetup {
  // stdout in batches unless a test gives its own stream or LOG_BUFFER_BYTES=0.
  const destination = options.logger === undefined && options.logStream === undefined && config.logBufferBytes > 0
    ? bufferedStdout(config.logBufferBytes)
    : undefined
  const stream = options.logStream ?? destination?.stream
  const logger: FastifyServerOptions['logger'] = options.logger ?? {
    level: config.logLevel,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]', 'res.headers["set-cookie"]', 'headers.authorization', 'headers.cookie'],
      censor: '[redacted]'
    },
    ...(stream !== undefined ? { stream } : {})
  }
  return {
    destination,
    serverOptions: {
      logger,
      // One log line per request (the access line below) instead of Fastify's two.
      logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
      childLoggerFactory: lazyChildLoggerFactory,
      // A client's X-Request-Id is kept when well-formed, else a UUID.
      requestIdHeader: false,
      genReqId: (req) => {
        const v = req.headers['x-request-id']
        return wellFormedRequestId(v) ? v : randomUUID()
      }
    }
  }
}

export const logging = fp<{ destination: LogDestination | undefined }>(function logging (app, opts, next) {
  const destination = opts.destination
  // Registered first, so it runs last: every other onClose hook can still log.
  if (destination !== undefined) app.addHook('onClose', (_instance, done) => { destination.close(); done() })
  // Callback-style hooks: no promise per request. Forwarded responses cut short are logged by the forwarder.
  app.addHook('onResponse', (request, reply, done) => {
    logAccess(app.log, request, reply, false)
    done()
  })
  next()
}, { name: 'gateway-logging', fastify: '5.x' })
