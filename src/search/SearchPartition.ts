/**
 * The search engine of ONE index partition, over a `StoreView`: a persistent inverted index
 * updated document by document, and the two phases of a query (local statistics, then scoring
 * under global statistics). It holds no index data in memory besides a bounded LRU cache of
 * postings pages; any number of documents are searched with bounded memory.
 *
 * It is entity-agnostic: every operation takes the view to read and write through. With
 * `StoreView.staged` the writes of one operation become the entity's atomic write set; with
 * `StoreView.direct` each is its own store write. Operations on one partition must not run
 * concurrently (an entity handles one message at a time); partitions sharing a cache need
 * distinct scopes (see `SearchPartitionOptions.scope`).
 * See `src/search/README.md` for the storage layout, the query language and the limits.
 */
import { Effect } from "effect"
import type { ReadError, WriteError } from "../../persistence/StoreError.js"
import type { StoreView } from "../../persistence/StoreView.js"
import type { IndexSchema } from "./IndexSchema.js"
import { type DocumentError, InvalidDocument, InvalidQuery, type SchemaMismatch } from "./SearchError.js"
import type {
  Document,
  IdentifiedDocument,
  IndexOutcome,
  MergeOutcome,
  PartitionError,
  PartitionRequest,
  PartitionStats,
  QueryPlan,
  QueryStatistics,
  ResolvedQuery,
  SearchResult,
  TermKey
} from "./SearchMessages.js"
import { fromUtf8, utf8 } from "./internal/codec.js"
import type { CacheValue, CursorSource } from "./internal/cursor.js"
import * as Documents from "./internal/documents.js"
import { execute } from "./internal/evaluate.js"
import * as Layout from "./internal/layout.js"
import { LruCache } from "./internal/lruCache.js"
import { prepare } from "./internal/statistics.js"
import { addDocs, type EngineContext, mergeChunks, readMeta, removeById } from "./internal/write.js"

/** A bounded cache of postings pages and positions, shareable by the partitions of a process. */
export interface SearchCache {
  readonly bytesMax: number
  /** Bytes held now. */
  readonly bytes: number
  /** Entries held now. */
  readonly size: number
  readonly clear: () => void
}

/** The default cache budget per engine when none is given: 32 MiB. */
export const CACHE_BYTES_DEFAULT = 32 * 1024 * 1024

/** Most terms one `listTerms` call returns. */
export const LIST_TERMS_MAX = 10_000

/** A cache of at most `bytesMax` bytes (entries over a quarter of it are not cached). */
export const makeCache = (bytesMax: number = CACHE_BYTES_DEFAULT): SearchCache => new LruCache<CacheValue>(bytesMax)

/** Options of an engine. */
export interface SearchPartitionOptions {
  /** Base of the namespaces (default `search`): indexes sharing a view need distinct ones. */
  readonly namespace?: string | undefined
  /** The cache (default: a private one of `CACHE_BYTES_DEFAULT`). */
  readonly cache?: SearchCache | undefined
  /**
   * Names this partition's data among everything that shares the cache (default: the view's
   * store partition). Entities of one shard share a store partition, so a Search entity passes
   * its type and id here.
   */
  readonly scope?: string | undefined
}

/** Any reply of `handle`. */
export type PartitionReply =
  | { readonly results: ReadonlyArray<IndexOutcome> }
  | { readonly removed: boolean }
  | { readonly document: Document | null }
  | PartitionStats
  | QueryStatistics
  | SearchResult
  | { readonly terms: ReadonlyArray<TermKey> }
  | MergeOutcome

/** The engine of one partition. */
export interface SearchPartition {
  readonly schema: IndexSchema
  /** Adds or replaces one document. */
  readonly indexDocument: (view: StoreView, id: string, document: Document) => Effect.Effect<IndexOutcome, DocumentError | WriteError>
  /** Adds or replaces up to `batchDocumentsMax` documents in one operation (later duplicates win). */
  readonly indexDocuments: (
    view: StoreView,
    documents: ReadonlyArray<IdentifiedDocument>
  ) => Effect.Effect<ReadonlyArray<IndexOutcome>, DocumentError | WriteError>
  /** Removes a document; true if it existed. */
  readonly removeDocument: (view: StoreView, id: string) => Effect.Effect<boolean, InvalidDocument | SchemaMismatch | WriteError>
  /** The document as written, or undefined. */
  readonly getDocument: (view: StoreView, id: string) => Effect.Effect<Document | undefined, InvalidDocument | ReadError>
  /** Document count, distinct terms and text-field totals. */
  readonly stats: (view: StoreView) => Effect.Effect<PartitionStats, SchemaMismatch | ReadError>
  /** Phase 1 of a query: this partition's statistics for the plan (prefix and fuzzy words expanded). */
  readonly prepare: (view: StoreView, plan: QueryPlan) => Effect.Effect<QueryStatistics, InvalidQuery | SchemaMismatch | ReadError>
  /** Phase 2: the total matches and the `window` best hits (score, then id) under global statistics. */
  readonly execute: (view: StoreView, query: ResolvedQuery, window: number) => Effect.Effect<SearchResult, InvalidQuery | ReadError>
  /** Up to `limit` dictionary keys after `after`, in key order. */
  readonly listTerms: (view: StoreView, after: TermKey | null, limit: number) => Effect.Effect<ReadonlyArray<TermKey>, InvalidQuery | ReadError>
  /**
   * One bounded step of maintenance: merges neighbouring sealed postings chunks that removals
   * left under half full, so terms cost fewer chunk reads; query results are unchanged. Repeat
   * while `more`. A partition with nothing thinned answers at once and writes nothing.
   */
  readonly mergeChunks: (view: StoreView) => Effect.Effect<MergeOutcome, SchemaMismatch | ReadError | WriteError>
  /** Serves any partition request (what a Search entity does with its messages). */
  readonly handle: (view: StoreView, request: PartitionRequest) => Effect.Effect<PartitionReply, PartitionError>
}

/** Checks and analyzes a batch; the last occurrence of an id wins. */
const analyzeBatch = (
  schema: IndexSchema,
  documents: ReadonlyArray<IdentifiedDocument>
): DocumentError | { readonly analyzed: ReadonlyArray<Documents.AnalyzedDocument>; readonly earlier: ReadonlyArray<boolean> } => {
  if (!Array.isArray(documents) || documents.length === 0 || documents.length > schema.limits.batchDocumentsMax) {
    return new InvalidDocument({ field: "documents", message: `a batch holds 1 to ${schema.limits.batchDocumentsMax} documents` })
  }
  const jsons: Array<string> = []
  for (const { id, document } of documents) {
    const checked = Documents.validate(schema, id, document)
    if (typeof checked !== "string") return checked
    jsons.push(checked)
  }
  const lastIndex = new Map(documents.map(({ id }, i) => [id, i]))
  const seen = new Set<string>()
  const earlier = documents.map(({ id }) => {
    const before = seen.has(id)
    seen.add(id)
    return before
  })
  const analyzed = documents.flatMap(({ id, document }, i) =>
    lastIndex.get(id) === i ? [Documents.analyze(schema, id, document, jsons[i]!)] : [])
  return { analyzed, earlier }
}

/** Builds the engine of one partition for an index definition. */
export const make = (schema: IndexSchema, options: SearchPartitionOptions = {}): SearchPartition => {
  const base = options.namespace ?? "search"
  const cache = options.cache instanceof LruCache ? (options.cache as LruCache<CacheValue>) : new LruCache<CacheValue>(CACHE_BYTES_DEFAULT)
  const context: EngineContext = { schema, namespaces: Layout.namespaces(base) }
  const scopeOf = (view: StoreView) => `${options.scope ?? view.partition}\u0000${base}`
  // Cached data is keyed by write stamps, which are random and never reused: data read through
  // writes that are not durable yet (pipelined or staged) may be cached, since a lost write's
  // stamp never comes back.
  const sourceOf = (view: StoreView): CursorSource => ({ view, namespaces: context.namespaces, cache, scope: scopeOf(view) })

  const indexDocuments: SearchPartition["indexDocuments"] = (view, documents) =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<IndexOutcome>, DocumentError | WriteError> => {
      const batch = analyzeBatch(schema, documents)
      if (!("analyzed" in batch)) return Effect.fail(batch)
      return Effect.map(addDocs(context, view, batch.analyzed), (replaced) => {
        const byId = new Map(batch.analyzed.map((document, i) => [document.id, replaced[i]!]))
        return documents.map(({ id }, i) => ({ id, replaced: batch.earlier[i]! || byId.get(id)! }))
      })
    })

  const checkId = (id: string) => Documents.checkId(schema, id)

  const getDocument: SearchPartition["getDocument"] = (view, id) => {
    const bad = checkId(id)
    if (bad !== undefined) return Effect.fail(bad)
    return Effect.map(view.get(context.namespaces.docs, utf8(id)), (bytes) => (bytes === undefined ? undefined : (JSON.parse(Layout.documentJson(bytes)) as Document)))
  }

  const listTerms: SearchPartition["listTerms"] = (view, after, limit) => {
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_TERMS_MAX) {
      return Effect.fail(new InvalidQuery({ field: "limit", message: `must be an integer from 1 to ${LIST_TERMS_MAX}` }))
    }
    const afterField = after === null ? undefined : schema.byName.get(after.field)
    if (after !== null && afterField === undefined) return Effect.fail(new InvalidQuery({ field: "after", message: `unknown field '${after.field}'` }))
    const lower = afterField === undefined ? {} : { gt: Layout.termKey(Layout.termId(afterField.index, after!.term)) }
    return Effect.map(view.scan(context.namespaces.lexicon, { ...lower, limit }), (entries) =>
      entries.map(({ key }) => ({ field: schema.byIndex[key[0]!]!.name, term: fromUtf8(key.subarray(1)) })))
  }

  const engine: SearchPartition = {
    schema,
    indexDocument: (view, id, document) => Effect.map(indexDocuments(view, [{ id, document }]), (results) => results[0]!),
    indexDocuments,
    removeDocument: (view, id) => {
      const bad = checkId(id)
      return bad !== undefined ? Effect.fail(bad) : removeById(context, view, id)
    },
    getDocument,
    stats: (view) =>
      Effect.map(readMeta(context, view), (meta) => ({
        docs: meta.docs,
        terms: meta.terms,
        fields: schema.textFields.map((field) => ({ field: field.name, docs: meta.fields[field.name]?.docs ?? 0, length: meta.fields[field.name]?.length ?? 0 }))
      })),
    prepare: (view, plan) => prepare(context, sourceOf(view), plan),
    execute: (view, query, window) =>
      Number.isInteger(window) && window >= 1 && window <= schema.limits.resultWindowMax
        ? execute(schema, sourceOf(view), query, window)
        : Effect.fail(new InvalidQuery({ field: "window", message: `must be an integer from 1 to ${schema.limits.resultWindowMax}` })),
    listTerms,
    mergeChunks: (view) => mergeChunks(context, view),
    handle: (view, request) => {
      switch (request._tag) {
        case "IndexDocuments":
          return Effect.map(indexDocuments(view, request.documents), (results) => ({ results }))
        case "RemoveDocument":
          return Effect.map(engine.removeDocument(view, request.id), (removed) => ({ removed }))
        case "GetDocument":
          return Effect.map(getDocument(view, request.id), (document) => ({ document: document ?? null }))
        case "GetStats":
          return engine.stats(view)
        case "PrepareQuery":
          return engine.prepare(view, request.plan)
        case "ExecuteQuery":
          return engine.execute(view, request.query, request.window)
        case "ListTerms":
          return Effect.map(listTerms(view, request.after, request.limit), (terms) => ({ terms }))
        case "MergeChunks":
          return engine.mergeChunks(view)
      }
    }
  }
  return engine
}
