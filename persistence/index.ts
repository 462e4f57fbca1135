/**
 * The storage layer: key-value and indexed store services, their backends (memory, LevelDB,
 * Redis and Redis Cluster), store layers that wrap any backend, typed values, and adapters to
 * Effect's own persistence services.
 */
export * as CachedStore from "./CachedStore.js"
export * as EffectKeyValueStore from "./EffectKeyValueStore.js"
export * as EffectRedis from "./EffectRedis.js"
export * as IndexedStore from "./IndexedStore.js"
export * as KeyValueStore from "./KeyValueStore.js"
export * as LevelStore from "./LevelStore.js"
export * as MemoryStore from "./MemoryStore.js"
export * as MeteredStore from "./MeteredStore.js"
export * as PrefixedStore from "./PrefixedStore.js"
export * as RedisConnection from "./RedisConnection.js"
export * as RedisStore from "./RedisStore.js"
export * as StoreBackend from "./StoreBackend.js"
export * as StoreConfig from "./StoreConfig.js"
export * as StoreError from "./StoreError.js"
export * as TypedStore from "./TypedStore.js"
export * as PersistentBuffer from "./PersistentBuffer.js"
export * as BufferError from "./BufferError.js"
