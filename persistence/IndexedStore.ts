/**
 * The indexed store service: topics of values at consecutive indexes starting at 1, per
 * partition. Appends are atomic and may be fenced; they can also ride in a key-value `batch`
 * (op `append`) so an entity's data and its event log commit together.
 *
 * Topics are laid out over the backend's ordered namespaces (see `internal/layout.ts`), so every
 * backend gets them without code of its own beyond the `Append` primitive.
 */
import { Context, Effect, Layer, Stream } from "effect"
import * as Bytes from "./internal/bytes.js"
import * as Layout from "./internal/layout.js"
import * as Validate from "./internal/validate.js"
import { type Bytes as BytesInput, KeyValueStore, layer as keyValueLayer, streamRange, type WriteOptions } from "./KeyValueStore.js"
import { StoreBackend, type KeyRange } from "./StoreBackend.js"
import { StoreConfig } from "./StoreConfig.js"
import { Fenced, InvalidArgument, type ReadError, type WriteError } from "./StoreError.js"

/** One value of a topic with its index. */
export interface IndexedValue {
  readonly index: number
  readonly value: Uint8Array
}

/** Which indexes to read: the inclusive range `from`..`to` (default 1..position), ascending or not. */
export interface TopicScanOptions {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly reverse?: boolean | undefined
  /** Most values returned: 1 to `scanLimitMax` (default 1,000). */
  readonly limit?: number | undefined
}

/** The indexed store. */
export interface IndexedStoreShape {
  /** Appends values; returns the index of the first. */
  readonly append: (
    partition: string,
    topic: string,
    values: ReadonlyArray<BytesInput>,
    options?: WriteOptions
  ) => Effect.Effect<number, WriteError>
  /** The index of the last value ever appended (0 for a new or deleted topic). */
  readonly position: (partition: string, topic: string) => Effect.Effect<number, ReadError>
  /** One bounded page of a topic. */
  readonly scan: (partition: string, topic: string, options?: TopicScanOptions) => Effect.Effect<ReadonlyArray<IndexedValue>, ReadError>
  /** A whole range of a topic as a stream, read in chunks. */
  readonly stream: (partition: string, topic: string, options?: Omit<TopicScanOptions, "limit">) => Stream.Stream<IndexedValue, ReadError>
  /** Deletes the values below `index`; indexes are never reused. Returns how many were deleted. */
  readonly truncateBefore: (partition: string, topic: string, index: number, options?: WriteOptions) => Effect.Effect<number, WriteError>
  /** Deletes a topic and its position, so the next append starts at 1 again. */
  readonly deleteTopic: (partition: string, topic: string, options?: WriteOptions) => Effect.Effect<number, WriteError>
}

/** The indexed store service. */
export class IndexedStore extends Context.Service<IndexedStore, IndexedStoreShape>()("shardfeed/IndexedStore") {}

const DEFAULT_LIMIT = 1_000

/** Builds the indexed store over the key-value store and its backend. */
export const make: Effect.Effect<IndexedStoreShape, never, StoreBackend | KeyValueStore> = Effect.gen(function*() {
  const backend = yield* StoreBackend
  const store = yield* KeyValueStore
  const config = yield* StoreConfig

  const check = (partition: string, topic: string) => Validate.partition(partition) ?? Validate.name("topic", topic, config)

  const topicRange = (topic: string, options: TopicScanOptions): KeyRange | InvalidArgument => {
    const from = options.from ?? 1
    const to = options.to ?? Number.MAX_SAFE_INTEGER
    const bad = Validate.nonNegativeInteger(from, "from") ?? Validate.nonNegativeInteger(to, "to")
    if (bad !== undefined) return bad
    const prefix = Layout.topicPrefix(topic)
    return { gte: Layout.topicEntryKey(prefix, from), lte: Layout.topicEntryKey(prefix, to) }
  }

  const decode = (entry: { readonly key: Uint8Array; readonly value: Uint8Array }): IndexedValue => ({
    index: Layout.topicEntryIndex(entry.key),
    value: entry.value
  })

  const deleteEntries = (partition: string, range: KeyRange, epoch: number | undefined) => {
    const loop = (deleted: number): Effect.Effect<number, WriteError> =>
      Effect.flatMap(backend.scan(partition, Layout.TOPIC_NAMESPACE, range, false, config.chunkSize), (entries) => {
        if (entries.length === 0) return Effect.succeed(deleted)
        const ops = entries.map((entry) => ({ _tag: "Delete" as const, namespace: Layout.TOPIC_NAMESPACE, key: entry.key }))
        return Effect.flatMap(backend.write([{ partition, epoch, ops }]), ([outcome]) =>
          outcome!._tag === "Fenced"
            ? Effect.fail(new Fenced({ partition, epoch: epoch ?? 0, currentEpoch: outcome!.currentEpoch }))
            : entries.length < config.chunkSize
            ? Effect.succeed(deleted + entries.length)
            : loop(deleted + entries.length))
      })
    return loop(0)
  }

  const service: IndexedStoreShape = {
    append: (partition, topic, values, options) =>
      Effect.map(
        store.batch(partition, [{ op: "append", topic, values }], options),
        (committed) => committed.firstIndexes[0]!
      ),
    position: (partition, topic) => {
      const bad = check(partition, topic)
      if (bad !== undefined) return Effect.fail(bad)
      return Effect.map(
        backend.get(partition, Layout.POSITION_NAMESPACE, Layout.positionKey(topic)),
        Layout.decodePosition
      )
    },
    scan: (partition, topic, options = {}) => {
      const bad = check(partition, topic) ?? Validate.limit(options.limit ?? DEFAULT_LIMIT, config.scanLimitMax)
      if (bad !== undefined) return Effect.fail(bad)
      const range = topicRange(topic, options)
      if (range instanceof InvalidArgument) return Effect.fail(range)
      return Effect.map(
        backend.scan(partition, Layout.TOPIC_NAMESPACE, range, options.reverse === true, options.limit ?? DEFAULT_LIMIT),
        (entries) => entries.map(decode)
      )
    },
    stream: (partition, topic, options = {}) => {
      const bad = check(partition, topic)
      if (bad !== undefined) return Stream.fail(bad)
      const range = topicRange(topic, options)
      if (range instanceof InvalidArgument) return Stream.fail(range)
      return Stream.map(
        streamRange(backend, partition, Layout.TOPIC_NAMESPACE, range, options.reverse === true, config.chunkSize, Number.MAX_SAFE_INTEGER),
        decode
      )
    },
    truncateBefore: (partition, topic, index, options) => {
      const bad = check(partition, topic) ?? Validate.nonNegativeInteger(index, "index") ??
        (options?.epoch === undefined ? undefined : Validate.epoch(options.epoch))
      if (bad !== undefined) return Effect.fail(bad)
      if (index <= 1) return Effect.succeed(0)
      const prefix = Layout.topicPrefix(topic)
      return deleteEntries(partition, { gte: Layout.topicEntryKey(prefix, 0), lt: Layout.topicEntryKey(prefix, index) }, options?.epoch)
    },
    deleteTopic: (partition, topic, options) => {
      const bad = check(partition, topic) ?? (options?.epoch === undefined ? undefined : Validate.epoch(options.epoch))
      if (bad !== undefined) return Effect.fail(bad)
      const prefix = Layout.topicPrefix(topic)
      const range = { gte: prefix, lt: Bytes.prefixSuccessor(prefix) }
      // Entries first, position last: a crash in between leaves a truncated topic whose indexes
      // are still never reused, rather than a reset position with stale entries above it.
      return Effect.flatMap(deleteEntries(partition, range, options?.epoch), (deleted) =>
        Effect.flatMap(
          backend.write([{
            partition,
            epoch: options?.epoch,
            ops: [{ _tag: "Delete", namespace: Layout.POSITION_NAMESPACE, key: Layout.positionKey(topic) }]
          }]),
          ([outcome]) =>
            outcome!._tag === "Fenced"
              ? Effect.fail(new Fenced({ partition, epoch: options?.epoch ?? 0, currentEpoch: outcome!.currentEpoch }))
              : Effect.succeed(deleted)
        ))
    }
  }
  return service
})

/** The indexed store over whatever `StoreBackend` (and `KeyValueStore`) is provided. */
export const layer: Layer.Layer<IndexedStore, never, StoreBackend | KeyValueStore> = Layer.effect(IndexedStore, make)

/**
 * Both store services over a backend: the usual way to turn a backend layer into stores. The
 * service layers are fresh so that stores over a wrapped backend never share the memoized
 * instance of stores over the backend it wraps.
 */
export const layerStores = <E, R>(
  backend: Layer.Layer<StoreBackend, E, R>
): Layer.Layer<KeyValueStore | IndexedStore | StoreBackend, E, R> =>
  Layer.provideMerge(Layer.fresh(layer), Layer.provideMerge(Layer.fresh(keyValueLayer), backend))
