/**
 * The typed errors of full-text search. Each names the request or document field at fault in
 * `field`, so the HTTP layer can answer `{"error": {"code": _tag, "message", "field"}}` without
 * reading messages. They are Schema errors because partitions answer across processes.
 *
 * Store failures are not wrapped: they keep the storage layer's own errors (`ReadError`,
 * `WriteError`), which are Schema errors too.
 */
import { Schema } from "effect"

/**
 * A search request is malformed: `field` is `q` (query syntax, unknown field in `field:term`),
 * `filter`, `fields`, `fuzzy`, `limit` or `offset`. `position` is the character offset in `q`
 * when known. Nothing was read beyond what was needed to find out.
 */
export class InvalidQuery extends Schema.TaggedError<InvalidQuery>()("InvalidQuery", {
  field: Schema.String,
  message: Schema.String,
  position: Schema.optional(Schema.Number)
}) {}

/** A document is malformed: `field` is the document field at fault, or `id`. Nothing was written. */
export class InvalidDocument extends Schema.TaggedError<InvalidDocument>()("InvalidDocument", {
  field: Schema.String,
  message: Schema.String
}) {}

/** A document's JSON encoding is larger than the index's `documentBytesMax`. Nothing was written. */
export class DocumentTooLarge extends Schema.TaggedError<DocumentTooLarge>()("DocumentTooLarge", {
  field: Schema.String,
  id: Schema.String,
  bytes: Schema.Number,
  bytesMax: Schema.Number
}) {}

/** An index definition is invalid: `field` names the definition entry at fault. */
export class InvalidSchema extends Schema.TaggedError<InvalidSchema>()("InvalidSchema", {
  field: Schema.String,
  message: Schema.String
}) {}

/**
 * The partition's data was written under a different index definition (field names, types or
 * analysis changed). Nothing was read or written; the index must be rebuilt under the new one.
 */
export class SchemaMismatch extends Schema.TaggedError<SchemaMismatch>()("SchemaMismatch", {
  field: Schema.String,
  stored: Schema.String,
  given: Schema.String
}) {}

/** No index of that name was ever defined (by `define`, or by a first document over HTTP). */
export class IndexNotFound extends Schema.TaggedError<IndexNotFound>()("IndexNotFound", {
  field: Schema.String,
  index: Schema.String
}) {
  override get message() {
    return `no index named ${this.index}`
  }
}

/** The index exists with another definition; a definition never changes after creation. */
export class IndexExists extends Schema.TaggedError<IndexExists>()("IndexExists", {
  field: Schema.String,
  index: Schema.String
}) {
  override get message() {
    return `index ${this.index} exists with another definition`
  }
}

/** The errors of a document write. */
export type DocumentError = InvalidDocument | DocumentTooLarge | SchemaMismatch

/** Every error of the search engine (besides the store's own). */
export type SearchError = InvalidQuery | InvalidDocument | DocumentTooLarge | InvalidSchema | SchemaMismatch | IndexNotFound | IndexExists
