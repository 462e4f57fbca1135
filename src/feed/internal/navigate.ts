/**
 * Finding entries in a feed's records through a `StoreView`: the record holding an offset,
 * records in either direction from one, and binary searches by timestamp and nonce. Timestamps
 * and nonces only grow with offsets (removed entries keep theirs), so both seeks are O(log n)
 * record reads, whatever the size of the feed; nothing is ever loaded whole.
 */
import { Effect } from "effect"
import type { ReadError } from "../../../persistence/StoreError.js"
import type { StoreView } from "../../../persistence/StoreView.js"
import * as Record from "./record.js"

/** The namespace (inside the entity's scope) holding a feed's records. */
export const RECORDS = "records"

const generationEnd = (generation: number) => Record.recordKey(generation + 1, 0)

/** The record whose first offset is the greatest at or below `offset`, if any. */
export const recordAtOrBefore = (view: StoreView, generation: number, offset: number): Effect.Effect<Record.FeedRecord | undefined, ReadError> =>
  Effect.map(
    view.scan(RECORDS, { gte: Record.recordKey(generation, 0), lte: Record.recordKey(generation, offset), reverse: true, limit: 1 }),
    (entries) => (entries[0] === undefined ? undefined : Record.decode(entries[0].key, entries[0].value))
  )

/** The record at or before an offset and records after it, from one forward scan. */
export interface Around {
  /** The record whose first offset is the greatest at or below the offset (undefined: none). */
  readonly at: Record.FeedRecord | undefined
  /** Records after `at` (or, without one, from the start of the generation), in order. */
  readonly next: ReadonlyArray<Record.FeedRecord>
  /** Whether `next` reaches the end of the generation. */
  readonly end: boolean
}

/**
 * `recordAtOrBefore` and up to `after` following records in one forward scan, which is what a
 * page forward needs: it starts at the first offset a record holding `offset` can have when no
 * record holds more than `span` entries. Records never overlap, so a record read that holds
 * `offset` is the one, and nothing past the `after` records is read to confirm it. Answers
 * undefined when the scan cannot tell (a record starting before that point may hold the offset:
 * a longer record or a gap); the caller then asks `recordAtOrBefore`.
 */
export const recordsAround = (
  view: StoreView,
  generation: number,
  offset: number,
  span: number,
  after: number
): Effect.Effect<Around | undefined, ReadError> => {
  const from = Math.max(0, offset - span + 1)
  const limit = after + 1
  return Effect.map(
    view.scan(RECORDS, { gte: Record.recordKey(generation, from), lt: generationEnd(generation), limit }),
    (entries): Around | undefined => {
      const records = entries.map((entry) => Record.decode(entry.key, entry.value))
      const end = records.length < limit
      let at = -1
      while (at + 1 < records.length && records[at + 1]!.firstOffset <= offset) at++
      // Every record read starts at or before the offset and the last does not hold it: a later one may.
      if (at === records.length - 1 && !end && !Record.holds(records[at]!, offset)) return undefined
      // None starts in the window: the record at or before starts earlier, unless the window is the whole start.
      if (at === -1 && from > 0) return undefined
      return { at: at === -1 ? undefined : records[at], next: records.slice(at + 1), end }
    }
  )
}

/** The record holding `offset`, if any. */
export const recordHolding = (view: StoreView, generation: number, offset: number) =>
  Effect.map(recordAtOrBefore(view, generation, offset), (record) =>
    record !== undefined && Record.holds(record, offset) ? record : undefined)

/** The last record of a generation. */
export const lastRecord = (view: StoreView, generation: number) =>
  Effect.map(
    view.scan(RECORDS, { gte: Record.recordKey(generation, 0), lt: generationEnd(generation), reverse: true, limit: 1 }),
    (entries) => (entries[0] === undefined ? undefined : Record.decode(entries[0].key, entries[0].value))
  )

/**
 * Up to `limit` records after (or, backward, before) the record starting at `from`, excluding it;
 * `from` undefined means from the end of the generation the direction starts at.
 */
export const recordsFrom = (
  view: StoreView,
  generation: number,
  from: number | undefined,
  backward: boolean,
  limit: number
): Effect.Effect<ReadonlyArray<Record.FeedRecord>, ReadError> => {
  const low = Record.recordKey(generation, 0)
  const high = generationEnd(generation)
  const options = backward
    ? { gte: low, ...(from === undefined ? { lt: high } : { lt: Record.recordKey(generation, from) }), reverse: true, limit }
    : { ...(from === undefined ? { gte: low } : { gt: Record.recordKey(generation, from) }), lt: high, limit }
  return Effect.map(view.scan(RECORDS, options), (entries) => entries.map((entry) => Record.decode(entry.key, entry.value)))
}

/**
 * What guides a search by value: the value of an entry (which grows with offsets) and the target,
 * with the values believed at the two ends of the range. Approximate ends are fine: they only
 * choose where to probe; the predicate alone decides.
 */
export interface Guide {
  readonly key: (entry: Record.StoredEntry) => number
  readonly target: number
  readonly lowKey: number
  readonly highKey: number
}

/** Where a search ended: the offset found and the record holding it (a reader can start from it without reading it again). */
export interface Found {
  readonly offset: number
  readonly record: Record.FeedRecord
}

/**
 * Search over offsets `low`..`high` for the first entry satisfying a monotone predicate
 * (false ... false true ... true), probing one record per step. Returns the offset with the
 * record holding it, or undefined when no entry satisfies it.
 *
 * Without a guide, it bisects. With one, it alternates interpolation (the probe where the target
 * value should be, from the values at the range's ends) with bisection: values that grow about
 * evenly (timestamps, mostly) take a handful of probes, and the worst case is twice the probes of
 * bisection, still O(log n).
 */
export const firstSatisfying = (
  view: StoreView,
  generation: number,
  low: number,
  high: number,
  predicate: (entry: Record.StoredEntry, record: Record.FeedRecord) => boolean,
  guide?: Guide,
  span?: number
): Effect.Effect<Found | undefined, ReadError> => {
  // A probe reads forward from the earliest start of a record holding it when it can (see `recordsAround`).
  const probe = (offset: number) =>
    span === undefined
      ? recordAtOrBefore(view, generation, offset)
      : Effect.flatMap(recordsAround(view, generation, offset, span, 0), (around) =>
        around === undefined ? recordAtOrBefore(view, generation, offset) : Effect.succeed(around.at))
  const probeAt = (lo: number, hi: number, lowKey: number, highKey: number, probes: number) => {
    if (guide !== undefined && probes % 2 === 0 && highKey > lowKey) {
      const fraction = (guide.target - lowKey) / (highKey - lowKey)
      const at = lo + Math.floor(fraction * (hi - lo))
      if (Number.isFinite(at)) return Math.min(hi, Math.max(lo, at))
    }
    return Math.floor((lo + hi) / 2)
  }
  const step = (lo: number, hi: number, lowKey: number, highKey: number, found: Found | undefined, probes: number): Effect.Effect<Found | undefined, ReadError> => {
    // Every other probe at least halves [lo, hi]; 128 probes cover any offset range, so this always ends.
    if (lo > hi || probes > 128) return Effect.succeed(found)
    const middle = probeAt(lo, hi, lowKey, highKey, probes)
    return Effect.flatMap(probe(middle), (record) => {
      if (record === undefined) return step(middle + 1, hi, lowKey, highKey, found, probes + 1)
      const count = Record.size(record)
      const first = Record.entryAt(record, 0)
      const last = Record.entryAt(record, count - 1)
      if (!predicate(last, record)) {
        return step(Math.max(middle, Record.lastOffset(record)) + 1, hi, guide?.key(last) ?? lowKey, highKey, found, probes + 1)
      }
      if (predicate(first, record)) {
        return step(lo, Math.min(middle, record.firstOffset) - 1, lowKey, guide?.key(first) ?? highKey, { offset: record.firstOffset, record }, probes + 1)
      }
      // The boundary is inside this record: bisect it (the predicate is monotone), decoding a few entries.
      let left = 1
      let right = count - 1
      while (left < right) {
        const mid = (left + right) >>> 1
        if (predicate(Record.entryAt(record, mid), record)) right = mid
        else left = mid + 1
      }
      return Effect.succeed({ offset: record.firstOffset + right, record })
    })
  }
  return step(low, high, guide?.lowKey ?? 0, guide?.highKey ?? 0, undefined, 0)
}
