/**
 * A search index over P partitions: routes each document to partition
 * `fnv1a32(utf8(id)) mod P` (32-bit FNV-1a: stable across processes and versions), and runs a
 * query in two fan-outs: every partition reports its statistics for the plan, the coordinator
 * sums them into global BM25 weights, then every partition returns its total and its best
 * `offset + limit` hits scored with those weights; the coordinator merges them (score, then id).
 * Scores are therefore those of one unpartitioned index, whatever P.
 *
 * It talks to partitions through `PartitionClient`, so partitions may be engines over local
 * views (`fromViews`) or remote entities answering `SearchMessages` requests. It keeps no state
 * of its own and does not retry: a failing partition fails the operation. Operations on one
 * partition must not overlap (an entity serializes them; over local views, run one at a time).
 */
import { Effect } from "effect"
import type { ReadError, WriteError } from "../../persistence/StoreError.js"
import type { StoreView } from "../../persistence/StoreView.js"
import type { IndexSchema } from "./IndexSchema.js"
import * as QueryParser from "./QueryParser.js"
import { type DocumentError, InvalidDocument, InvalidQuery, InvalidSchema, type SchemaMismatch } from "./SearchError.js"
import type {
  Document,
  IdentifiedDocument,
  IndexOutcome,
  MergeOutcome,
  PartitionStats,
  QueryPlan,
  QueryStatistics,
  ResolvedQuery,
  SearchRequest,
  SearchResult,
  TermKey
} from "./SearchMessages.js"
import * as SearchPartition from "./SearchPartition.js"
import * as Documents from "./internal/documents.js"
import { fnv1a32 } from "./internal/hash.js"
import { checkRequest, plan } from "./internal/plan.js"
import { resolve } from "./internal/statistics.js"

/** One partition as the coordinator sees it; each method is one `SearchMessages` request. */
export interface PartitionClient<E = never> {
  readonly index: (documents: ReadonlyArray<IdentifiedDocument>) => Effect.Effect<ReadonlyArray<IndexOutcome>, DocumentError | WriteError | E>
  readonly remove: (id: string) => Effect.Effect<boolean, InvalidDocument | SchemaMismatch | WriteError | E>
  readonly get: (id: string) => Effect.Effect<Document | undefined, InvalidDocument | ReadError | E>
  readonly stats: () => Effect.Effect<PartitionStats, SchemaMismatch | ReadError | E>
  readonly prepare: (plan: QueryPlan) => Effect.Effect<QueryStatistics, InvalidQuery | SchemaMismatch | ReadError | E>
  readonly execute: (query: ResolvedQuery, window: number) => Effect.Effect<SearchResult, InvalidQuery | ReadError | E>
  readonly listTerms: (after: TermKey | null, limit: number) => Effect.Effect<ReadonlyArray<TermKey>, InvalidQuery | ReadError | E>
  readonly mergeChunks: () => Effect.Effect<MergeOutcome, SchemaMismatch | ReadError | WriteError | E>
}

/** What one `merge` of an index did. */
export interface MergeReport {
  /** Sealed postings chunks that went away, over all partitions. */
  readonly merged: number
  /** Merge steps run (atomic write sets), over all partitions. */
  readonly steps: number
  /** Partitions that still had thinned terms when `stepsMax` ran out. */
  readonly unfinished: number
}

/** The size of an index: documents, and distinct (field, term) pairs over all partitions. */
export interface IndexStats {
  readonly docs: number
  readonly terms: number
}

/** A partitioned search index. */
export interface SearchIndex<E = never> {
  readonly schema: IndexSchema
  /** Adds or replaces a document. */
  readonly put: (id: string, document: Document) => Effect.Effect<IndexOutcome, DocumentError | WriteError | E>
  /**
   * Adds or replaces many documents, one batch per partition (split at `batchDocumentsMax`).
   * All are checked first, so bad input writes nothing; a store failure midway may leave some
   * partitions written (each partition's batch is atomic, the whole is not).
   */
  readonly putMany: (documents: ReadonlyArray<IdentifiedDocument>) => Effect.Effect<ReadonlyArray<IndexOutcome>, DocumentError | WriteError | E>
  /** Removes a document; true if it existed. */
  readonly remove: (id: string) => Effect.Effect<boolean, InvalidDocument | SchemaMismatch | WriteError | E>
  /** The document as written, or undefined. */
  readonly get: (id: string) => Effect.Effect<Document | undefined, InvalidDocument | ReadError | E>
  /** Runs a search: the total and the requested page of hits, best first. */
  readonly search: (request: SearchRequest) => Effect.Effect<SearchResult, InvalidQuery | SchemaMismatch | ReadError | E>
  /** Documents and distinct terms (a k-way merge of the partitions' dictionaries: it reads them all). */
  readonly stats: () => Effect.Effect<IndexStats, InvalidQuery | SchemaMismatch | ReadError | E>
  /**
   * Merges the postings chunks removals thinned out, partition by partition, in bounded steps
   * (at most `stepsMax` per partition, default 1,000; the next call resumes where it stopped).
   * The scheduled maintenance task `Maintenance.searchMerge` runs it.
   */
  readonly merge: (options?: { readonly stepsMax?: number | undefined }) => Effect.Effect<MergeReport, SchemaMismatch | ReadError | WriteError | E>
}

/** The partition of a document id among `partitions`: FNV-1a 32 of its UTF-8 bytes, mod P. */
export const partitionOf = (id: string, partitions: number): number => fnv1a32(id) % partitions

/** A client over a local engine and the view of its partition. */
export const localClient = (engine: SearchPartition.SearchPartition, view: StoreView): PartitionClient => ({
  index: (documents) => engine.indexDocuments(view, documents),
  remove: (id) => engine.removeDocument(view, id),
  get: (id) => engine.getDocument(view, id),
  stats: () => engine.stats(view),
  prepare: (queryPlan) => engine.prepare(view, queryPlan),
  execute: (query, window) => engine.execute(view, query, window),
  listTerms: (after, limit) => engine.listTerms(view, after, limit),
  mergeChunks: () => engine.mergeChunks(view)
})

/** Terms read per partition per round when counting distinct terms. */
const TERMS_PAGE = 1_000

/** Byte order of UTF-8 strings (the dictionary's order), by code points. */
const compareTerms = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))

/** Counts distinct (field, term) keys over all partitions by merging their sorted lexicons. */
const countDistinctTerms = <E>(schema: IndexSchema, clients: ReadonlyArray<PartitionClient<E>>) =>
  Effect.gen(function*() {
    const compare = (a: TermKey, b: TermKey) =>
      schema.byName.get(a.field)!.index - schema.byName.get(b.field)!.index || compareTerms(a.term, b.term)
    const pages = yield* Effect.forEach(clients, (client) => client.listTerms(null, TERMS_PAGE))
    const at = clients.map(() => 0)
    let count = 0
    let previous: TermKey | undefined
    // Bounded: each round consumes one key of a finite lexicon (or refills a page).
    for (;;) {
      let best = -1
      for (let p = 0; p < pages.length; p++) {
        const head = pages[p]![at[p]!]
        if (head !== undefined && (best < 0 || compare(head, pages[best]![at[best]!]!) < 0)) best = p
      }
      if (best < 0) return count
      const key = pages[best]![at[best]!++]!
      if (previous === undefined || compare(previous, key) !== 0) count++
      previous = key
      if (at[best] === pages[best]!.length && pages[best]!.length === TERMS_PAGE) {
        pages[best] = yield* clients[best]!.listTerms(key, TERMS_PAGE)
        at[best] = 0
      }
    }
  })

/** Merges partition answers: totals add up, hits sort by score then id. */
const merge = (results: ReadonlyArray<SearchResult>, offset: number, limit: number): SearchResult => {
  let total = 0
  const hits = []
  for (const result of results) {
    total += result.total
    hits.push(...result.hits)
  }
  hits.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return { total, hits: hits.slice(offset, offset + limit) }
}

/** A coordinator over one client per partition (`schema.partitions` of them, in order). */
export const make = <E = never>(schema: IndexSchema, clients: ReadonlyArray<PartitionClient<E>>): Effect.Effect<SearchIndex<E>, InvalidSchema> => {
  if (clients.length !== schema.partitions) {
    return Effect.fail(new InvalidSchema({ field: "partitions", message: `the index has ${schema.partitions} partitions but ${clients.length} were given` }))
  }
  const clientOf = (id: string) => clients[partitionOf(id, clients.length)]!
  const checkId = (id: string) =>
    typeof id === "string" && id.length > 0 ? undefined : new InvalidDocument({ field: "id", message: "must be a non-empty string" })

  const putMany: SearchIndex<E>["putMany"] = (documents) =>
    Effect.gen(function*() {
      const groups = clients.map((): Array<number> => [])
      for (let i = 0; i < documents.length; i++) {
        // Every document is checked before any partition writes: one bad document must leave
        // the other partitions untouched too.
        const checked = Documents.validate(schema, documents[i]!.id, documents[i]!.document)
        if (typeof checked !== "string") return yield* checked
        groups[partitionOf(documents[i]!.id, clients.length)]!.push(i)
      }
      const out: Array<IndexOutcome | undefined> = new Array(documents.length)
      const batch = schema.limits.batchDocumentsMax
      yield* Effect.forEach(groups, (indexes, p) =>
        Effect.forEach(Array.from({ length: Math.ceil(indexes.length / batch) }, (_, k) => indexes.slice(k * batch, (k + 1) * batch)), (chunk) =>
          Effect.map(clients[p]!.index(chunk.map((i) => documents[i]!)), (results) => results.forEach((result, j) => (out[chunk[j]!] = result))), { discard: true }), { discard: true, concurrency: "unbounded" })
      return out as Array<IndexOutcome>
    })

  const search: SearchIndex<E>["search"] = (request) =>
    Effect.gen(function*() {
      const options = yield* checkRequest(schema, request)
      const query = yield* QueryParser.parse(request.q, {
        bytesMax: schema.limits.queryBytesMax,
        clausesMax: schema.limits.queryClausesMax,
        depthMax: schema.limits.queryDepthMax
      })
      const queryPlan = yield* plan(schema, options, query, request.filter)
      if (queryPlan.root === null) return { total: 0, hits: [] }
      const statistics = yield* Effect.forEach(clients, (client) => client.prepare(queryPlan), { concurrency: "unbounded" })
      const resolved = yield* resolve(schema, options.boosts, queryPlan, statistics)
      const window = options.offset + options.limit
      const results = yield* Effect.forEach(clients, (client) => client.execute(resolved, window), { concurrency: "unbounded" })
      return merge(results, options.offset, options.limit)
    })

  return Effect.succeed({
    schema,
    put: (id, document) => Effect.map(putMany([{ id, document }]), (results) => results[0]!),
    putMany,
    remove: (id) => {
      const bad = checkId(id)
      return bad !== undefined ? Effect.fail(bad) : clientOf(id).remove(id)
    },
    get: (id) => {
      const bad = checkId(id)
      return bad !== undefined ? Effect.fail(bad) : clientOf(id).get(id)
    },
    search,
    stats: () =>
      Effect.gen(function*() {
        const stats = yield* Effect.forEach(clients, (client) => client.stats(), { concurrency: "unbounded" })
        const terms = yield* countDistinctTerms(schema, clients)
        return { docs: stats.reduce((sum, partition) => sum + partition.docs, 0), terms }
      }),
    merge: (options) =>
      Effect.gen(function*() {
        const stepsMax = options?.stepsMax ?? 1_000
        let merged = 0
        let steps = 0
        let unfinished = 0
        for (const client of clients) {
          let more = true
          // Bounded: at most `stepsMax` steps per partition.
          for (let step = 0; more && step < stepsMax; step++) {
            const outcome = yield* client.mergeChunks()
            merged += outcome.merged
            more = outcome.more
            steps++
          }
          if (more) unfinished++
        }
        return { merged, steps, unfinished }
      })
  })
}

/** A coordinator over local engines, one per view (`schema.partitions` views, in order). */
export const fromViews = (
  schema: IndexSchema,
  views: ReadonlyArray<StoreView>,
  options: SearchPartition.SearchPartitionOptions = {}
): Effect.Effect<SearchIndex, InvalidSchema> => {
  const cache = options.cache ?? SearchPartition.makeCache()
  const engine = SearchPartition.make(schema, { ...options, cache })
  return make(schema, views.map((view) => localClient(engine, view)))
}
