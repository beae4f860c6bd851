// The one error contract, checked: every error body a test looks at goes through errorCode() or assertError(),
// which validate it against the Error schema the service publishes (ajv, JSON Schema 2020-12, as OpenAPI 3.1).
import { Ajv2020 } from 'ajv/dist/2020.js'
import { ErrorResponse } from '../src/errors.js'

/** The part of a tap Test used here. */
interface Asserts {
  equal(found: unknown, wanted: unknown, message: string): unknown
  match(found: unknown, pattern: unknown, message: string): unknown
  notMatch(found: unknown, pattern: unknown, message: string): unknown
  ok(value: unknown, message: string): unknown
}

const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false })
ajv.addKeyword('example')
const validate = ajv.compile(ErrorResponse)

/** Validates a parsed body against the Error schema; throws with ajv's findings when it does not match. */
export function checkErrorBody (body: unknown): { error: { code: string, message: string, requestId: string, details?: { field: string, message: string }[] } } {
  if (!validate(body)) throw new Error(`error body does not match the Error schema: ${ajv.errorsText(validate.errors)}: ${JSON.stringify(body)}`)
  return body as ReturnType<typeof checkErrorBody>
}

/** The error code of a response whose body must be the shared error shape. */
export function errorCode (res: { body: string }): string {
  return checkErrorBody(JSON.parse(res.body)).error.code
}

/** Status, JSON content type, the schema, the code, requestId = X-Request-Id, and nothing internal in the body. */
export function assertError (
  t: Asserts,
  res: { statusCode: number; body: string; headers: Record<string, unknown> },
  status: number,
  code: string,
  what = ''
): void {
  const label = what === '' ? '' : `${what}: `
  t.equal(res.statusCode, status, `${label}status ${status}`)
  t.match(String(res.headers['content-type']), /^application\/json/, `${label}JSON`)
  let body: ReturnType<typeof checkErrorBody> | undefined
  try {
    body = checkErrorBody(JSON.parse(res.body))
  } catch (err) {
    t.ok(false, `${label}${(err as Error).message}`)
    return
  }
  t.equal(body.error.code, code, `${label}code ${code}`)
  t.equal(body.error.requestId, res.headers['x-request-id'], `${label}requestId is the X-Request-Id`)
  t.notMatch(res.body, /at .*\.(ts|js):\d+|SELECT|INSERT|UPDATE tasks|stack/i, `${label}no stack trace or SQL`)
}
