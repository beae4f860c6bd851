// The lazy per-request logger: lines written through it are exactly pino's child lines; no child is
// made for a request that logs nothing through it, or only at disabled levels.
import t from 'tap'
import { pino } from 'pino'
import { LazyChildLogger, lazyChildLoggerFactory } from '../src/request-logger.js'

function capture (level = 'info'): { root: pino.Logger, lines: Array<Record<string, unknown>>, children: () => number } {
  const lines: Array<Record<string, unknown>> = []
  const root = pino({ level }, { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>) } })
  let made = 0
  const child = root.child.bind(root)
  root.child = ((...a: Parameters<typeof child>) => { made++; return child(...a) }) as typeof root.child
  return { root, lines, children: () => made }
}

t.test('a line carries the bindings of every level of lazy children, like pino children', async (t) => {
  const { root, lines, children } = capture()
  const log = lazyChildLoggerFactory.call(undefined as never, root, { reqId: 'r1' }, {}, undefined as never)
  const withUser = log.child({ userId: 'u1' })
  t.equal(children(), 0, 'no pino child yet')
  withUser.warn({ upstreamError: 'ECONNRESET' }, 'task service request failed')
  t.equal(children(), 1, 'one pino child, made on the first line')
  withUser.info('second line')
  t.equal(children(), 1, 'and reused')
  t.match(lines[0], { level: 40, reqId: 'r1', userId: 'u1', upstreamError: 'ECONNRESET', msg: 'task service request failed' })
  t.match(lines[1], { level: 30, reqId: 'r1', userId: 'u1', msg: 'second line' })
})

t.test('lines at disabled levels make no child and write nothing', async (t) => {
  const { root, lines, children } = capture('warn')
  const log = new LazyChildLogger(root, { reqId: 'r2' })
  log.info('not written')
  log.debug({ a: 1 }, 'not written')
  t.equal(children(), 0)
  t.equal(lines.length, 0)
  t.equal(log.level, 'warn', 'level reads through to the parent')
  t.notOk(log.isLevelEnabled('info'))
  t.ok(log.isLevelEnabled('error'))
  log.error('written')
  t.match(lines, [{ level: 50, reqId: 'r2', msg: 'written' }])
})

t.test('child options (a route log level or serializers) get pino\'s own child at once', async (t) => {
  const { root, lines, children } = capture()
  const log = lazyChildLoggerFactory.call(undefined as never, root, { reqId: 'r3' }, { level: 'debug' }, undefined as never)
  t.equal(children(), 1)
  log.debug('route-level debug')
  t.match(lines, [{ level: 20, reqId: 'r3' }])
})
