// RecencyMap (src/recency-map.ts): bounded, least recently used first out, a use reordering only from the
// older half of the order; lookup() alone is not a use.
import t from 'tap'
import { RecencyMap } from '../src/recency-map.js'

/** Which of `keys` are held (lookup() is not a use, so asking changes nothing). */
function held (m: RecencyMap<number>, keys: string[]): string[] {
  return keys.filter((k) => m.lookup(k) !== undefined)
}

function use (m: RecencyMap<number>, key: string): void {
  const slot = m.lookup(key)
  if (slot !== undefined) m.used(key, slot)
}

t.test('holds at most maxEntries; the least recently set goes first', async (t) => {
  const m = new RecencyMap<number>(3)
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) m.set(k, i)
  t.equal(m.size, 3)
  t.same(held(m, ['a', 'b', 'c', 'd']), ['b', 'c', 'd'])
  t.equal(m.lookup('d')?.value, 3)
})

t.test('set() on a present key replaces its value and makes it the most recent', async (t) => {
  const m = new RecencyMap<number>(3)
  for (const [i, k] of ['a', 'b', 'c'].entries()) m.set(k, i)
  m.set('a', 10)
  m.set('d', 3)
  t.same(held(m, ['a', 'b', 'c', 'd']), ['a', 'c', 'd'], 'b went, not the re-set a')
  t.equal(m.lookup('a')?.value, 10)
})

t.test('a use moves an entry only from the older half; lookup() alone moves nothing', async (t) => {
  const m = new RecencyMap<number>(4)
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) m.set(k, i)
  use(m, 'd') // younger half: stays
  use(m, 'a') // older half: moved
  m.lookup('b') // not a use
  for (const k of ['e', 'f', 'g']) m.set(k, 0)
  t.same(held(m, ['a', 'b', 'c', 'd', 'e', 'f', 'g']), ['a', 'e', 'f', 'g'], 'b, c and d went before a')
})

t.test('delete() and clear()', async (t) => {
  const m = new RecencyMap<number>(4)
  m.set('a', 1)
  m.set('b', 2)
  m.delete('a')
  m.delete('missing')
  t.equal(m.lookup('a'), undefined)
  t.equal(m.size, 1)
  m.clear()
  t.equal(m.size, 0)
})
