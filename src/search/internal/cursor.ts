/**
 * A cursor over one term's postings in one partition: its sealed chunks, read a page at a time
 * so a query holds at most one page per term in memory, then the tail chunk that came inline
 * with the dictionary entry (a term with no sealed chunk needs no read at all). Pages come from
 * the shared LRU cache when they can: a page is identified by the term, the term's write stamp
 * and the page number, and pages are read in order, so the same stamp always yields the same
 * pages. Positions are loaded only for the chunks a phrase needs, through the same cache.
 *
 * A cursor does not interpret postings (scoring and matching are in `evaluate.ts`).
 */
import { Effect } from "effect"
import type { ReadError } from "../../../persistence/StoreError.js"
import type { StoreView } from "../../../persistence/StoreView.js"
import { prefixSuccessor } from "./codec.js"
import type { Lexicon } from "./expand.js"
import * as Layout from "./layout.js"
import type { LruCache } from "./lruCache.js"
import { type ChunkPositions, type ChunkPostings, decodeChunk, decodePositions, readHeader } from "./postings.js"
import { readMany } from "./io.js"

/** Chunks per page: 16 × up to 128 postings, one store scan. */
export const PAGE_CHUNKS = 16

/** Fixed overhead counted per cached entry, on top of its bytes. */
export const ENTRY_OVERHEAD_BYTES = 96

/** A raw chunk as read from the store. */
interface RawChunk {
  readonly key: Uint8Array
  readonly first: number
  readonly last: number
  readonly bytes: Uint8Array
}

/** A cached page. */
interface Page {
  readonly _tag: "Page"
  readonly chunks: ReadonlyArray<RawChunk>
  /** Fewer chunks than a page holds: the term has no more. */
  readonly complete: boolean
}

/** Marks a lexicon version as too large to cache, so it is not read again in vain. */
export interface LexiconTooLarge {
  readonly _tag: "LexiconTooLarge"
}

/** What can be cached: postings pages, positions records and lexicons. */
export type CacheValue = Page | Uint8Array | Lexicon | LexiconTooLarge

/** Where cursors read from (`cache` undefined: nothing is cached). */
export interface CursorSource {
  readonly view: StoreView
  readonly namespaces: Layout.Namespaces
  readonly cache: LruCache<CacheValue> | undefined
  /** Distinguishes partitions and indexes sharing one cache. */
  readonly scope: string
}

/** A loaded chunk; postings and positions are decoded on first use. */
export class LoadedChunk {
  private decoded: ChunkPostings | undefined
  positions: ChunkPositions | undefined

  /** `inlinePositions`: the tail's positions record, which came with the dictionary entry. */
  constructor(readonly raw: RawChunk, readonly inlinePositions?: Uint8Array | undefined) {}

  get first(): number {
    return this.raw.first
  }

  get last(): number {
    return this.raw.last
  }

  get postings(): ChunkPostings {
    return (this.decoded ??= decodeChunk(this.raw.first, this.raw.bytes))
  }
}

/** A run of postings of one chunk: indexes `start` (inclusive) to `end` (exclusive). */
export interface Slice {
  readonly chunk: LoadedChunk
  readonly start: number
  readonly end: number
}

/** First index in `docs` whose doc number is above `bound`. */
const firstAbove = (docs: Float64Array, bound: number): number => {
  let low = 0
  let high = docs.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (docs[middle]! <= bound) low = middle + 1
    else high = middle
  }
  return low
}

/** A cursor over one term. */
export class Cursor {
  private chunks: Array<LoadedChunk> = []
  private pageNumber = 0
  private sealedLoaded = 0
  private lastKey: Uint8Array | undefined
  /** More pages may be in the store. */
  hasMore = true
  /** The last doc number loaded so far (0 before any). */
  lastDoc = 0

  constructor(readonly source: CursorSource, readonly id: string, readonly entry: Layout.TermEntry) {}

  /** Every doc number up to this one is loaded (Infinity once the last page is in). */
  get through(): number {
    return this.hasMore ? this.lastDoc : Number.POSITIVE_INFINITY
  }

  /** Whether a posting above `bound` may exist. */
  beyond(bound: number): boolean {
    return this.hasMore || this.lastDoc > bound
  }

  /** Loads the next page of sealed chunks; the last page brings the tail along. */
  loadNext(): Effect.Effect<void, ReadError> {
    if (this.sealedLoaded >= this.entry.chunks) {
      this.finish()
      return Effect.void
    }
    const { cache, scope } = this.source
    const cacheKey = `${scope}\u0000p\u0000${this.id}\u0000${this.entry.stamp}\u0000${this.pageNumber}`
    const cached = cache?.get(cacheKey)
    const page = cached !== undefined && !(cached instanceof Uint8Array) && cached._tag === "Page" ? Effect.succeed(cached) : this.readPage(cacheKey)
    return Effect.map(page, (loaded) => {
      this.pageNumber++
      this.sealedLoaded += loaded.chunks.length
      for (const raw of loaded.chunks) this.add(new LoadedChunk(raw))
      const last = loaded.chunks[loaded.chunks.length - 1]
      if (last !== undefined) this.lastKey = last.key
      // The count comes from the entry read with this query; a short page means it is all in.
      if (this.sealedLoaded >= this.entry.chunks || loaded.complete) this.finish()
    })
  }

  private add(chunk: LoadedChunk): void {
    this.chunks.push(chunk)
    this.lastDoc = Math.max(this.lastDoc, chunk.last)
  }

  /** Appends the tail and marks the cursor complete. */
  private finish(): void {
    const { tail, tailFirst, tailPositions } = this.entry
    if (tail !== undefined) {
      const raw: RawChunk = { key: Layout.chunkKey(this.id, tailFirst), first: tailFirst, last: readHeader(tailFirst, tail).last, bytes: tail }
      this.add(new LoadedChunk(raw, tailPositions ?? new Uint8Array(0)))
    }
    this.sealedLoaded = this.entry.chunks
    this.hasMore = false
  }

  private readPage(cacheKey: string): Effect.Effect<Page, ReadError> {
    const { view, namespaces, cache } = this.source
    const prefix = Layout.chunkPrefix(this.id)
    const lower = this.lastKey === undefined ? { gte: prefix } : { gt: this.lastKey }
    return Effect.map(view.scan(namespaces.postings, { ...lower, lt: prefixSuccessor(prefix)!, limit: PAGE_CHUNKS }), (entries) => {
      let bytes = ENTRY_OVERHEAD_BYTES
      const chunks = entries.map((entry): RawChunk => {
        const first = Layout.chunkKeyFirst(entry.key)
        bytes += entry.key.length + entry.value.length + ENTRY_OVERHEAD_BYTES
        return { key: entry.key, first, last: readHeader(first, entry.value).last, bytes: entry.value }
      })
      const page: Page = { _tag: "Page", chunks, complete: entries.length < PAGE_CHUNKS }
      cache?.set(cacheKey, page, bytes)
      return page
    })
  }

  /** Drops the chunks entirely at or below `bound`. */
  release(bound: number): void {
    let drop = 0
    while (drop < this.chunks.length && this.chunks[drop]!.last <= bound) drop++
    if (drop > 0) this.chunks = this.chunks.slice(drop)
  }

  /** Whether the cursor should load its next page once the window up to `bound` is done. */
  needsPage(bound: number): boolean {
    return this.hasMore && this.lastDoc <= bound
  }

  /** The postings with doc numbers in (lower, upper]. */
  slices(lower: number, upper: number): ReadonlyArray<Slice> {
    const out: Array<Slice> = []
    for (const chunk of this.chunks) {
      if (chunk.last <= lower) continue
      if (chunk.first > upper) break
      const docs = chunk.postings.docs
      const start = firstAbove(docs, lower)
      const end = firstAbove(docs, upper)
      if (start < end) out.push({ chunk, start, end })
    }
    return out
  }

  /** Loads and decodes the positions of `chunks` (all of this cursor's; the tail's are inline). */
  loadPositions(chunks: ReadonlyArray<LoadedChunk>): Effect.Effect<void, ReadError> {
    const { cache, scope, view, namespaces } = this.source
    const keyOf = (chunk: LoadedChunk) => `${scope}\u0000q\u0000${this.id}\u0000${this.entry.stamp}\u0000${chunk.first}`
    const missing: Array<LoadedChunk> = []
    for (const chunk of chunks) {
      if (chunk.positions !== undefined) continue
      if (chunk.inlinePositions !== undefined) {
        chunk.positions = decodePositions(chunk.inlinePositions, chunk.postings.tfs)
        continue
      }
      const cached = cache?.get(keyOf(chunk))
      if (cached instanceof Uint8Array) chunk.positions = decodePositions(cached, chunk.postings.tfs)
      else missing.push(chunk)
    }
    if (missing.length === 0) return Effect.void
    return Effect.map(readMany(view, namespaces.positions, missing.map((chunk) => chunk.raw.key)), (records) => {
      missing.forEach((chunk, i) => {
        const record = records[i]
        if (record === undefined) throw new Error("search index: a text chunk has no positions record")
        cache?.set(keyOf(chunk), record, record.length + ENTRY_OVERHEAD_BYTES)
        chunk.positions = decodePositions(record, chunk.postings.tfs)
      })
    })
  }
}
