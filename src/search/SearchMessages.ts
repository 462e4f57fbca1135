/**
 * The Schemas of what crosses a process boundary between a search coordinator and its
 * partitions (later: Search entities): documents, query plans before and after collection
 * statistics are combined, per-partition statistics and hits, and one tagged request with its
 * reply per partition operation. Types are derived from the Schemas, so the engine, the
 * coordinator and the entity share one definition.
 *
 * It holds no logic; `SearchPartition` and `SearchIndex` give these messages their meaning.
 */
import { Schema } from "effect"
import { Fenced, InvalidArgument, StoreClosed, StoreUnavailable } from "../../persistence/StoreError.js"
import { DocumentTooLarge, InvalidDocument, InvalidQuery, SchemaMismatch } from "./SearchError.js"

// ---------------------------------------------------------------------------------------------
// Documents

/** A field value: text or one keyword (string), a number, or keywords (array of strings). */
export const FieldValue = Schema.Union([Schema.String, Schema.Finite, Schema.Array(Schema.String)])
export type FieldValue = typeof FieldValue.Type

/** A document: field name → value. */
export const Document = Schema.Record(Schema.String, FieldValue)
export type Document = typeof Document.Type

/** A document with its id, as written. */
export const IdentifiedDocument = Schema.Struct({ id: Schema.String, document: Document })
export type IdentifiedDocument = typeof IdentifiedDocument.Type

// ---------------------------------------------------------------------------------------------
// Query plans (what the coordinator derives from a request and the index definition)

/** One word to look up in one field; `prefix`/`fuzzy` make it expand over the dictionary. */
export const MatchSource = Schema.Struct({
  field: Schema.String,
  term: Schema.String,
  prefix: Schema.Boolean,
  fuzzy: Schema.Number
})
export type MatchSource = typeof MatchSource.Type

/** A term of a phrase at its offset from the phrase's first term. */
export const PhraseTerm = Schema.Struct({ term: Schema.String, offset: Schema.Number })
export type PhraseTerm = typeof PhraseTerm.Type

/** A numeric range filter; `null` bounds are open. */
export const RangeFilter = Schema.Struct({
  field: Schema.String,
  min: Schema.NullOr(Schema.Finite),
  minInclusive: Schema.Boolean,
  max: Schema.NullOr(Schema.Finite),
  maxInclusive: Schema.Boolean
})
export type RangeFilter = typeof RangeFilter.Type

/** Matches documents containing any source (scored, summed over matching sources). */
export interface MatchPlan {
  readonly _tag: "Match"
  readonly sources: ReadonlyArray<MatchSource>
}
/** Matches documents with the phrase in `field`. */
export interface PhrasePlan {
  readonly _tag: "Phrase"
  readonly field: string
  readonly terms: ReadonlyArray<PhraseTerm>
}
/** Matches documents whose keyword field holds `value` exactly (unscored). */
export interface KeywordPlan {
  readonly _tag: "Keyword"
  readonly field: string
  readonly value: string
}
/** Every clause matches and no excluded one does. */
export interface AllPlan {
  readonly _tag: "All"
  readonly clauses: ReadonlyArray<PlanNode>
  readonly excluded: ReadonlyArray<PlanNode>
}
/** At least one clause matches. */
export interface AnyPlan {
  readonly _tag: "Any"
  readonly clauses: ReadonlyArray<PlanNode>
}
/** A node of a query plan. */
export type PlanNode = MatchPlan | PhrasePlan | KeywordPlan | AllPlan | AnyPlan

const suspendedPlan = Schema.suspend((): Schema.Codec<PlanNode> => PlanNode)

/** The Schema of a plan node. */
export const PlanNode: Schema.Codec<PlanNode> = Schema.Union([
  Schema.TaggedStruct("Match", { sources: Schema.Array(MatchSource) }),
  Schema.TaggedStruct("Phrase", { field: Schema.String, terms: Schema.Array(PhraseTerm) }),
  Schema.TaggedStruct("Keyword", { field: Schema.String, value: Schema.String }),
  Schema.TaggedStruct("All", { clauses: Schema.Array(suspendedPlan), excluded: Schema.Array(suspendedPlan) }),
  Schema.TaggedStruct("Any", { clauses: Schema.Array(suspendedPlan) })
])

/** A query plan: `root` null matches nothing (every word was a stop word). */
export const QueryPlan = Schema.Struct({ root: Schema.NullOr(PlanNode), ranges: Schema.Array(RangeFilter) })
export type QueryPlan = typeof QueryPlan.Type

// ---------------------------------------------------------------------------------------------
// Statistics

/** Documents with at least one token in a text field, and the sum of their lengths. */
export const FieldStatistics = Schema.Struct({ field: Schema.String, docs: Schema.Number, length: Schema.Number })
export type FieldStatistics = typeof FieldStatistics.Type

/** A dictionary term and how many documents hold it. */
export const TermFrequency = Schema.Struct({ term: Schema.String, df: Schema.Number })
export type TermFrequency = typeof TermFrequency.Type

/**
 * What one partition knows about a plan: its document count, its text-field statistics, and
 * for every leaf (each match source, then each phrase term, in plan order) the terms it stands
 * for here with their document frequencies (a prefix or fuzzy source may stand for many).
 */
export const QueryStatistics = Schema.Struct({
  docs: Schema.Number,
  fields: Schema.Array(FieldStatistics),
  leaves: Schema.Array(Schema.Array(TermFrequency))
})
export type QueryStatistics = typeof QueryStatistics.Type

/** A partition's size. `terms` counts distinct (field, term) pairs in its dictionary. */
export const PartitionStats = Schema.Struct({ docs: Schema.Number, terms: Schema.Number, fields: Schema.Array(FieldStatistics) })
export type PartitionStats = typeof PartitionStats.Type

// ---------------------------------------------------------------------------------------------
// Resolved queries (plans with global statistics folded into weights)

/** A term of a field with its weight: boost × idf over the whole index. */
export const ScoredTerm = Schema.Struct({ field: Schema.String, term: Schema.String, weight: Schema.Finite })
export type ScoredTerm = typeof ScoredTerm.Type

/** Matches any of the terms; a document scores the sum of its matching terms. */
export interface ResolvedMatch {
  readonly _tag: "Match"
  readonly terms: ReadonlyArray<ScoredTerm>
}
/** A phrase; `weight` is boost × the sum of its terms' idf. */
export interface ResolvedPhrase {
  readonly _tag: "Phrase"
  readonly field: string
  readonly terms: ReadonlyArray<PhraseTerm>
  readonly weight: number
}
/** Every clause matches and no excluded one does. */
export interface ResolvedAll {
  readonly _tag: "All"
  readonly clauses: ReadonlyArray<ResolvedNode>
  readonly excluded: ReadonlyArray<ResolvedNode>
}
/** At least one clause matches. */
export interface ResolvedAny {
  readonly _tag: "Any"
  readonly clauses: ReadonlyArray<ResolvedNode>
}
/** A node of a resolved query. */
export type ResolvedNode = ResolvedMatch | ResolvedPhrase | KeywordPlan | ResolvedAll | ResolvedAny

const suspendedResolved = Schema.suspend((): Schema.Codec<ResolvedNode> => ResolvedNode)

/** The Schema of a resolved node. */
export const ResolvedNode: Schema.Codec<ResolvedNode> = Schema.Union([
  Schema.TaggedStruct("Match", { terms: Schema.Array(ScoredTerm) }),
  Schema.TaggedStruct("Phrase", { field: Schema.String, terms: Schema.Array(PhraseTerm), weight: Schema.Finite }),
  Schema.TaggedStruct("Keyword", { field: Schema.String, value: Schema.String }),
  Schema.TaggedStruct("All", { clauses: Schema.Array(suspendedResolved), excluded: Schema.Array(suspendedResolved) }),
  Schema.TaggedStruct("Any", { clauses: Schema.Array(suspendedResolved) })
])

/** The average length of a text field over the whole index. */
export const FieldAverage = Schema.Struct({ field: Schema.String, averageLength: Schema.Finite })
export type FieldAverage = typeof FieldAverage.Type

/** A query ready to run on every partition with the same (global) statistics. */
export const ResolvedQuery = Schema.Struct({
  root: Schema.NullOr(ResolvedNode),
  ranges: Schema.Array(RangeFilter),
  fields: Schema.Array(FieldAverage),
  k1: Schema.Finite,
  b: Schema.Finite
})
export type ResolvedQuery = typeof ResolvedQuery.Type

// ---------------------------------------------------------------------------------------------
// Hits

/** A hit: document id and score. */
export const Hit = Schema.Struct({ id: Schema.String, score: Schema.Finite })
export type Hit = typeof Hit.Type

/** A partition's (or the index's) answer: total matches and the best hits, best first. */
export const SearchResult = Schema.Struct({ total: Schema.Number, hits: Schema.Array(Hit) })
export type SearchResult = typeof SearchResult.Type

/** A search request, as the HTTP API's query parameters after type conversion. */
export const SearchRequest = Schema.Struct({
  q: Schema.String,
  limit: Schema.optional(Schema.Number),
  offset: Schema.optional(Schema.Number),
  /** Text fields searched by words without `field:`, each optionally `name^boost`. */
  fields: Schema.optional(Schema.Array(Schema.String)),
  prefix: Schema.optional(Schema.Boolean),
  fuzzy: Schema.optional(Schema.Number),
  filter: Schema.optional(Schema.Array(Schema.String))
})
export type SearchRequest = typeof SearchRequest.Type

/** A dictionary key as listed by `ListTerms`. */
export const TermKey = Schema.Struct({ field: Schema.String, term: Schema.String })
export type TermKey = typeof TermKey.Type

/** The outcome of indexing one document. */
export const IndexOutcome = Schema.Struct({ id: Schema.String, replaced: Schema.Boolean })
export type IndexOutcome = typeof IndexOutcome.Type

// ---------------------------------------------------------------------------------------------
// Partition requests and replies

/** Adds or replaces documents (at most `batchDocumentsMax`; later duplicates of an id win). */
export class IndexDocuments extends Schema.TaggedClass<IndexDocuments>()("IndexDocuments", {
  documents: Schema.Array(IdentifiedDocument)
}) {}
/** The reply to `IndexDocuments`: one outcome per document, in order. */
export const IndexDocumentsReply = Schema.Struct({ results: Schema.Array(IndexOutcome) })

/** Removes a document. */
export class RemoveDocument extends Schema.TaggedClass<RemoveDocument>()("RemoveDocument", { id: Schema.String }) {}
/** The reply to `RemoveDocument`. */
export const RemoveDocumentReply = Schema.Struct({ removed: Schema.Boolean })

/** Reads a document as it was written. */
export class GetDocument extends Schema.TaggedClass<GetDocument>()("GetDocument", { id: Schema.String }) {}
/** The reply to `GetDocument` (null when absent). */
export const GetDocumentReply = Schema.Struct({ document: Schema.NullOr(Document) })

/** Reads the partition's size. */
export class GetStats extends Schema.TaggedClass<GetStats>()("GetStats", {}) {}
/** The reply to `GetStats`. */
export const GetStatsReply = PartitionStats

/** Phase 1 of a search: the partition's statistics for a plan. */
export class PrepareQuery extends Schema.TaggedClass<PrepareQuery>()("PrepareQuery", { plan: QueryPlan }) {}
/** The reply to `PrepareQuery`. */
export const PrepareQueryReply = QueryStatistics

/** Phase 2 of a search: the partition's `window` best hits and its total, under global statistics. */
export class ExecuteQuery extends Schema.TaggedClass<ExecuteQuery>()("ExecuteQuery", {
  query: ResolvedQuery,
  window: Schema.Number
}) {}
/** The reply to `ExecuteQuery`: the partition's total and best hits. */
export const ExecuteQueryReply = SearchResult

/** A page of the dictionary in key order, after `after` (for counting distinct terms). */
export class ListTerms extends Schema.TaggedClass<ListTerms>()("ListTerms", {
  after: Schema.NullOr(TermKey),
  limit: Schema.Number
}) {}
/** The reply to `ListTerms`. */
export const ListTermsReply = Schema.Struct({ terms: Schema.Array(TermKey) })

/**
 * One bounded step of merging the sealed postings chunks that removals thinned out (see
 * `SearchPartition.mergeChunks`); `more` says another step has work.
 */
export class MergeChunks extends Schema.TaggedClass<MergeChunks>()("MergeChunks", {}) {}
/** The reply to `MergeChunks`. */
export const MergeChunksReply = Schema.Struct({ merged: Schema.Number, more: Schema.Boolean })
export type MergeOutcome = typeof MergeChunksReply.Type

/** Any partition request. */
export const PartitionRequest = Schema.Union([IndexDocuments, RemoveDocument, GetDocument, GetStats, PrepareQuery, ExecuteQuery, ListTerms, MergeChunks])
export type PartitionRequest = typeof PartitionRequest.Type

/** Every error a partition operation may fail with. */
export const PartitionError = Schema.Union([
  InvalidDocument,
  DocumentTooLarge,
  InvalidQuery,
  SchemaMismatch,
  InvalidArgument,
  StoreClosed,
  StoreUnavailable,
  Fenced
])
export type PartitionError = typeof PartitionError.Type
