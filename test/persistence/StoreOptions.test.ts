/**
 * Goal: the parts of the storage layer that programs configure or reach through Effect's own
 * services work as documented: Effect's `PersistedCache` (through `Persistence.layerKvs`) runs
 * unchanged on our memory, LevelDB and Redis stores; a smaller `StoreConfig.valueBytesMax` is
 * enforced with the field named and nothing written; LevelDB with `sync: true` keeps its writes;
 * the metered layer records a latency histogram per operation.
 * Method: real stores (LevelDB in temp directories, the private Redis under random prefixes);
 * the cache's lookup counts its calls, and a second cache (empty in memory) must find the value
 * persisted in our store.
 */
import { Effect, Layer, Metric, Schema } from "effect"
import { PersistedCache, Persistable, Persistence } from "effect/persistence"
import { strict as assert } from "node:assert"
import { describe, inject } from "vitest"
import * as EffectKeyValueStore from "../../persistence/EffectKeyValueStore.js"
import { layerStores } from "../../persistence/IndexedStore.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as MeteredStore from "../../persistence/MeteredStore.js"
import * as RedisStore from "../../persistence/RedisStore.js"
import { StoreConfig } from "../../persistence/StoreConfig.js"
import { itEffect } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"

class Square extends Persistable.Class<{ payload: { readonly n: number } }>()("Square", {
  primaryKey: (payload) => String(payload.n),
  success: Schema.Number
}) {}

const backends = (): ReadonlyArray<readonly [string, Layer.Layer<KeyValueStore, unknown>]> => [
  ["memory", MemoryStore.layer],
  ["LevelDB", LevelStore.layer({ directory: tempDir("persisted-cache") })],
  ["Redis", RedisStore.layer({ url: inject("redisUrl"), keyPrefix: `pc${Math.random().toString(36).slice(2, 8)}` })]
]

describe("storage options and Effect's services", () => {
  for (const [name, stores] of backends()) {
    itEffect(`Effect's PersistedCache runs unchanged on the ${name} store`, () =>
      Effect.gen(function*() {
        let lookups = 0
        const lookup = (request: Square) => Effect.sync(() => (lookups++, request.n * request.n))
        const options = { storeId: "squares", timeToLive: () => "1 hour" as const, inMemoryCapacity: 16 }
        const first = yield* PersistedCache.make(lookup, options)
        assert.equal(yield* first.get(new Square({ n: 12 })), 144)
        assert.equal(yield* first.get(new Square({ n: 12 })), 144)
        assert.equal(lookups, 1)
        // A new cache has nothing in memory: the value comes from the store.
        const second = yield* PersistedCache.make(lookup, options)
        assert.equal(yield* second.get(new Square({ n: 12 })), 144)
        assert.equal(lookups, 1, "the persisted result was read back, not computed again")
        const stored = yield* Effect.flatMap(KeyValueStore, (store) => store.scan("effect", "cache"))
        assert.ok(stored.length >= 1, "the cache wrote through our store")
      }).pipe(
        Effect.scoped,
        Effect.provide(
          Persistence.layerKvs.pipe(
            Layer.provide(EffectKeyValueStore.layer({ partition: "effect", namespace: "cache" })),
            Layer.provideMerge(stores)
          )
        )
      ))
  }

  itEffect("enforces a configured value limit, naming the field and writing nothing", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const refused = yield* Effect.flip(store.put("p", "ns", "big", "x".repeat(11)))
      assert.equal(refused._tag, "InvalidArgument")
      assert.equal((refused as { field?: string }).field, "value")
      assert.equal(yield* store.get("p", "ns", "big"), undefined)
      yield* store.put("p", "ns", "small", "x".repeat(10))
      assert.equal((yield* store.get("p", "ns", "small"))?.length, 10)
    }).pipe(Effect.provide(MemoryStore.layer.pipe(Layer.provide(Layer.succeed(StoreConfig)({ ...StoreConfig.defaultValue(), valueBytesMax: 10 }))))))

  itEffect("keeps LevelDB writes made with sync: true across a reopen", () => {
    const directory = tempDir("level-sync")
    const write = Effect.flatMap(KeyValueStore, (store) => store.put("p", "ns", "k", "durable")).pipe(
      Effect.provide(LevelStore.layer({ directory, sync: true }))
    )
    const read = Effect.flatMap(KeyValueStore, (store) => store.get("p", "ns", "k")).pipe(Effect.provide(LevelStore.layer({ directory })))
    return Effect.gen(function*() {
      yield* write
      assert.equal(Buffer.from((yield* read)!).toString(), "durable")
    })
  })

  itEffect("records a latency histogram per backend and operation", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const count = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, operation: string) =>
        snapshots
          .filter((snapshot) => snapshot.id === "shardfeed_store_operation_seconds" && snapshot.attributes?.backend === "memory" && snapshot.attributes?.operation === operation)
          .reduce((sum, snapshot) => sum + (snapshot.state as Metric.HistogramState).count, 0)
      const before = yield* Metric.snapshot
      yield* store.put("p", "ns", "k", "v")
      for (let i = 0; i < 3; i++) yield* store.get("p", "ns", "k")
      const after = yield* Metric.snapshot
      assert.equal(count(after, "write") - count(before, "write"), 1)
      assert.equal(count(after, "get") - count(before, "get"), 3)
    }).pipe(Effect.provide(layerStores(MeteredStore.layer.pipe(Layer.provide(MemoryStore.layerBackend))))))
})
