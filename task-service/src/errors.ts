// One error shape for every non-2xx answer: { statusCode, error, code, message } (+ details for validation).
// No stack traces, SQL or parameters ever reach a response body.
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance } from 'fastify'
import { Type, type Static } from 'typebox'
import { isUnavailableError } from './db.js'

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer({ description: 'The HTTP status code, repeated.' }),
    error: Type.String({ description: 'The HTTP reason phrase, e.g. "Not Found".' }),
    code: Type.String({ description: 'Stable machine-readable code, e.g. TASK_NOT_FOUND.' }),
    message: Type.String({ description: 'Human-readable explanation.' }),
    details: Type.Optional(
      Type.Array(Type.Object({ path: Type.String(), message: Type.String() }), {
        description: 'Validation errors only: which field failed and why.'
      })
    )
  },
  { title: 'Error' }
)
export type ErrorResponse = Static<typeof ErrorResponse>

export class HttpError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: { path: string; message: string }[]
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export const notFound = (): HttpError => new HttpError(404, 'TASK_NOT_FOUND', 'Task not found')

export function errorBody (statusCode: number, code: string, message: string, details?: ErrorResponse['details']): ErrorResponse {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...(details ? { details } : {}) }
}

interface ValidationIssue {
  instancePath?: string
  message?: string
  keyword?: string
  params?: Record<string, unknown>
}

function validationDetails (err: FastifyError): { path: string; message: string }[] {
  const context = err.validationContext ?? 'request'
  return ((err.validation ?? []) as ValidationIssue[]).map((issue) => {
    const path = `${context}${issue.instancePath ?? ''}`
    return { path, message: issue.message ?? issue.keyword ?? 'is invalid' }
  })
}

/** Maps anything thrown to the public error shape. Exported for unit tests. */
export function toErrorBody (err: unknown): ErrorResponse {
  if (err instanceof HttpError) return errorBody(err.statusCode, err.code, err.message, err.details)
  if (isUnavailableError(err)) {
    return errorBody(503, 'DATABASE_UNAVAILABLE', 'The database is unavailable; retry shortly')
  }
  const e = err as FastifyError
  if (e.validation) {
    const details = validationDetails(e)
    const first = details[0]
    return errorBody(400, 'VALIDATION_ERROR', first ? `${first.path} ${first.message}` : 'Invalid request', details)
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errorBody(413, 'PAYLOAD_TOO_LARGE', 'Request body is larger than 64 KiB')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errorBody(400, 'INVALID_JSON', 'Request body is not valid JSON')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errorBody(400, 'INVALID_JSON', 'Request body is empty but Content-Type is application/json')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errorBody(415, 'UNSUPPORTED_MEDIA_TYPE', 'Request bodies must be application/json')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errorBody(400, 'INVALID_CONTENT_LENGTH', 'Content-Length does not match the body')
  }
  // JSON.parse failures surface as SyntaxError with a 400 status.
  if (err instanceof SyntaxError && e.statusCode === 400) {
    return errorBody(400, 'INVALID_JSON', 'Request body is not valid JSON')
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status >= 400 && status < 500) {
    const code = (STATUS_CODES[status] ?? 'Bad Request').toUpperCase().replace(/[^A-Z]+/g, '_')
    return errorBody(status, code, STATUS_CODES[status] ?? 'Bad request')
  }
  return errorBody(500, 'INTERNAL_ERROR', 'Internal server error')
}

/** What is safe to log about an error: never the SQL text or its parameters (they carry request bodies). */
export function loggableError (err: unknown): Record<string, unknown> {
  if (typeof err !== 'object' || err === null) return { message: String(err) }
  const e = err as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown; cause?: unknown }
  const out: Record<string, unknown> = { type: e.name, code: e.code, message: e.message }
  if (typeof e.stack === 'string') out.stack = e.stack
  if (e.cause !== undefined) {
    const c = e.cause as { code?: unknown; message?: unknown }
    out.cause = { code: c.code, message: c.message }
  }
  return out
}

export function registerErrorHandling (app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const body = toErrorBody(err)
    if (body.statusCode >= 500) {
      request.log.error({ err: loggableError(err) }, body.statusCode === 503 ? 'database unavailable' : 'unhandled error')
    }
    if (body.statusCode === 503) void reply.header('retry-after', '1')
    return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
  })

  // The message does not echo the path: behind the gateway, internal paths stay internal.
  app.setNotFoundHandler((_request, reply) => {
    return reply.code(404).send(errorBody(404, 'ROUTE_NOT_FOUND', 'Route not found'))
  })
}
