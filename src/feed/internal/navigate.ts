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

/** The record holding `offset`, if any. */
export const recordHolding = (view: StoreView, generation: number, offset: number) =>
  Effect.map(recordAtOrBefore(view, generation, offset), (record) =>
    record !== undefined && Record.lastOffset(record) >= offset ? record : undefined)

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
 * Binary search over offsets `low`..`high` for the first entry satisfying a monotone predicate
 * (false ... false true ... true), probing one record per step. Returns the offset, or undefined
 * when no entry satisfies it.
 */
export const firstSatisfying = (
  view: StoreView,
  generation: number,
  low: number,
  high: number,
  predicate: (entry: Record.StoredEntry, record: Record.FeedRecord) => boolean
): Effect.Effect<number | undefined, ReadError> => {
  const step = (lo: number, hi: number, found: number | undefined, probes: number): Effect.Effect<number | undefined, ReadError> => {
    // Each probe halves [lo, hi]; 64 probes cover any offset range, so this always ends.
    if (lo > hi || probes > 64) return Effect.succeed(found)
    const middle = Math.floor((lo + hi) / 2)
    return Effect.flatMap(recordAtOrBefore(view, generation, middle), (record) => {
      if (record === undefined) return step(middle + 1, hi, found, probes + 1)
      const entries = record.entries
      const first = entries[0]!
      const last = entries[entries.length - 1]!
      if (!predicate(last, record)) return step(Math.max(middle, Record.lastOffset(record)) + 1, hi, found, probes + 1)
      if (predicate(first, record)) return step(lo, Math.min(middle, record.firstOffset) - 1, record.firstOffset, probes + 1)
      // The boundary is inside this record.
      const inside = entries.find((entry) => predicate(entry, record))!
      return Effect.succeed(inside.offset)
    })
  }
  return step(low, high, undefined, 0)
}
