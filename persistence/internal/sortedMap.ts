/**
 * An ordered map from byte keys to values for the memory backend. Keys are held as latin-1
 * strings (one code unit per byte, so string order is byte order) in a list of sorted chunks
 * (the "sorted containers" layout): inserts cost O(√n) instead of the O(n) of one flat array,
 * which keeps million-key namespaces usable in tests.
 */

const CHUNK_MAX = 512

/** Finds the first position in `keys` whose key is ≥ `key` (or > `key` when `after`). */
const lowerBound = (keys: ReadonlyArray<string>, key: string, after: boolean): number => {
  let low = 0
  let high = keys.length
  while (low < high) {
    const middle = (low + high) >>> 1
    const probe = keys[middle]!
    if (probe < key || (after && probe === key)) low = middle + 1
    else high = middle
  }
  return low
}

/** Range bounds over latin-1 keys. */
export interface LatinRange {
  readonly gte?: string | undefined
  readonly gt?: string | undefined
  readonly lte?: string | undefined
  readonly lt?: string | undefined
}

/** An ordered map with range iteration in both directions. */
export class SortedMap<V> {
  private readonly values = new Map<string, V>()
  private chunks: Array<Array<string>> = [[]]

  get size(): number {
    return this.values.size
  }

  get(key: string): V | undefined {
    return this.values.get(key)
  }

  set(key: string, value: V): void {
    if (!this.values.has(key)) this.insertKey(key)
    this.values.set(key, value)
  }

  delete(key: string): boolean {
    if (!this.values.delete(key)) return false
    const chunkIndex = this.chunkFor(key)
    const chunk = this.chunks[chunkIndex]!
    chunk.splice(lowerBound(chunk, key, false), 1)
    if (chunk.length === 0 && this.chunks.length > 1) this.chunks.splice(chunkIndex, 1)
    return true
  }

  /** Iterates `[key, value]` pairs in a range, ascending or descending, at most `limit` of them. */
  *range(range: LatinRange, reverse: boolean, limit: number): Generator<readonly [string, V]> {
    let yielded = 0
    if (!reverse) {
      const start = range.gt ?? range.gte
      let chunkIndex = start === undefined ? 0 : this.chunkFor(start)
      let position = start === undefined ? 0 : lowerBound(this.chunks[chunkIndex]!, start, range.gt !== undefined)
      for (; chunkIndex < this.chunks.length; chunkIndex++, position = 0) {
        const chunk = this.chunks[chunkIndex]!
        for (; position < chunk.length; position++) {
          const key = chunk[position]!
          if (range.lt !== undefined && key >= range.lt) return
          if (range.lte !== undefined && key > range.lte) return
          if (yielded++ >= limit) return
          yield [key, this.values.get(key)!]
        }
      }
      return
    }
    const end = range.lt ?? range.lte
    let chunkIndex = end === undefined ? this.chunks.length - 1 : this.chunkFor(end)
    let position = end === undefined
      ? this.chunks[chunkIndex]!.length - 1
      : lowerBound(this.chunks[chunkIndex]!, end, range.lte !== undefined) - 1
    for (; chunkIndex >= 0; chunkIndex--, position = (this.chunks[chunkIndex]?.length ?? 0) - 1) {
      const chunk = this.chunks[chunkIndex]!
      for (; position >= 0; position--) {
        const key = chunk[position]!
        if (range.gt !== undefined && key <= range.gt) return
        if (range.gte !== undefined && key < range.gte) return
        if (yielded++ >= limit) return
        yield [key, this.values.get(key)!]
      }
    }
  }

  /** The index of the chunk that holds, or would hold, `key`. */
  private chunkFor(key: string): number {
    let low = 0
    let high = this.chunks.length - 1
    while (low < high) {
      const middle = (low + high + 1) >>> 1
      const first = this.chunks[middle]![0]
      if (first !== undefined && first <= key) low = middle
      else high = middle - 1
    }
    return low
  }

  private insertKey(key: string): void {
    const chunkIndex = this.chunkFor(key)
    const chunk = this.chunks[chunkIndex]!
    chunk.splice(lowerBound(chunk, key, false), 0, key)
    if (chunk.length > CHUNK_MAX) {
      this.chunks.splice(chunkIndex + 1, 0, chunk.splice(CHUNK_MAX >>> 1))
    }
  }
}
