/**
 * The best `size` hits of a partition, ordered by score (descending) then id (ascending), the
 * order the coordinator merges in. Postings carry doc numbers, not ids, so a candidate that may
 * enter the top waits in `pending` until its id is read; a flush reads the ids of the pending
 * candidates that can still make it (score at least the size-th best) in pages, then keeps the
 * best. Memory: `size` hits plus at most `PENDING_MAX` pending ones between flushes, plus one
 * window's worth of candidates.
 */
import { Effect } from "effect"
import type { ReadError } from "../../../persistence/StoreError.js"
import type { StoreView } from "../../../persistence/StoreView.js"
import type { Hit } from "../SearchMessages.js"
import * as Layout from "./layout.js"
import { readMany } from "./io.js"

/** Pending candidates that trigger a flush. */
export const PENDING_MAX = 1_000

interface Entry {
  readonly id: string
  readonly score: number
}

/** Whether `a` ranks below `b`. */
const worse = (a: Entry, b: Entry): boolean => a.score < b.score || (a.score === b.score && a.id > b.id)

/** A bounded heap of the best hits with id resolution. */
export class TopHits {
  /** A binary heap whose root is the worst kept hit. */
  private readonly heap: Array<Entry> = []
  private pending: Array<readonly [doc: number, score: number]> = []

  constructor(readonly size: number) {}

  /** Offers a candidate; cheap when it cannot make the top. */
  offer(doc: number, score: number): void {
    if (this.heap.length >= this.size && score < this.heap[0]!.score) return
    this.pending.push([doc, score])
  }

  get pendingCount(): number {
    return this.pending.length
  }

  /** Resolves pending candidates' ids and keeps the best. */
  flush(view: StoreView, namespaces: Layout.Namespaces): Effect.Effect<void, ReadError> {
    if (this.pending.length === 0) return Effect.void
    // Only candidates scoring at least the size-th best (pending or kept) can enter.
    const sorted = this.pending.sort((a, b) => b[1] - a[1])
    this.pending = []
    let cut = sorted[Math.min(this.size, sorted.length) - 1]![1]
    if (this.heap.length >= this.size) cut = Math.max(cut, this.heap[0]!.score)
    const candidates = sorted.filter(([, score]) => score >= cut)
    return Effect.map(readMany(view, namespaces.forward, candidates.map(([doc]) => Layout.numberKey(doc))), (forwards) => {
      candidates.forEach(([doc, score], i) => {
        const forward = forwards[i]
        if (forward === undefined) throw new Error(`search index: doc ${doc} has postings but no forward record`)
        this.insert({ id: Layout.forwardId(forward), score })
      })
    })
  }

  private insert(entry: Entry): void {
    const heap = this.heap
    if (heap.length < this.size) {
      heap.push(entry)
      let i = heap.length - 1
      while (i > 0) {
        const parent = (i - 1) >>> 1
        if (!worse(heap[i]!, heap[parent]!)) break
        ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
        i = parent
      }
      return
    }
    if (!worse(heap[0]!, entry)) return
    heap[0] = entry
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < heap.length && worse(heap[left]!, heap[smallest]!)) smallest = left
      if (right < heap.length && worse(heap[right]!, heap[smallest]!)) smallest = right
      if (smallest === i) return
      ;[heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!]
      i = smallest
    }
  }

  /** The kept hits, best first. */
  result(): ReadonlyArray<Hit> {
    return [...this.heap].sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0)).map(({ id, score }) => ({ id, score }))
  }
}
