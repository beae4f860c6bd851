// Keyset pagination cursors: base64url(JSON) of the last row's sort key and id, plus the sort and order they
// belong to. Opaque to clients; validated strictly, since it comes back from the outside.
import { HttpError, invalidField } from './errors.js'
import type { Order, Sort } from './schemas.js'

export interface Cursor {
  sort: Sort
  order: Order
  /** Last row's sort key: an RFC 3339 timestamp for created/updated, the title for title. */
  key: string
  /** Last row's id (the tie-breaker). */
  id: string
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

export function encodeCursor (c: Cursor): string {
  return Buffer.from(JSON.stringify({ s: c.sort, o: c.order, k: c.key, i: c.id }), 'utf8').toString('base64url')
}

const invalid = (): HttpError => invalidField('cursor', 'is malformed; use the Link rel="next" URL as given', 'invalid_cursor')

export function decodeCursor (raw: string, sort: Sort, order: Order): Cursor {
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw invalid()
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalid()
  const { s, o, k, i } = parsed as Record<string, unknown>
  if (typeof s !== 'string' || typeof o !== 'string' || typeof k !== 'string' || typeof i !== 'string') throw invalid()
  if (!UUID.test(i)) throw invalid()
  if (s !== sort || o !== order) {
    throw invalidField('cursor', 'belongs to a different sort or order', 'invalid_cursor')
  }
  if (s === 'title') {
    if (k.length === 0 || k.includes('\u0000')) throw invalid()
  } else if (!ISO.test(k) || Number.isNaN(Date.parse(k))) {
    throw invalid()
  }
  return { sort, order, key: k, id: i }
}
