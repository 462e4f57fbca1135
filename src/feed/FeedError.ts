/**
 * The typed errors of feeds (besides `InvalidArgument`, which names the bad field). They are
 * Schema errors so they travel from the feed's worker to the caller unchanged.
 */
import { Schema } from "effect"

/** An item's timestamp is older than the feed's last (or an earlier item's); nothing was written. */
export class TimestampTooOld extends Schema.TaggedError<TimestampTooOld>()("TimestampTooOld", {
  field: Schema.String,
  timestamp: Schema.Number,
  last: Schema.Number
}) {}

/** A cursor that was tampered with, belongs to another feed, or outlived its feed. */
export class InvalidCursor extends Schema.TaggedError<InvalidCursor>()("InvalidCursor", {
  field: Schema.String,
  message: Schema.String
}) {}

/** The feed was never written (or was deleted). */
export class FeedNotFound extends Schema.TaggedError<FeedNotFound>()("FeedNotFound", {
  feed: Schema.String
}) {}

/** No live entry has this offset. */
export class EntryNotFound extends Schema.TaggedError<EntryNotFound>()("EntryNotFound", {
  feed: Schema.String,
  offset: Schema.Number
}) {}
