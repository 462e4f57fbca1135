/**
 * The messages of a feed entity type, as `effect/rpc` definitions built from the feed's entry
 * schema: append (one call, or several coalesced), get, remove, page, metadata, delete, compaction
 * of small records, and the
 * internal trim and purge steps of retention and deletion. Their schemas are the wire format of the HTTP API and of messages
 * between workers.
 */
import { Schema } from "effect"
import { Rpc } from "effect/rpc"
import { InvalidArgument } from "../../persistence/StoreError.js"
import { EntryNotFound, FeedNotFound, InvalidCursor, TimestampTooOld } from "./FeedError.js"

/** A nonce as callers may give it: a number or a decimal string (returned as a string). */
export const NonceInput = Schema.Union([Schema.Number, Schema.String])

/** The outcome of one appended item. */
export const AppendResult = Schema.Union([
  Schema.Struct({ offset: Schema.Number, timestamp: Schema.Number }),
  Schema.Struct({ duplicate: Schema.Literal(true) })
])
export type AppendResult = typeof AppendResult.Type

/** What a feed knows about itself. */
export const FeedMetadata = Schema.Struct({
  feed: Schema.String,
  count: Schema.Number,
  firstOffset: Schema.NullOr(Schema.Number),
  lastOffset: Schema.NullOr(Schema.Number),
  minTimestamp: Schema.NullOr(Schema.Number),
  maxTimestamp: Schema.NullOr(Schema.Number),
  lastNonce: Schema.NullOr(Schema.String),
  bytes: Schema.Number
})
export type FeedMetadata = typeof FeedMetadata.Type

/** Calls in one `AppendBatches` message at most. */
export const APPEND_CALLS_MAX = 1_000

/** What one compaction step did: records merged into their predecessors, and whether more remain. */
export const CompactResult = Schema.Struct({ merged: Schema.Number, more: Schema.Boolean })
export type CompactResult = typeof CompactResult.Type

/** Where a page starts and which way it goes. */
export const PageRequest = Schema.Struct({
  order: Schema.optional(Schema.Literals(["forward", "backward"])),
  limit: Schema.optional(Schema.Number),
  offset: Schema.optional(Schema.Number),
  timestamp: Schema.optional(Schema.Number),
  nonce: Schema.optional(NonceInput),
  cursor: Schema.optional(Schema.String)
})
export type PageRequest = typeof PageRequest.Type

/** The messages of a feed type whose entries have schema `entry`. */
export const make = <A, I>(entry: Schema.Codec<A, I>) => {
  const Entry = Schema.Struct({
    offset: Schema.Number,
    timestamp: Schema.Number,
    nonce: Schema.optional(Schema.String),
    value: entry
  })
  const Item = Schema.Struct({
    value: entry,
    nonce: Schema.optional(NonceInput),
    timestamp: Schema.optional(Schema.Number)
  })
  return {
    Entry,
    Item,
    Append: Rpc.make("Append", {
      payload: { items: Schema.Array(Item) },
      success: Schema.Struct({ results: Schema.Array(AppendResult) }),
      error: Schema.Union([InvalidArgument, TimestampTooOld])
    }),
    /**
     * Several callers' appends in one message (the client coalesces the appends that wait behind
     * one in flight): each call is its own atomic append, applied in order, with its own outcome.
     */
    AppendBatches: Rpc.make("AppendBatches", {
      payload: { calls: Schema.Array(Schema.Struct({ items: Schema.Array(Item) })) },
      success: Schema.Struct({
        outcomes: Schema.Array(Schema.Union([
          Schema.Struct({ ok: Schema.Literal(true), results: Schema.Array(AppendResult) }),
          Schema.Struct({ ok: Schema.Literal(false), error: Schema.Union([InvalidArgument, TimestampTooOld]) })
        ]))
      }),
      error: InvalidArgument
    }),
    Get: Rpc.make("Get", { payload: { offset: Schema.Number }, success: Entry, error: Schema.Union([InvalidArgument, EntryNotFound]) }),
    Remove: Rpc.make("Remove", { payload: { offset: Schema.Number }, success: Schema.Struct({ removed: Schema.Boolean }), error: InvalidArgument }),
    Page: Rpc.make("Page", {
      payload: PageRequest,
      success: Schema.Struct({ items: Schema.Array(Entry), cursor: Schema.NullOr(Schema.String) }),
      error: Schema.Union([InvalidArgument, InvalidCursor])
    }),
    Metadata: Rpc.make("Metadata", { success: FeedMetadata, error: FeedNotFound }),
    Delete: Rpc.make("Delete", { success: Schema.Struct({ deleted: Schema.Boolean }) }),
    Trim: Rpc.make("Trim"),
    Compact: Rpc.make("Compact", { success: CompactResult }),
    Purge: Rpc.make("Purge", { payload: { generation: Schema.Number } })
  }
}
