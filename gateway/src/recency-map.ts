// A bounded map ordered by recency of use, for the gateway's hot-path caches (the verification cache, the
// identity assertions): the least recently used entry goes first when it is full.
//
// A JavaScript Map iterates in insertion order, which gives LRU by delete-and-reinsert. A use moves its entry
// to the most-recently-used end only when the entry sits in the older half of that order: one in the younger
// half cannot be evicted before maxEntries / 2 more insertions, and a later use moves it then. A use is then a
// single Map lookup instead of three (delete and set each hash the key again), and eviction stays LRU to
// within half the capacity.

/** An entry and where it stands in the map's order (its position stamp: higher is more recent). */
export interface Slot<V> {
  readonly value: V
  stamp: number
}

export class RecencyMap<V> {
  readonly #map = new Map<string, Slot<V>>()
  /** Stamp of the most recent insertion or move. */
  #stamp = 0

  constructor (readonly maxEntries: number) {}

  get size (): number {
    return this.#map.size
  }

  /** The slot stored for `key`, without counting as a use (a caller that takes it calls used()). */
  lookup (key: string): Slot<V> | undefined {
    return this.#map.get(key)
  }

  /** Marks `slot`, just looked up for `key`, as used: moved to the recent end when it is in the older half. */
  used (key: string, slot: Slot<V>): void {
    if (this.#stamp - slot.stamp < this.maxEntries / 2) return
    this.#map.delete(key)
    slot.stamp = ++this.#stamp
    this.#map.set(key, slot)
  }

  /** Stores `value` for `key` as the most recently used, first evicting the least recently used while full. */
  set (key: string, value: V): void {
    this.#map.delete(key)
    while (this.#map.size >= this.maxEntries) {
      const oldest = this.#map.keys().next()
      if (oldest.done === true) break
      this.#map.delete(oldest.value)
    }
    this.#map.set(key, { value, stamp: ++this.#stamp })
  }

  delete (key: string): void {
    this.#map.delete(key)
  }

  clear (): void {
    this.#map.clear()
  }
}
