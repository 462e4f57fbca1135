/**
 * Goal: the composable store layers keep the store's contract and do their own job; typed values
 * fail typed; our stores serve Effect's own persistence services.
 * Method: the conformance suite over cache + metrics + prefix layers on the memory backend;
 * then focused checks of each layer (metric counts move, cache hits skip the backend and writes
 * update it), the typed store's decode error, Effect's `KeyValueStore` schema store on LevelDB,
 * and Effect's `Redis` service on the private redis-server.
 */
import { Effect, Layer, Metric, Schema } from "effect"
import { KeyValueStore as EffectStore, Redis } from "effect/persistence"
import { strict as assert } from "node:assert"
import { describe, inject } from "vitest"
import * as CachedStore from "../../persistence/CachedStore.js"
import * as EffectKeyValueStore from "../../persistence/EffectKeyValueStore.js"
import * as EffectRedis from "../../persistence/EffectRedis.js"
import { layerStores } from "../../persistence/IndexedStore.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as MeteredStore from "../../persistence/MeteredStore.js"
import * as PrefixedStore from "../../persistence/PrefixedStore.js"
import * as RedisConnection from "../../persistence/RedisConnection.js"
import { StoreBackend, type StoreBackendShape } from "../../persistence/StoreBackend.js"
import * as TypedStore from "../../persistence/TypedStore.js"
import { suite } from "../conformance/StoreSuite.js"
import { itEffect, itLayer } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"

const composed = () =>
  layerStores(
    CachedStore.layer({ capacity: 64 }).pipe(
      Layer.provide(MeteredStore.layer),
      Layer.provide(PrefixedStore.layer("tenant")),
      Layer.provide(MemoryStore.layerBackend)
    )
  )

suite("memory backend under cache, metrics and prefix layers", composed)

/** A backend that counts the gets that reach it. */
const counting = (counter: { gets: number }) =>
  Layer.effect(
    StoreBackend,
    Effect.map(StoreBackend, (backend): StoreBackendShape => ({
      ...backend,
      get: (...args) => Effect.suspend(() => {
        counter.gets++
        return backend.get(...args)
      })
    }))
  )

describe("store layers", () => {
  itEffect("the metrics layer counts operations and bytes by backend and operation", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const value = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, attributes: Record<string, string>) =>
        snapshots
          .filter((snapshot) => snapshot.id === id && Object.entries(attributes).every(([k, v]) => snapshot.attributes?.[k] === v))
          .reduce((sum, snapshot) => sum + Number((snapshot.state as { count: number }).count), 0)
      const before = yield* Metric.snapshot
      yield* store.put("p", "ns", "k", "12345")
      yield* store.get("p", "ns", "k")
      yield* store.get("p", "ns", "k")
      const after = yield* Metric.snapshot
      const ops = (operation: string) =>
        value(after, "shardfeed_store_operations_total", { backend: "memory", operation, outcome: "ok" }) -
        value(before, "shardfeed_store_operations_total", { backend: "memory", operation, outcome: "ok" })
      assert.equal(ops("write"), 1)
      assert.equal(ops("get"), 2)
      const written = value(after, "shardfeed_store_written_bytes_total", { backend: "memory" }) -
        value(before, "shardfeed_store_written_bytes_total", { backend: "memory" })
      assert.equal(written, 1 + 5)
    }).pipe(Effect.provide(layerStores(MeteredStore.layer.pipe(Layer.provide(MemoryStore.layerBackend))))))

  itEffect("the cache serves repeated reads without the backend and sees writes made through it", () => {
    const counter = { gets: 0 }
    const layer = layerStores(
      CachedStore.layer({ capacity: 2 }).pipe(Layer.provide(counting(counter)), Layer.provide(MemoryStore.layerBackend))
    )
    return Effect.gen(function*() {
      const store = yield* KeyValueStore
      yield* store.put("p", "ns", "a", "1")
      assert.equal(Buffer.from((yield* store.get("p", "ns", "a"))!).toString(), "1")
      assert.equal(counter.gets, 0, "a committed put fills the cache")
      yield* store.get("p", "ns", "missing")
      yield* store.get("p", "ns", "missing")
      assert.equal(counter.gets, 1, "a miss is cached too")
      yield* store.delete("p", "ns", "a")
      assert.equal(yield* store.get("p", "ns", "a"), undefined)
      yield* store.put("p", "ns", "b", "2")
      yield* store.put("p", "ns", "c", "3")
      yield* store.get("p", "ns", "missing")
      assert.equal(counter.gets, 2, "the capacity of 2 evicted the least recently used key")
      const fenced = yield* Effect.flip(Effect.flatMap(store.registerEpoch("p", 3), () => store.put("p", "ns", "b", "stale", { epoch: 1 })))
      assert.equal(fenced._tag, "Fenced")
      assert.equal(Buffer.from((yield* store.get("p", "ns", "b"))!).toString(), "2", "a fenced write does not reach the cache")
    }).pipe(Effect.provide(layer))
  })

  itLayer(MemoryStore.layer)("a typed namespace round-trips values and names the key of a value that fails to decode", () =>
    Effect.gen(function*() {
      const Wallet = Schema.Struct({ owner: Schema.String, balance: Schema.Number })
      const wallets = TypedStore.namespace("wallets", TypedStore.jsonCodec(Wallet))
      yield* wallets.put("p", "alice", { owner: "alice", balance: 10 })
      assert.deepEqual(yield* wallets.get("p", "alice"), { owner: "alice", balance: 10 })
      const store = yield* KeyValueStore
      yield* store.put("p", "wallets", "bob", "{\"owner\":\"bob\",\"balance\":\"lots\"}")
      const error = yield* Effect.flip(wallets.get("p", "bob"))
      assert.equal(error._tag, "ValueDecodeError")
      assert.equal(error._tag === "ValueDecodeError" && error.key, "bob")
      const broken = yield* Effect.flip(wallets.scan("p"))
      assert.equal(broken._tag, "ValueDecodeError")
    }))

  itEffect("Effect's own KeyValueStore and its schema store run on the LevelDB backend", () =>
    Effect.gen(function*() {
      const kv = yield* EffectStore.KeyValueStore
      yield* kv.set("a", "1")
      yield* kv.set("b", new Uint8Array([1, 2, 3]))
      assert.equal(yield* kv.get("a"), "1")
      assert.deepEqual(Array.from((yield* kv.getUint8Array("b"))!), [1, 2, 3])
      assert.equal(yield* kv.size, 2)
      assert.deepEqual([...(yield* kv.keys)].sort(), ["a", "b"])
      const people = EffectStore.toSchemaStore(kv, Schema.Struct({ name: Schema.String }))
      yield* people.set("p1", { name: "Ada" })
      const read = yield* people.get("p1")
      assert.equal(read._tag === "Some" && read.value.name, "Ada")
      yield* kv.remove("a")
      assert.equal(yield* kv.has("a"), false)
      yield* kv.clear
      assert.equal(yield* kv.isEmpty, true)
    }).pipe(
      Effect.provide(
        EffectKeyValueStore.layer({ partition: "effect", namespace: "kv" }).pipe(
          Layer.provide(LevelStore.layer({ directory: tempDir("effect-kv") }))
        )
      )
    ))

  itEffect("Effect's own Redis service runs commands and scripts on our connection", () =>
    Effect.gen(function*() {
      const redis = yield* Redis.Redis
      const key = `effect-redis-${Math.random().toString(36).slice(2)}`
      yield* redis.send("SET", key, "41")
      const incremented = Redis.script((k: string) => [k], { lua: "return redis.call('INCR', KEYS[1])", numberOfKeys: 1 })
        .withReturnType<number>()
      assert.equal(yield* redis.eval(incremented)(key), 42)
      assert.equal(yield* redis.send<string>("GET", key), "42")
      yield* redis.send("DEL", key)
    }).pipe(Effect.provide(EffectRedis.layer.pipe(Layer.provide(RedisConnection.layer({ url: inject("redisUrl") }))))))
})
