// /tasks routes. Identity comes from X-User-Id only (onRequest, before any body is read); every repository call
// is scoped by that user id; another user's task and a missing one are the same 404.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type TUnsafe } from 'typebox'
import type { Database } from '../db.js'
import { decodeCursor, encodeCursor, UUID } from '../cursor.js'
import { errorResponses, invalidField, notFound, type ErrorResponse } from '../errors.js'
import { readUserId, USER_ID_HEADER } from '../identity.js'
import { sortKey, TaskRepository } from '../repository.js'
import { ListQuery, Task, TaskInput, TaskList, TaskParams, TaskPatch } from '../schemas.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, from X-User-Id; '' until the identity hook has run. */
    userId: string
  }
}

/** Fields that would name an owner. The owner is X-User-Id, full stop: these are refused wherever they appear. */
const OWNERSHIP_FIELDS = ['user_id', 'userId']
// A lone UTF-16 surrogate cannot be stored as UTF-8; it would silently become U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function checkOwnershipFields (value: unknown, part: 'body' | 'query string'): void {
  if (!isRecord(value)) return
  const field = OWNERSHIP_FIELDS.find((f) => Object.prototype.hasOwnProperty.call(value, f))
  if (field !== undefined) {
    throw invalidField(field, `is not accepted in the ${part}: the owner is always the caller`, 'user_id_not_allowed')
  }
}

const userHeader = Type.Object({ [USER_ID_HEADER]: Type.String({ description: 'Set by the gateway: the caller.' }) })

// Every /tasks route: 400 (user_id in the query), 401 (before anything else), 421 (a Host outside ALLOWED_HOSTS,
// plugins/allowed-hosts.ts), 500, 503. Bodies are parsed on every method but GET/HEAD, hence 413/415 wherever a
// body can be sent.
const errors = <S extends number>(...statuses: S[]): Record<S | 400 | 401 | 421 | 500 | 503, TUnsafe<ErrorResponse>> =>
  errorResponses<S | 400 | 401 | 421 | 500 | 503>(400, 401, 421, ...statuses, 500, 503)

function requireId (id: string): string {
  if (!UUID.test(id)) throw notFound()
  return id.toLowerCase()
}

export const tasksRoutes: FastifyPluginAsyncTypebox<{ db: Database }> = async (app, opts) => {
  const repo = new TaskRepository(opts.db)

  app.addHook('onRequest', async (request) => {
    request.userId = readUserId(request.headers[USER_ID_HEADER], request.raw.rawHeaders)
  })

  // Runs after parsing, before schema validation: refuse ownership fields, trim the title, refuse lone surrogates.
  app.addHook('preValidation', async (request) => {
    checkOwnershipFields(request.query, 'query string')
    // Query strings are converted to numbers before validation; insist on digits so "1.5" or "1e2" is not rounded.
    const limit = isRecord(request.query) ? request.query.limit : undefined
    if ((typeof limit === 'string' && !/^[0-9]+$/.test(limit)) || Array.isArray(limit)) {
      throw invalidField('limit', Array.isArray(limit) ? 'must be given only once' : 'must be an integer')
    }
    checkOwnershipFields(request.body, 'body')
    const body = request.body
    if (!isRecord(body)) return
    if (typeof body.title === 'string') body.title = body.title.trim()
    for (const field of ['title', 'description']) {
      const v = body[field]
      if (typeof v === 'string' && LONE_SURROGATE.test(v)) {
        throw invalidField(field, 'is not well-formed Unicode (it contains a lone surrogate)')
      }
    }
  })

  app.get(
    '/tasks',
    {
      schema: {
        summary: "List the caller's tasks",
        description:
          'A bare JSON array. When more tasks follow, a `Link: </tasks?…&cursor=…>; rel="next"` header names the next page.',
        tags: ['tasks'],
        headers: userHeader,
        querystring: ListQuery,
        response: { 200: TaskList, ...errors() }
      }
    },
    async (request, reply) => {
      const status = request.query.status ?? 'all'
      const sort = request.query.sort ?? 'created'
      const order = request.query.order ?? 'asc'
      const limit = request.query.limit ?? 50
      const after = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor, sort, order)
      const rows = await repo.list(request.userId, { status, sort, order, limit, after })
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      if (rows.length > limit && last) {
        const cursor = encodeCursor({ sort, order, key: sortKey(last, sort), id: last.id })
        const next = new URLSearchParams({ status, sort, order, limit: String(limit), cursor })
        void reply.header('link', `</tasks?${next.toString()}>; rel="next"`)
      }
      return page
    }
  )

  app.post(
    '/tasks',
    {
      schema: {
        summary: 'Create a task',
        tags: ['tasks'],
        headers: userHeader,
        body: TaskInput,
        response: { 201: Task, ...errors(413, 415) }
      }
    },
    async (request, reply) => {
      const { title, description = null, completed = false } = request.body
      const task = await repo.create(request.userId, { title, description, completed })
      return reply.code(201).header('location', `/tasks/${task.id}`).send(task)
    }
  )

  app.get(
    '/tasks/:id',
    {
      schema: { summary: 'Read a task', tags: ['tasks'], headers: userHeader, params: TaskParams, response: { 200: Task, ...errors(404) } }
    },
    async (request) => {
      const task = await repo.get(request.userId, requireId(request.params.id))
      if (!task) throw notFound()
      return task
    }
  )

  app.put(
    '/tasks/:id',
    {
      schema: {
        summary: 'Replace a task',
        description: 'Whole-record replacement: an omitted description becomes null, an omitted completed becomes false.',
        tags: ['tasks'],
        headers: userHeader,
        params: TaskParams,
        body: TaskInput,
        response: { 200: Task, ...errors(404, 413, 415) }
      }
    },
    async (request) => {
      const { title, description = null, completed = false } = request.body
      const task = await repo.update(request.userId, requireId(request.params.id), { title, description, completed })
      if (!task) throw notFound()
      return task
    }
  )

  app.patch(
    '/tasks/:id',
    {
      schema: {
        summary: 'Change some fields of a task',
        tags: ['tasks'],
        headers: userHeader,
        params: TaskParams,
        body: TaskPatch,
        response: { 200: Task, ...errors(404, 413, 415) }
      }
    },
    async (request) => {
      const task = await repo.update(request.userId, requireId(request.params.id), request.body)
      if (!task) throw notFound()
      return task
    }
  )

  app.patch(
    '/tasks/:id/complete',
    {
      schema: {
        summary: 'Toggle completed',
        description: 'Flips completed atomically. Takes no body.',
        tags: ['tasks'],
        headers: userHeader,
        params: TaskParams,
        response: { 200: Task, ...errors(404, 413, 415) }
      }
    },
    async (request) => {
      const task = await repo.toggle(request.userId, requireId(request.params.id))
      if (!task) throw notFound()
      return task
    }
  )

  app.delete(
    '/tasks/:id',
    {
      schema: {
        summary: 'Delete a task',
        tags: ['tasks'],
        headers: userHeader,
        params: TaskParams,
        response: { 204: Type.Null({ description: 'Deleted; no body.' }), ...errors(404, 413, 415) }
      }
    },
    async (request, reply) => {
      const deleted = await repo.delete(request.userId, requireId(request.params.id))
      if (!deleted) throw notFound()
      return reply.code(204).send(null)
    }
  )
}
