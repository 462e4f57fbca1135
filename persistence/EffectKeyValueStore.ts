/**
 * Our stores as Effect's own `effect/persistence` `KeyValueStore` service, so Effect programs that
 * expect it (Persistence, PersistedCache, ...) run unchanged on the memory, LevelDB or Redis
 * backend. One Effect store maps to one (partition, namespace) of ours; whole-store operations
 * (`size`, `keys`, `clear`) page through it in bounded chunks.
 */
import { Effect, Layer, Stream } from "effect"
import { KeyValueStore as EffectStore } from "effect/persistence"
import { fromBytes } from "./internal/bytes.js"
import { KeyValueStore } from "./KeyValueStore.js"
import type { KeyValueStoreShape } from "./KeyValueStore.js"

const toEffectError = (method: string, key?: string) => (cause: { readonly _tag: string; readonly message: string }) =>
  new EffectStore.KeyValueStoreError({ method, message: `${cause._tag}: ${cause.message}`, ...(key === undefined ? {} : { key }), cause })

/** Adapts one (partition, namespace) of our key-value store to Effect's `KeyValueStore`. */
export const make = (store: KeyValueStoreShape, partition: string, namespace: string): EffectStore.KeyValueStore => {
  const allKeys = Stream.map(store.stream(partition, namespace), (entry) => fromBytes(entry.key))
  return EffectStore.make({
    get: (key) =>
      Effect.mapError(
        Effect.map(store.get(partition, namespace, key), (value) => (value === undefined ? undefined : fromBytes(value))),
        toEffectError("get", key)
      ),
    getUint8Array: (key) => Effect.mapError(store.get(partition, namespace, key), toEffectError("getUint8Array", key)),
    set: (key, value) => Effect.mapError(store.put(partition, namespace, key, value), toEffectError("set", key)),
    remove: (key) => Effect.mapError(store.delete(partition, namespace, key), toEffectError("remove", key)),
    clear: Effect.mapError(Effect.asVoid(store.deleteRange(partition, namespace, {})), toEffectError("clear")),
    clearPrefix: (prefix) =>
      Effect.mapError(Effect.asVoid(store.deleteRange(partition, namespace, { prefix })), toEffectError("clearPrefix")),
    size: Effect.mapError(Stream.runCount(allKeys), toEffectError("size")),
    keys: Effect.mapError(Stream.runCollect(allKeys), toEffectError("keys")),
    has: (key) =>
      Effect.mapError(Effect.map(store.get(partition, namespace, key), (value) => value !== undefined), toEffectError("has", key))
  })
}

/** Provides Effect's `KeyValueStore` over one (partition, namespace) of the provided `KeyValueStore`. */
export const layer = (options: { readonly partition: string; readonly namespace: string }): Layer.Layer<
  EffectStore.KeyValueStore,
  never,
  KeyValueStore
> => Layer.effect(EffectStore.KeyValueStore, Effect.map(KeyValueStore, (store) => make(store, options.partition, options.namespace)))
