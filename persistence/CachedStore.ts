/**
 * A store layer with a bounded read cache (least recently used first out) in front of any
 * backend. `get` and `getMany` are served from it; writes through this layer update it once
 * they commit, and a write whose outcome is unknown (the backend failed) evicts what it touched.
 *
 * It is exact when this process is the only writer of the partitions it reads, which is what the
 * single-writer invariant gives an entity host; a change of a partition's epoch (ownership moved)
 * drops the cache. It does not cache scans or the store's reserved namespaces.
 */
import { Effect, Exit, Layer } from "effect"
import { toLatin1 } from "./internal/bytes.js"
import { isReserved } from "./internal/layout.js"
import { StoreBackend, type StoreBackendShape, type WriteOp } from "./StoreBackend.js"
import { InvalidArgument } from "./StoreError.js"

/** Bounds of the cache. */
export interface CacheOptions {
  /** Most cached keys (default 10,000). */
  readonly capacity?: number | undefined
  /** Values larger than this many bytes are not cached (default 64 KiB). */
  readonly valueBytesMax?: number | undefined
}

const ABSENT = Symbol("absent")
type Cached = Uint8Array | typeof ABSENT

/** Wraps a backend with a bounded LRU read cache. */
export const wrap = (backend: StoreBackendShape, options: CacheOptions = {}): StoreBackendShape => {
  const capacity = options.capacity ?? 10_000
  const valueBytesMax = options.valueBytesMax ?? 64 * 1024
  // A Map iterates in insertion order: re-inserting on every hit makes the first key the least
  // recently used one.
  const cache = new Map<string, Cached>()
  const id = (partition: string, namespace: string, key: Uint8Array) => `${partition}\u0000${namespace}\u0000${toLatin1(key)}`

  const remember = (cacheKey: string, value: Uint8Array | undefined) => {
    if (value !== undefined && value.length > valueBytesMax) {
      cache.delete(cacheKey)
      return
    }
    cache.delete(cacheKey)
    cache.set(cacheKey, value === undefined ? ABSENT : value)
    if (cache.size > capacity) cache.delete(cache.keys().next().value!)
  }
  const lookup = (cacheKey: string): Cached | undefined => {
    const hit = cache.get(cacheKey)
    if (hit !== undefined) {
      cache.delete(cacheKey)
      cache.set(cacheKey, hit)
    }
    return hit
  }
  const touched = (partition: string, op: WriteOp): string | undefined =>
    op._tag === "Append" || isReserved(op.namespace) ? undefined : id(partition, op.namespace, op.key)

  return {
    ...backend,
    get: (partition, namespace, key) => {
      if (isReserved(namespace)) return backend.get(partition, namespace, key)
      const cacheKey = id(partition, namespace, key)
      const hit = lookup(cacheKey)
      if (hit !== undefined) return Effect.succeed(hit === ABSENT ? undefined : hit)
      return Effect.tap(backend.get(partition, namespace, key), (value) => Effect.sync(() => remember(cacheKey, value)))
    },
    getMany: (partition, namespace, keys) => {
      if (isReserved(namespace)) return backend.getMany(partition, namespace, keys)
      const cacheKeys = keys.map((key) => id(partition, namespace, key))
      const hits = cacheKeys.map(lookup)
      const missing = keys.filter((_, i) => hits[i] === undefined)
      if (missing.length === 0) return Effect.succeed(hits.map((hit) => (hit === ABSENT ? undefined : hit as Uint8Array)))
      return Effect.map(backend.getMany(partition, namespace, missing), (values) => {
        let next = 0
        return hits.map((hit, i) => {
          if (hit !== undefined) return hit === ABSENT ? undefined : hit
          const value = values[next++]
          remember(cacheKeys[i]!, value)
          return value
        })
      })
    },
    write: (batches) =>
      Effect.onExit(backend.write(batches), (exit) =>
        Effect.sync(() => {
          batches.forEach((batch, i) => {
            const committed = Exit.isSuccess(exit) && exit.value[i]?._tag === "Committed"
            const unknown = Exit.isFailure(exit)
            if (!committed && !unknown) return
            for (const op of batch.ops) {
              const cacheKey = touched(batch.partition, op)
              if (cacheKey === undefined) continue
              if (unknown) cache.delete(cacheKey)
              else remember(cacheKey, op._tag === "Put" ? op.value.slice() : undefined)
            }
          })
        })),
    registerEpoch: (partition, epoch) =>
      Effect.tap(backend.registerEpoch(partition, epoch), () => Effect.sync(() => cache.clear()))
  }
}

/** A layer that caches reads of the `StoreBackend` below it. */
export const layer = (options: CacheOptions = {}): Layer.Layer<StoreBackend, InvalidArgument, StoreBackend> =>
  Layer.effect(
    StoreBackend,
    Effect.gen(function*() {
      const capacity = options.capacity ?? 10_000
      if (!Number.isInteger(capacity) || capacity < 1 || capacity > 10_000_000) {
        return yield* Effect.fail(new InvalidArgument({ field: "capacity", message: "must be an integer from 1 to 10,000,000" }))
      }
      return wrap(yield* StoreBackend, options)
    })
  )
