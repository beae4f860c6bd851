// Identity: the X-User-Id header set by the gateway is the only source of "who is calling".
import { hasControlCharacter, MAX_USER_ID_LENGTH, tooLongUserId } from 'identity-rules'
import { HttpError } from './errors.js'

export const USER_ID_HEADER = 'x-user-id'
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Node decodes header bytes as latin1. The gateway sends the token's `sub` as UTF-8 bytes, so the value is
 * re-read as UTF-8; bytes that are not valid UTF-8 are rejected. (A string holding characters above U+00FF can
 * only come from an in-process caller such as inject(), and is taken as is.)
 */
function decodeHeader (value: string): string | undefined {
  let nonAscii = false
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c > 0xff) return value
    if (c >= 0x80) nonAscii = true
  }
  if (!nonAscii) return value
  try {
    return utf8.decode(Buffer.from(value, 'latin1'))
  } catch {
    return undefined
  }
}

/**
 * Returns the caller's user id, or throws a 401 HttpError. `rawHeaders` is the flat [name, value, …] list, used
 * to refuse a request carrying the header more than once (Node would otherwise join the values with ", ").
 */
export function readUserId (headerValue: string | string[] | undefined, rawHeaders: string[]): string {
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === USER_ID_HEADER) count++
  }
  if (count > 1 || Array.isArray(headerValue)) {
    throw new HttpError(401, 'invalid_user_id', 'X-User-Id must be sent exactly once')
  }
  if (headerValue === undefined || headerValue === '') {
    throw new HttpError(401, 'missing_user_id', 'X-User-Id header is required')
  }
  const userId = decodeHeader(headerValue)
  if (userId === undefined) throw new HttpError(401, 'invalid_user_id', 'X-User-Id must be UTF-8')
  if (hasControlCharacter(userId)) throw new HttpError(401, 'invalid_user_id', 'X-User-Id must not contain control characters')
  if (userId.trim() === '') throw new HttpError(401, 'missing_user_id', 'X-User-Id header is required')
  if (tooLongUserId(userId)) {
    throw new HttpError(401, 'invalid_user_id', `X-User-Id must be at most ${MAX_USER_ID_LENGTH} characters`)
  }
  return userId
}
