/**
 * The search client: indexes by name over the Search entities, from any process of a node or a
 * cluster. `define` creates an index in its catalog entity; `open` reads the definition once
 * (definitions never change after creation, so it is cached) and returns a `SearchIndex` whose
 * partitions are the index's P partition entities, wherever their shards live.
 *
 * For the HTTP API, `openOrInfer` defines a missing index from its first document
 * (`IndexSchema.infer`); when two first documents race, the catalog keeps one definition and
 * both writers use it.
 */
import { Context, Effect, Layer } from "effect"
import * as EntityClient from "../../actors/EntityClient.js"
import type { DeliveryError } from "../../actors/EntityError.js"
import type { Messenger } from "../../actors/Messenger.js"
import type { InvalidArgument } from "../../persistence/StoreError.js"
import * as IndexSchema from "./IndexSchema.js"
import * as Documents from "./internal/documents.js"
import { type DocumentTooLarge, type IndexExists, IndexNotFound, type InvalidDocument, InvalidSchema } from "./SearchError.js"
import * as SearchEntity from "./SearchEntity.js"
import * as SearchIndex from "./SearchIndex.js"
import * as Messages from "./SearchMessages.js"

/** What delivering a message to a Search entity may fail with, besides the engine's errors. */
export type DeliveryFailure = DeliveryError | InvalidArgument

/** An index whose partitions are entities: every operation may also fail to be delivered. */
export type RemoteIndex = SearchIndex.SearchIndex<Messages.PartitionError | DeliveryFailure>

/** The search client of a process. */
export interface SearchShape {
  /** Creates an index; `created` is false when the same definition already exists. */
  readonly define: (
    index: string,
    definition: IndexSchema.IndexSchemaInput
  ) => Effect.Effect<{ readonly created: boolean }, InvalidSchema | IndexExists | DeliveryFailure>
  /** The index, or `IndexNotFound`. */
  readonly open: (index: string) => Effect.Effect<RemoteIndex, IndexNotFound | DeliveryFailure>
  /** The index, defined from `document`'s field types when it does not exist yet. */
  readonly openOrInfer: (
    index: string,
    document: unknown
  ) => Effect.Effect<RemoteIndex, InvalidDocument | DocumentTooLarge | InvalidSchema | DeliveryFailure>
}

/** The search client service. */
export class Search extends Context.Service<Search, SearchShape>()("shardfeed/Search") {}

/** Indexes whose definitions a client keeps (least recently opened dropped first). */
export const OPEN_INDEXES_MAX = 1_024

/** A client over the process's `Messenger`. */
export const make: Effect.Effect<SearchShape, never, Messenger> = Effect.gen(function*() {
  const catalog = yield* EntityClient.make(SearchEntity.Catalog)
  const partitions = yield* EntityClient.make(SearchEntity.PartitionEntity)
  const opened = new Map<string, RemoteIndex>()

  const partitionClient = (id: string, definition: IndexSchema.IndexSchemaInput): SearchIndex.PartitionClient<
    Messages.PartitionError | DeliveryFailure
  > => {
    const payload = definition as unknown as SearchEntity.DefinitionJson
    const ask = <A>(request: Messages.PartitionRequest) =>
      Effect.map(partitions.ask(id, "Partition", { definition: payload, request }), (reply) => reply as unknown as A)
    return {
      index: (documents) =>
        Effect.map(ask<typeof Messages.IndexDocumentsReply.Type>(new Messages.IndexDocuments({ documents })), (reply) => reply.results),
      remove: (docId) => Effect.map(ask<typeof Messages.RemoveDocumentReply.Type>(new Messages.RemoveDocument({ id: docId })), (reply) => reply.removed),
      get: (docId) =>
        Effect.map(ask<typeof Messages.GetDocumentReply.Type>(new Messages.GetDocument({ id: docId })), (reply) => reply.document ?? undefined),
      stats: () => ask(new Messages.GetStats()),
      prepare: (plan) => ask(new Messages.PrepareQuery({ plan })),
      execute: (query, window) => ask(new Messages.ExecuteQuery({ query, window })),
      listTerms: (after, limit) => Effect.map(ask<typeof Messages.ListTermsReply.Type>(new Messages.ListTerms({ after, limit })), (reply) => reply.terms),
      mergeChunks: () => ask(new Messages.MergeChunks())
    }
  }

  const remember = (index: string, remote: RemoteIndex) => {
    opened.delete(index)
    opened.set(index, remote)
    if (opened.size > OPEN_INDEXES_MAX) opened.delete(opened.keys().next().value!)
    return remote
  }

  const build = (index: string, described: SearchEntity.Described) =>
    Effect.gen(function*() {
      const definition = described.definition as unknown as IndexSchema.IndexSchemaInput
      // The catalog validated the definition, so a failure here is a bug, not bad input.
      const schema = yield* Effect.orDie(IndexSchema.make(definition))
      const clients = described.partitions.map((id) => partitionClient(id, definition))
      return remember(index, yield* Effect.orDie(SearchIndex.make(schema, clients)))
    })

  const lookup = (index: string) =>
    Effect.suspend(() => {
      const cached = opened.get(index)
      if (cached !== undefined) return Effect.succeed(remember(index, cached))
      return Effect.flatMap(catalog.ask(index, "Describe"), (described) =>
        described === null ? Effect.succeed(undefined) : build(index, described))
    })

  const define: SearchShape["define"] = (index, definition) =>
    Effect.gen(function*() {
      // Checked here too, so bad input fails before any message is sent.
      yield* IndexSchema.make(definition)
      return yield* catalog.ask(index, "Define", { definition: definition as unknown as SearchEntity.DefinitionJson })
    })

  return {
    define,
    open: (index) =>
      Effect.flatMap(lookup(index), (remote) => (remote === undefined ? Effect.fail(new IndexNotFound({ field: "index", index })) : Effect.succeed(remote))),
    openOrInfer: (index, document) =>
      Effect.gen(function*() {
        const existing = yield* lookup(index)
        if (existing !== undefined) return existing
        const fields = yield* IndexSchema.infer(document)
        // The document must fit the index it would define (keyword lengths, size...): a document
        // refused must not leave an index behind.
        const refused = Documents.validate(yield* IndexSchema.make({ fields }), "first", document)
        if (typeof refused !== "string") return yield* Effect.fail(refused)
        // Losing a race to another first document is fine: its definition is the index's.
        yield* define(index, { fields }).pipe(Effect.catchTag("IndexExists", () => Effect.void))
        const created = yield* lookup(index)
        if (created === undefined) return yield* Effect.fail(new InvalidSchema({ field: "definition", message: `index ${index} could not be defined` }))
        return created
      })
  }
})

/** The search client of the process, over its `Messenger`. */
export const layer: Layer.Layer<Search, never, Messenger> = Layer.effect(Search, make)
