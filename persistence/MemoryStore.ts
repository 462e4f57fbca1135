/**
 * The memory backend: for tests and for users' unit tests. Everything lives in this process and
 * is gone when the layer's scope closes. It is exact (the conformance suite holds it to the same
 * contract as LevelDB and Redis) but neither persistent nor shared between processes.
 */
import { Effect, Layer, type Scope, Stream } from "effect"
import { fromLatin1, toLatin1 } from "./internal/bytes.js"
import * as Layout from "./internal/layout.js"
import { type LatinRange, SortedMap } from "./internal/sortedMap.js"
import { layerStores } from "./IndexedStore.js"
import {
  type BatchOutcome,
  type ExportRecord,
  type KeyRange,
  type PartitionBatch,
  StoreBackend,
  type StoreBackendShape
} from "./StoreBackend.js"
import { StoreClosed } from "./StoreError.js"

const latinRange = (range: KeyRange): LatinRange => ({
  gte: range.gte && toLatin1(range.gte),
  gt: range.gt && toLatin1(range.gt),
  lte: range.lte && toLatin1(range.lte),
  lt: range.lt && toLatin1(range.lt)
})

/** Builds a memory backend; it closes (and refuses further use) when the scope closes. */
export const make: Effect.Effect<StoreBackendShape, never, Scope.Scope> = Effect.gen(function*() {
  const partitions = new Map<string, Map<string, SortedMap<Uint8Array>>>()
  const epochs = new Map<string, number>()
  let closed = false
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      closed = true
      partitions.clear()
    })
  )

  const namespaceOf = (partition: string, namespace: string, create: boolean): SortedMap<Uint8Array> | undefined => {
    let namespaces = partitions.get(partition)
    if (namespaces === undefined) {
      if (!create) return undefined
      namespaces = new Map()
      partitions.set(partition, namespaces)
    }
    let map = namespaces.get(namespace)
    if (map === undefined && create) {
      map = new SortedMap()
      namespaces.set(namespace, map)
    }
    return map
  }

  const guard = <A>(f: () => A): Effect.Effect<A, StoreClosed> =>
    Effect.suspend(() => (closed ? Effect.fail(new StoreClosed({ backend: "memory" })) : Effect.succeed(f())))

  const applyBatch = (batch: PartitionBatch): BatchOutcome => {
    const current = epochs.get(batch.partition) ?? 0
    if (batch.epoch !== undefined) {
      if (batch.epoch < current) return { _tag: "Fenced", currentEpoch: current }
      epochs.set(batch.partition, batch.epoch)
    }
    const firstIndexes: Array<number> = []
    for (const op of batch.ops) {
      switch (op._tag) {
        case "Put":
          namespaceOf(batch.partition, op.namespace, true)!.set(toLatin1(op.key), op.value.slice())
          break
        case "Delete":
          namespaceOf(batch.partition, op.namespace, false)?.delete(toLatin1(op.key))
          break
        case "Append": {
          const positions = namespaceOf(batch.partition, Layout.POSITION_NAMESPACE, true)!
          const positionKey = toLatin1(Layout.positionKey(op.topic))
          const position = Layout.decodePosition(positions.get(positionKey))
          const entries = namespaceOf(batch.partition, Layout.TOPIC_NAMESPACE, true)!
          const prefix = Layout.topicPrefix(op.topic)
          op.values.forEach((value, i) => entries.set(toLatin1(Layout.topicEntryKey(prefix, position + 1 + i)), value.slice()))
          positions.set(positionKey, Layout.encodePosition(position + op.values.length))
          firstIndexes.push(position + 1)
          break
        }
      }
    }
    return { _tag: "Committed", firstIndexes }
  }

  const exportAll = Stream.suspend(() => {
    const records: Array<ExportRecord> = []
    // A snapshot of the key list: memory data is small by nature, and this keeps the stream
    // consistent even if writes continue while it is consumed.
    for (const [partition, namespaces] of partitions) {
      for (const [namespace, map] of namespaces) {
        for (const [key, value] of map.range({}, false, Number.MAX_SAFE_INTEGER)) {
          records.push({ partition, namespace, key: fromLatin1(key), value })
        }
      }
    }
    return Stream.fromIterable(records)
  })

  const backend: StoreBackendShape = {
    name: "memory",
    supports: { persistent: false, shared: false },
    get: (partition, namespace, key) => guard(() => namespaceOf(partition, namespace, false)?.get(toLatin1(key))),
    getMany: (partition, namespace, keys) =>
      guard(() => {
        const map = namespaceOf(partition, namespace, false)
        return keys.map((key) => map?.get(toLatin1(key)))
      }),
    scan: (partition, namespace, range, reverse, limit) =>
      guard(() => {
        const map = namespaceOf(partition, namespace, false)
        if (map === undefined) return []
        return Array.from(map.range(latinRange(range), reverse, limit), ([key, value]) => ({ key: fromLatin1(key), value }))
      }),
    write: (batches) => guard(() => batches.map(applyBatch)),
    registerEpoch: (partition, epoch) =>
      guard(() => {
        const next = Math.max(epochs.get(partition) ?? 0, epoch)
        epochs.set(partition, next)
        return next
      }),
    epoch: (partition) => guard(() => epochs.get(partition) ?? 0),
    export: Stream.unwrap(guard(() => exportAll))
  }
  return backend
})

/** The memory backend as a `StoreBackend` layer. */
export const layerBackend: Layer.Layer<StoreBackend> = Layer.effect(StoreBackend, make)

/** Memory-backed `KeyValueStore` and `IndexedStore` (and the backend, for store layers). */
export const layer = layerStores(layerBackend)
