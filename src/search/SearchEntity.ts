/**
 * Search as entities. An index is a catalog entity (`search.catalog`, id = index name) holding its
 * definition, and P partition entities (`search`, id = `<p>:<index>`), each serving one
 * partition's engine over its own slice of the store. Every partition request carries the
 * index definition, so a partition activated anywhere builds the same engine (and refuses data
 * written under another definition with `SchemaMismatch`). Engines of one process share one
 * bounded postings cache.
 */
import { Effect, Layer, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
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
/** The index's definition, or null when it was never defined. */
export const Describe = Rpc.make("Describe", { success: Schema.NullOr(Definition) })

/** The catalog entity type: one per index. */
export const Catalog = Entity.make("search.catalog", [Define, Describe])

/** One partition request, with the definition of its index. */
export const Partition = Rpc.make("Partition", {
  payload: { definition: Definition, request: SearchMessages.PartitionRequest },
  success: Schema.Json,
  error: SearchMessages.PartitionError
})

/** The partition entity type: `P` per index. */
export const PartitionEntity = Entity.make("search", [Partition])

/** The id of partition `p` of `index`. */
export const partitionId = (index: string, p: number): string => `${p}:${index}`

const DEFINITION = "definition"

/** The catalog's behaviour: the definition lives under one key of the entity's own slice. */
export const catalogBehavior = Entity.direct(Catalog, {
  recover: ({ view }) =>
    Effect.map(view.get(DEFINITION, ""), (bytes) => (bytes === undefined ? null : (JSON.parse(Buffer.from(bytes).toString("utf8")) as Schema.Json))),
  handlers: {
    Define: ({ definition }, context) =>
      Effect.gen(function*() {
        const text = JSON.stringify(definition)
        if (context.state !== null) {
          if (JSON.stringify(context.state) === text) return { created: false }
          return yield* Effect.fail(new IndexExists({ field: "definition", index: context.id }))
        }
        yield* IndexSchema.make(definition as unknown as IndexSchema.IndexSchemaInput)
        yield* context.view.put(DEFINITION, "", text)
        context.setState(definition)
        return { created: true }
      }),
    Describe: (_, context) => Effect.succeed(context.state)
  }
})

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
