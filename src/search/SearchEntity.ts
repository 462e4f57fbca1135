/**
 * Search as entities. An index is a catalog entity (`search.catalog`, id = index name) holding its
 * definition and its placement, and P partition entities (`search`), each serving one
 * partition's engine over its own slice of the store. Every partition request carries the
 * index definition, so a partition activated anywhere builds the same engine (and refuses data
 * written under another definition with `SchemaMismatch`). Engines of one process share one
 * bounded postings cache.
 *
 * Placement: when the catalog creates an index it chooses the P partition ids so that each one
 * hashes to a shard of its own (`placement`), and stores them next to the definition; clients
 * read them with the definition. The ids never change afterwards (the shard count of a cluster
 * is fixed for the life of its data), so neither does the placement.
 */
import { Effect, Layer, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"
import * as EntityListing from "../../actors/EntityListing.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { RuntimeConfig } from "../../actors/RuntimeConfig.js"
import { shardOf } from "../../actors/ShardId.js"
import * as IndexSchema from "./IndexSchema.js"
import { IndexExists, InvalidSchema } from "./SearchError.js"
import * as SearchMessages from "./SearchMessages.js"
import * as SearchPartition from "./SearchPartition.js"

/** An index definition as it crosses processes (the input of `IndexSchema.make`). */
export const Definition = Schema.Json
export type DefinitionJson = typeof Definition.Type

/** Defines an index; a second, different definition of the same name is refused. */
export const Define = Rpc.make("Define", {
  payload: { definition: Definition },
  success: Schema.Struct({ created: Schema.Boolean }),
  error: Schema.Union([InvalidSchema, IndexExists])
})
/** An index as its catalog holds it: the definition and the ids of its P partition entities, in order. */
export const Described = Schema.Struct({ definition: Definition, partitions: Schema.Array(Schema.String) })
export type Described = typeof Described.Type

/** The index's definition and placement, or null when it was never defined. */
export const Describe = Rpc.make("Describe", { success: Schema.NullOr(Described) })

/** The catalog entity type: one per index. */
export const Catalog = Entity.make("search.catalog", [Define, Describe])

/** One partition request, with the definition of its index. */
export const Partition = Rpc.make("Partition", {
  payload: { definition: Definition, request: SearchMessages.PartitionRequest },
  success: Schema.Json,
  error: SearchMessages.PartitionError
})

/**
 * The partition entity type: `P` per index. Its one message carries the index's definition, so
 * only the index's own code may send it (never the HTTP ask route): a partition trusts it.
 */
export const PartitionEntity = Entity.make("search", [Partition], {
  internal: ["Partition"],
  // `<p>.<attempt>:` before an index name of up to 512 bytes.
  idBytesMax: Entity.ID_BYTES_MAX + 32
})

/** The id of partition `p` of `index` before placement was chosen (indexes created without it). */
export const partitionId = (index: string, p: number): string => `${p}:${index}`

/** Candidate ids tried per partition (each one misses with probability below P / shardCount). */
const PLACEMENT_ATTEMPTS_MAX = 4_096

/**
 * The ids of the P partitions of `index`, each on a shard of its own among `shardCount`:
 * partition p takes the first of `<p>:<index>`, `<p>.1:<index>`, `<p>.2:<index>`... whose shard no
 * earlier partition holds. Deterministic, so every process computes the same placement.
 */
export const placement = (index: string, partitions: number, shardCount: number): Effect.Effect<Array<string>, InvalidSchema> =>
  Effect.suspend(() => {
    if (partitions > shardCount) {
      return Effect.fail(new InvalidSchema({ field: "partitions", message: `must be at most the shard count (${shardCount}), so that each partition has a shard of its own` }))
    }
    const taken = new Set<number>()
    const ids: Array<string> = []
    for (let p = 0; p < partitions; p++) {
      let attempt = 0
      let id = partitionId(index, p)
      while (taken.has(shardOf(PartitionEntity.type, id, shardCount))) {
        if (++attempt >= PLACEMENT_ATTEMPTS_MAX) {
          return Effect.fail(new InvalidSchema({ field: "partitions", message: `no shard of its own found for partition ${p}` }))
        }
        id = `${p}.${attempt}:${index}`
      }
      taken.add(shardOf(PartitionEntity.type, id, shardCount))
      ids.push(id)
    }
    return Effect.succeed(ids)
  })

const DEFINITION = "definition"
const PARTITIONS = "partitions"

const readJson = (bytes: Uint8Array | undefined): unknown => (bytes === undefined ? undefined : JSON.parse(Buffer.from(bytes).toString("utf8")))

/**
 * The catalog's behaviour: the definition and the partition ids live under two keys of the
 * entity's own slice. An index stored before placement existed has no ids: its partitions keep
 * the ids they were written under.
 */
export const catalogBehavior = Entity.direct(Catalog, {
  recover: ({ id, view }) =>
    Effect.gen(function*() {
      const definition = readJson(yield* view.get(DEFINITION, "")) as Schema.Json | undefined
      if (definition === undefined) return null
      const stored = readJson(yield* view.get(PARTITIONS, "")) as Array<string> | undefined
      const count = (definition as { partitions?: number }).partitions ?? IndexSchema.PARTITIONS_DEFAULT
      const partitions = stored ?? Array.from({ length: count }, (_, p) => partitionId(id, p))
      return { definition, partitions } as Described
    }),
  handlers: {
    Define: ({ definition }, context) =>
      Effect.gen(function*() {
        const text = JSON.stringify(definition)
        if (context.state !== null) {
          if (JSON.stringify(context.state.definition) === text) return { created: false }
          return yield* Effect.fail(new IndexExists({ field: "definition", index: context.id }))
        }
        const schema = yield* IndexSchema.make(definition as unknown as IndexSchema.IndexSchemaInput)
        const { shardCount } = yield* RuntimeConfig
        const partitions = yield* placement(context.id, schema.partitions, shardCount)
        yield* context.view.put(DEFINITION, "", text)
        yield* context.view.put(PARTITIONS, "", JSON.stringify(partitions))
        context.setState({ definition, partitions })
        return { created: true }
      }),
    Describe: (_, context) => Effect.succeed(context.state)
  }
})

/**
 * The indexes defined in the store, in name order: a page of at most `limit` (1 to 1,000,
 * default 100) names after `cursor`, read from every shard's committed catalog records.
 */
export const listIndexes = (options: EntityListing.ListOptions = {}) => EntityListing.list(Catalog.type, DEFINITION, options)

/** The cache every partition engine of this process shares (bounded: 32 MiB by default). */
const sharedCache = SearchPartition.makeCache()

interface PartitionState {
  engine: SearchPartition.SearchPartition | undefined
  /** The definition the engine was built from, as received (same object in process) and as text. */
  definition: unknown
  text: string | undefined
}

/** The engine for `definition`, rebuilt only when the definition changes. */
const engineFor = (state: PartitionState, definition: Schema.Json, scope: string) => {
  if (state.engine !== undefined && state.definition === definition) return state.engine
  const text = JSON.stringify(definition)
  if (state.engine === undefined || state.text !== text) {
    // The catalog validated this definition before any partition saw it, so failing here is a bug.
    const schema = Effect.runSync(IndexSchema.make(definition as unknown as IndexSchema.IndexSchemaInput))
    state.engine = SearchPartition.make(schema, { cache: sharedCache, scope })
    state.text = text
  }
  state.definition = definition
  return state.engine
}

/** The partition's behaviour: the engine is built on the first request, from its definition. */
export const partitionBehavior = Entity.direct(PartitionEntity, {
  recover: () => Effect.succeed<PartitionState>({ engine: undefined, definition: undefined, text: undefined }),
  handlers: {
    Partition: ({ definition, request }, context) =>
      Effect.suspend(() =>
        engineFor(context.state, definition, `${context.type}/${context.id}`).handle(context.view, request) as Effect.Effect<
          Schema.Json,
          SearchMessages.PartitionError
        >
      )
  }
})

/** Registers both search entity types with the runtime (every worker needs both). */
export const layer = Layer.mergeAll(EntityRuntime.register(catalogBehavior), EntityRuntime.register(partitionBehavior))
