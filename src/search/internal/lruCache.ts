/**
 * A least-recently-used cache bounded by bytes, for postings pages and positions chunks read
 * from the store. A `Map` iterates in insertion order, so re-inserting on every hit keeps the
 * least recently used entry first, and eviction pops from the front until the budget holds.
 *
 * It never decides validity: callers put the version of what they cached (a term's write stamp)
 * into the key, so a stale entry is simply never asked for again and ages out.
 */

/** A bounded LRU cache from string keys to values of known byte size. */
export class LruCache<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly bytes: number }>()
  private used = 0

  /** `bytesMax`: the budget; an entry larger than `entryBytesMax` is not cached at all. */
  constructor(readonly bytesMax: number, readonly entryBytesMax = Math.floor(bytesMax / 4)) {}

  get size(): number {
    return this.entries.size
  }

  get bytes(): number {
    return this.used
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.value
  }

  set(key: string, value: V, bytes: number): void {
    const old = this.entries.get(key)
    if (old !== undefined) {
      this.entries.delete(key)
      this.used -= old.bytes
    }
    if (bytes > this.entryBytesMax) return
    this.entries.set(key, { value, bytes })
    this.used += bytes
    // Bounded: each pass removes one entry, and there are finitely many.
    while (this.used > this.bytesMax) {
      const oldest = this.entries.keys().next()
      if (oldest.done === true) break
      this.used -= this.entries.get(oldest.value)!.bytes
      this.entries.delete(oldest.value)
    }
  }

  clear(): void {
    this.entries.clear()
    this.used = 0
  }
}
