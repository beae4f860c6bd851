// The public API as clients see it (served at GET /openapi.json).
const errorRef = { $ref: '#/components/schemas/Error' }
const err = (description: string): object => ({ description, content: { 'application/json': { schema: errorRef } } })
const task = { $ref: '#/components/schemas/Task' }
const common = {
  401: err('Missing or invalid bearer token (WWW-Authenticate: Bearer realm="api"[, error="invalid_token", error_description="…"])'),
  404: err('Unknown route or unknown task'),
  502: err('Task service unavailable'),
  504: err('Task service did not answer in time')
}
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } }
const userParam = { name: 'user_id', in: 'path', required: true, description: 'Must equal the token\'s sub, else 403', schema: { type: 'string' } }
const taskBody = {
  required: true,
  content: {
    'application/json': {
      schema: {
        type: 'object',
        properties: { title: { type: 'string', minLength: 1, maxLength: 200 }, description: { type: ['string', 'null'], maxLength: 1000 }, completed: { type: 'boolean' } }
      }
    }
  }
}

function taskPaths (params: object[]): Record<string, object> {
  const withUser = params.length > 0
  const r403 = withUser ? { 403: err('The user in the path is not the token\'s sub') } : {}
  return {
    collection: {
      get: {
        summary: 'List the caller\'s tasks',
        parameters: [...params,
          { name: 'status', in: 'query', schema: { enum: ['all', 'pending', 'completed'] } },
          { name: 'sort', in: 'query', schema: { enum: ['created', 'updated', 'title'] } },
          { name: 'order', in: 'query', schema: { enum: ['asc', 'desc'] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } }],
        responses: { 200: { description: 'Tasks; a Link rel="next" header announces the next page', content: { 'application/json': { schema: { type: 'array', items: task } } } }, ...common, ...r403 }
      },
      post: { summary: 'Create a task', parameters: params, requestBody: taskBody, responses: { 201: { description: 'Created; Location names the task', content: { 'application/json': { schema: task } } }, 400: err('Invalid body'), ...common, ...r403 } }
    },
    item: {
      get: { summary: 'Read a task', parameters: [...params, idParam], responses: { 200: { description: 'The task', content: { 'application/json': { schema: task } } }, ...common, ...r403 } },
      put: { summary: 'Replace a task', parameters: [...params, idParam], requestBody: taskBody, responses: { 200: { description: 'The task', content: { 'application/json': { schema: task } } }, ...common, ...r403 } },
      patch: { summary: 'Update a task partially', parameters: [...params, idParam], requestBody: taskBody, responses: { 200: { description: 'The task', content: { 'application/json': { schema: task } } }, ...common, ...r403 } },
      delete: { summary: 'Delete a task', parameters: [...params, idParam], responses: { 204: { description: 'Deleted' }, ...common, ...r403 } }
    },
    complete: {
      patch: { summary: 'Toggle completed', parameters: [...params, idParam], responses: { 200: { description: 'The task', content: { 'application/json': { schema: task } } }, ...common, ...r403 } }
    }
  }
}

const plain = taskPaths([])
const compat = taskPaths([userParam])

export const openapiDocument = {
  openapi: '3.1.0',
  info: { title: 'Todo API (gateway)', version: '1.0.0', description: 'Every /api route requires Authorization: Bearer <JWT>. Errors: {"error":{"code","message","requestId"}}.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    schemas: {
      Task: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          user_id: { type: 'string' },
          title: { type: 'string' },
          description: { type: ['string', 'null'] },
          completed: { type: 'boolean' },
          created_at: { type: 'string', format: 'date-time' },
          updated_at: { type: 'string', format: 'date-time' }
        }
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'message', 'requestId'], properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' } } } }
      }
    }
  },
  security: [{ bearer: [] }],
  paths: {
    '/api/tasks': plain.collection,
    '/api/tasks/{id}': plain.item,
    '/api/tasks/{id}/complete': plain.complete,
    '/api/{user_id}/tasks': compat.collection,
    '/api/{user_id}/tasks/{id}': compat.item,
    '/api/{user_id}/tasks/{id}/complete': compat.complete,
    '/healthz': { get: { security: [], summary: 'Liveness', responses: { 200: { description: 'The process serves' } } } },
    '/readyz': { get: { security: [], summary: 'Readiness', responses: { 200: { description: 'Task service ready and signing keys loaded' }, 503: err('Not ready') } } }
  }
}
