// TypeBox schemas: the single source for request validation, TypeScript types and the OpenAPI document.
import { Type, type Static } from 'typebox'

// Lengths are counted in Unicode code points (what JSON Schema's minLength/maxLength mean, and what PostgreSQL's
// char_length counts): "👍" is 1, "e\u0301" (e + combining acute) is 2. NUL cannot be stored in PostgreSQL text.
const NO_NUL = '^[^\\u0000]*$'

export const Title = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: NO_NUL,
  description: 'Trimmed before validation; 1..200 Unicode code points.'
})
export const Description = Type.Union([Type.String({ maxLength: 1000, pattern: NO_NUL }), Type.Null()], {
  description: 'Up to 1000 Unicode code points, or null.'
})
export const Completed = Type.Boolean()

export const Task = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    user_id: Type.String(),
    title: Type.String(),
    description: Type.Union([Type.String(), Type.Null()]),
    completed: Type.Boolean(),
    created_at: Type.String({ format: 'date-time', description: 'RFC 3339, UTC, millisecond precision.' }),
    updated_at: Type.String({ format: 'date-time', description: 'RFC 3339, UTC, millisecond precision.' })
  },
  { title: 'Task' }
)
export type Task = Static<typeof Task>

export const TaskList = Type.Array(Task)

/** POST and PUT: PUT replaces the whole record, so omitted optional fields go back to their defaults. */
export const TaskInput = Type.Object(
  {
    title: Title,
    description: Type.Optional(Description),
    completed: Type.Optional(Completed)
  },
  { additionalProperties: false }
)
export type TaskInput = Static<typeof TaskInput>

export const TaskPatch = Type.Object(
  {
    title: Type.Optional(Title),
    description: Type.Optional(Description),
    completed: Type.Optional(Completed)
  },
  { additionalProperties: false, minProperties: 1 }
)
export type TaskPatch = Static<typeof TaskPatch>

export const TaskParams = Type.Object({
  // Deliberately not constrained here: a malformed id is a 404 (no such task), not a 400.
  id: Type.String({ description: 'Task id (UUID). Anything else is answered with 404.' })
})

export const SORTS = ['created', 'updated', 'title'] as const
export const ORDERS = ['asc', 'desc'] as const
export const STATUSES = ['all', 'pending', 'completed'] as const
export type Sort = (typeof SORTS)[number]
export type Order = (typeof ORDERS)[number]
export type Status = (typeof STATUSES)[number]

export const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)), { default: 'all' })),
    sort: Type.Optional(Type.Union(SORTS.map((s) => Type.Literal(s)), { default: 'created' })),
    order: Type.Optional(Type.Union(ORDERS.map((s) => Type.Literal(s)), { default: 'asc' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2048, description: 'Opaque; copy it from the Link rel="next" header.' })
    )
  },
  { additionalProperties: false }
)
export type ListQuery = Static<typeof ListQuery>

export const HealthResponse = Type.Object({ status: Type.String() })
