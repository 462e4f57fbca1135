/**
 * The sorted set's own errors. Bad input is the storage layer's `InvalidArgument` (re-exported
 * here), naming the field; what is specific to sorted sets is a stored set that cannot be read
 * back. Both are Schema errors: they travel in replies between worker processes.
 */
import { Schema } from "effect"

export { InvalidArgument } from "../../persistence/StoreError.js"

/** A stored record of the set could not be decoded, or records contradict each other; nothing was loaded. */
export class SortedSetCorrupt extends Schema.TaggedError<SortedSetCorrupt>()("SortedSetCorrupt", {
  namespace: Schema.String,
  /** The record key in hexadecimal (empty when the fault is not in one record). */
  key: Schema.String,
  message: Schema.String
}) {}
