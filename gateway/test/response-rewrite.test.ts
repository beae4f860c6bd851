// The response-header rules on their own (pipeline/response-rewrite.ts): which URI references survive and
// what they become. Over HTTP: forward.test.ts.
import t from 'tap'
import { isCleanTasksPath, isDroppedResponseHeader, referenceRules, rewriteLink, rewriteRefresh, toPublicReference } from '../src/pipeline/response-rewrite.js'

const o = 'http://10.0.0.5:3001'
const rules = referenceRules(o, undefined)

t.test('clean /tasks paths are mapped under the public prefix', async (t) => {
  t.equal(toPublicReference('/tasks/1', '/api', rules), '/api/tasks/1')
  t.equal(toPublicReference('/tasks', '/api/u%201', rules), '/api/u%201/tasks')
  t.equal(toPublicReference(`${o}/tasks/1?x=1`, '/api', rules), '/api/tasks/1?x=1')
  t.equal(toPublicReference('/tasks?cursor=eyJpZCI6MX0&limit=20', '/api', rules), '/api/tasks?cursor=eyJpZCI6MX0&limit=20')
  t.equal(toPublicReference('/tasks/0b7e6f8a-2f1c/complete#top', '/api', rules), '/api/tasks/0b7e6f8a-2f1c/complete#top')
  t.equal(toPublicReference('/tasks/caf%C3%A9', '/api', rules), '/api/tasks/caf%C3%A9')
})

t.test('everything else is dropped: other hosts, scheme-relative, backslashes, dot segments, internal addresses', async (t) => {
  for (const uri of [
    `${o}/admin`, 'https://docs.example.com/x', '/tasksx', '/admin', '//evil.example/tasks', '/\\evil.example/tasks',
    '\\\\evil.example', '/tasks\\..\\admin', '/tasks/\\evil', '/tasks/../admin', '/tasks/./1', '/tasks/%2E%2e/admin', '/tasks/%2e/x',
    '/tasks/%2Fadmin', '/tasks/%5Cadmin', '/tasks/%0d%0aSet-Cookie:x', '/tasks//x', '/tasks/', '/tasks/a b', '/tasks/\t1',
    'tasks/1', './tasks', '?page=2', '#x', '', 'javascript:alert(1)', 'data:text/html,x', 'http://10.0.0.5:3002/tasks/1',
    'http://10.0.0.6:3001/tasks/1', 'https://10.0.0.5:3001/tasks/1', `${o}/tasks/..%2f..%2fadmin`, `${o}/tasks/%2e%2e/admin`,
    'http:/tasks/1', 'http:tasks/1'
  ]) t.equal(toPublicReference(uri, '/api', rules), undefined, JSON.stringify(uri))
})

t.test('the task service\'s origin in every spelling the gateway can know', async (t) => {
  const loop = referenceRules('http://127.0.0.1:3001', undefined)
  for (const spelling of ['http://localhost:3001', 'http://LOCALHOST:3001', 'http://127.0.0.1:3001', 'http://[::1]:3001', 'http://127.1.2.3:3001', 'http://localhost.:3001', 'http://0x7f000001:3001', 'http://127.1:3001', 'http://2130706433:3001', 'http://user:pw@127.0.0.1:3001']) {
    t.equal(toPublicReference(`${spelling}/tasks/9`, '/api', loop), '/api/tasks/9', spelling)
    t.equal(toPublicReference(`${spelling}/other`, '/api', loop), undefined, `${spelling}/other dropped`)
    t.equal(toPublicReference(`${spelling}/tasks/%2e%2e/other`, '/api', loop), undefined, `${spelling}/tasks/%2e%2e/other dropped`)
  }
  t.equal(toPublicReference('http://localhost:3002/tasks/9', '/api', loop), undefined, 'another port is another service: dropped')
  const named = referenceRules('http://task-service:3001', undefined)
  t.equal(toPublicReference('http://task-service:3001/tasks/9', '/api', named), '/api/tasks/9')
  t.equal(toPublicReference('http://TASK-SERVICE:3001/tasks/9', '/api', named), '/api/tasks/9')
  t.equal(toPublicReference('http://localhost:3001/tasks/9', '/api', named), undefined, 'loopback is not the task service when it is configured elsewhere: dropped')
})

t.test('PUBLIC_URL makes references absolute on the public origin', async (t) => {
  const pub = referenceRules(o, 'https://api.example.com')
  t.equal(toPublicReference('/tasks/1', '/api', pub), 'https://api.example.com/api/tasks/1')
  t.equal(toPublicReference(`${o}/tasks?cursor=a`, '/api/alice', pub), 'https://api.example.com/api/alice/tasks?cursor=a')
  t.equal(toPublicReference('//evil.example/tasks', '/api', pub), undefined)
  t.equal(rewriteLink('</tasks?cursor=a>; rel="next"', '/api', pub), '<https://api.example.com/api/tasks?cursor=a>; rel="next"')
})

t.test('Link: each entry on its own; unclean targets and anchors left out; commas in quoted parameters kept', async (t) => {
  t.equal(rewriteLink('</tasks?cursor=a>; rel="next", </tasks?cursor=0>; rel="first"', '/api', rules), '</api/tasks?cursor=a>; rel="next", </api/tasks?cursor=0>; rel="first"')
  t.equal(rewriteLink('<https://evil.example/>; rel="help", </tasks/1>; rel="up"', '/api', rules), '</api/tasks/1>; rel="up"')
  t.equal(rewriteLink('</tasks/1>; rel="up"; title="a, b", </\\evil>; rel="x"', '/api', rules), '</api/tasks/1>; rel="up"; title="a, b"')
  t.equal(rewriteLink('</tasks/1>; anchor="https://evil.example/"; rel="up"', '/api', rules), undefined)
  t.equal(rewriteLink('<//evil.example>; rel="next"', '/api', rules), undefined, 'nothing left: the header is dropped')
  t.equal(rewriteLink('/tasks/1; rel="next"', '/api', rules), undefined, 'not a Link list')
  t.equal(rewriteLink('</tasks/1; rel="next"', '/api', rules), undefined, 'unterminated target')
})

t.test('Refresh: the URL made public, or the header dropped', async (t) => {
  t.equal(rewriteRefresh('0; url=/tasks', '/api', rules), '0; url=/api/tasks')
  t.equal(rewriteRefresh('5', '/api', rules), '5')
  t.equal(rewriteRefresh("1; url='/tasks/1'", '/api', rules), '1; url=/api/tasks/1')
  t.equal(rewriteRefresh('0; url=//evil.example', '/api', rules), undefined)
  t.equal(rewriteRefresh('0; url=/\\evil.example', '/api', rules), undefined)
  t.equal(rewriteRefresh('soon', '/api', rules), undefined)
})

t.test('dropped response headers', async (t) => {
  for (const n of ['set-cookie', 'set-cookie2', 'cdn-cache-control', 'cloudflare-cdn-cache-control', 'surrogate-control', 'access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers', 'access-control-allow-private-network', 'connection', 'transfer-encoding', 'keep-alive', 'server', 'x-powered-by', 'via', 'alt-svc',
    'proxy-authenticate', 'x-accel-redirect', 'x-accel-buffering', 'x-accel-expires', 'x-accel-limit-rate', 'x-sendfile', 'x-lighttpd-send-file', 'x-litespeed-location', 'x-user-id', 'x-gateway-assertion']) {
    t.ok(isDroppedResponseHeader(n), n)
  }
  for (const n of ['content-type', 'etag', 'last-modified', 'vary', 'cache-control', 'location', 'link', 'retry-after', 'x-request-id']) {
    t.notOk(isDroppedResponseHeader(n), n)
  }
})

t.test('isCleanTasksPath', async (t) => {
  t.ok(isCleanTasksPath('/tasks'))
  t.ok(isCleanTasksPath('/tasks/abc-123/complete?x=1&y=%20#f'))
  t.notOk(isCleanTasksPath('/tasks/..'))
  t.notOk(isCleanTasksPath('/tasks/%2e%2E'))
  t.ok(isCleanTasksPath('/tasks/..a'), 'a segment that only begins with dots is an ordinary name')
  t.ok(isCleanTasksPath('/tasks?next=/tasks/../x'), 'dot segments in the query are data')
})
