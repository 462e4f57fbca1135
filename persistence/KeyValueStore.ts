/**
 * The key-value store service: partitions of namespaces of byte-ordered keys, bounded scans and
 * streams, versioned values (as in ZIO Flow's store), and atomic batches that may be fenced by
 * an epoch and may carry topic appends of the same partition.
 *
 * This module owns validation and encoding (the abstract-level split): a backend behind
 * `StoreBackend` receives only clean input. It does not decode values (see `TypedStore`) and it
 * knows nothing about entities or shards beyond the opaque `partition` string.
 */
import { Context, Effect, Layer, Option, Result, Stream } from "effect"
import * as ByteUtil from "./internal/bytes.js"
import * as Layout from "./internal/layout.js"
import * as Validate from "./internal/validate.js"
import type { Entry, KeyRange, PartitionBatch, WriteOp } from "./StoreBackend.js"
import { StoreBackend, type StoreBackendShape } from "./StoreBackend.js"
import { StoreConfig, type StoreConfigShape } from "./StoreConfig.js"
import { Fenced, InvalidArgument, type ReadError, type StoreClosed, type StoreUnavailable, type WriteError } from "./StoreError.js"

/** A key or value given as bytes, or as a string stored in UTF-8. */
export type Bytes = string | Uint8Array

/** Scan bounds: either a `prefix`, or at most one lower (`gte`/`gt`) and one upper (`lte`/`lt`) bound. */
export interface ScanOptions {
  readonly prefix?: Bytes | undefined
  readonly gte?: Bytes | undefined
  readonly gt?: Bytes | undefined
  readonly lte?: Bytes | undefined
  readonly lt?: Bytes | undefined
  /** Descending key order. */
  readonly reverse?: boolean | undefined
  /** Most entries returned: 1 to `scanLimitMax` (default 1,000). */
  readonly limit?: number | undefined
}

/** One write of a batch, as callers give it. */
export type BatchOp =
  | { readonly op: "put"; readonly namespace: string; readonly key: Bytes; readonly value: Bytes }
  | { readonly op: "delete"; readonly namespace: string; readonly key: Bytes }
  | {
    readonly op: "putVersion"
    readonly namespace: string
    readonly key: Bytes
    readonly value: Bytes
    readonly timestamp: number
  }
  | { readonly op: "append"; readonly topic: string; readonly values: ReadonlyArray<Bytes> }

/** Write options: `epoch` fences the write against the partition's registered epoch. */
export interface WriteOptions {
  readonly epoch?: number | undefined
}

/** A batch for `commit`. */
export interface Batch {
  readonly partition: string
  readonly ops: ReadonlyArray<BatchOp>
  readonly epoch?: number | undefined
}

/** The result of a committed batch: the first index of each append, in op order. */
export interface Committed {
  readonly firstIndexes: ReadonlyArray<number>
}

/** A value together with its version timestamp. */
export interface Versioned {
  readonly value: Uint8Array
  readonly timestamp: number
}

/** The key-value store. Every method validates its input and names the bad field. */
export interface KeyValueStoreShape {
  /** The backend's name and capability manifest. */
  readonly backend: Pick<StoreBackendShape, "name" | "supports">
  readonly get: (partition: string, namespace: string, key: Bytes) => Effect.Effect<Uint8Array | undefined, ReadError>
  readonly getMany: (
    partition: string,
    namespace: string,
    keys: ReadonlyArray<Bytes>
  ) => Effect.Effect<ReadonlyArray<Uint8Array | undefined>, ReadError>
  readonly put: (
    partition: string,
    namespace: string,
    key: Bytes,
    value: Bytes,
    options?: WriteOptions
  ) => Effect.Effect<void, WriteError>
  readonly delete: (partition: string, namespace: string, key: Bytes, options?: WriteOptions) => Effect.Effect<void, WriteError>
  /** One bounded page of a range, in key order. */
  readonly scan: (partition: string, namespace: string, options?: ScanOptions) => Effect.Effect<ReadonlyArray<Entry>, ReadError>
  /** A whole range as a stream, read `chunkSize` entries at a time; `limit` bounds the total. */
  readonly stream: (partition: string, namespace: string, options?: ScanOptions) => Stream.Stream<Entry, ReadError>
  /** Deletes a range in chunks (each chunk atomic and fenced, the whole not); returns the count. */
  readonly deleteRange: (
    partition: string,
    namespace: string,
    options: Omit<ScanOptions, "limit" | "reverse">,
    writeOptions?: WriteOptions
  ) => Effect.Effect<number, WriteError>
  /** Stores `value` as the version of `key` at `timestamp` (milliseconds). */
  readonly putVersion: (
    partition: string,
    namespace: string,
    key: Bytes,
    value: Bytes,
    timestamp: number,
    options?: WriteOptions
  ) => Effect.Effect<void, WriteError>
  /** The latest version at or before `before` (default: the latest of all). */
  readonly getLatest: (
    partition: string,
    namespace: string,
    key: Bytes,
    before?: number
  ) => Effect.Effect<Versioned | undefined, ReadError>
  /** Version timestamps of a key, oldest first, at most `limit` (default 1,000). */
  readonly versions: (
    partition: string,
    namespace: string,
    key: Bytes,
    options?: { readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<number>, ReadError>
  /** Deletes the versions older than `timestamp`; returns how many. */
  readonly deleteVersionsBefore: (
    partition: string,
    namespace: string,
    key: Bytes,
    timestamp: number,
    options?: WriteOptions
  ) => Effect.Effect<number, WriteError>
  /** Applies `ops` atomically: all or none. */
  readonly batch: (
    partition: string,
    ops: ReadonlyArray<BatchOp>,
    options?: WriteOptions
  ) => Effect.Effect<Committed, WriteError>
  /** Applies many batches in one backend round; each is atomic and fenced on its own. */
  readonly commit: (
    batches: ReadonlyArray<Batch>
  ) => Effect.Effect<ReadonlyArray<Result.Result<Committed, InvalidArgument | Fenced>>, StoreClosed | StoreUnavailable>
  /** Records that `epoch` was granted for `partition`; returns the highest registered epoch. */
  readonly registerEpoch: (partition: string, epoch: number) => Effect.Effect<number, ReadError>
  /** The highest epoch registered for `partition` (0 when none). */
  readonly epoch: (partition: string) => Effect.Effect<number, ReadError>
}

/** The key-value store service. */
export class KeyValueStore extends Context.Service<KeyValueStore, KeyValueStoreShape>()("shardfeed/KeyValueStore") {}

const DEFAULT_SCAN_LIMIT = 1_000

const userNamespace = (namespace: string, config: StoreConfigShape) => Validate.name("namespace", namespace, config)

/** Turns scan options into a backend key range, or names the bad field. */
export const toRange = (options: ScanOptions, config: StoreConfigShape): KeyRange | InvalidArgument => {
  const bound = (field: string, value: Bytes | undefined): Uint8Array | InvalidArgument | undefined => {
    if (value === undefined) return undefined
    const bytes = ByteUtil.toBytes(value)
    return Validate.key(bytes, config, field) ?? bytes
  }
  if (options.prefix !== undefined) {
    if (options.gte !== undefined || options.gt !== undefined || options.lte !== undefined || options.lt !== undefined) {
      return new InvalidArgument({ field: "prefix", message: "cannot be combined with gte, gt, lte or lt" })
    }
    const prefix = bound("prefix", options.prefix)
    if (prefix instanceof InvalidArgument) return prefix
    return { gte: prefix, lt: prefix === undefined ? undefined : ByteUtil.prefixSuccessor(prefix) }
  }
  if (options.gte !== undefined && options.gt !== undefined) {
    return new InvalidArgument({ field: "gt", message: "cannot be combined with gte" })
  }
  if (options.lte !== undefined && options.lt !== undefined) {
    return new InvalidArgument({ field: "lt", message: "cannot be combined with lte" })
  }
  const gte = bound("gte", options.gte)
  const gt = bound("gt", options.gt)
  const lte = bound("lte", options.lte)
  const lt = bound("lt", options.lt)
  for (const candidate of [gte, gt, lte, lt]) if (candidate instanceof InvalidArgument) return candidate
  return { gte: gte as Uint8Array | undefined, gt: gt as Uint8Array | undefined, lte: lte as Uint8Array | undefined, lt: lt as Uint8Array | undefined }
}

/** The range that continues a scan after `last` in the scan's direction. */
export const continueAfter = (range: KeyRange, last: Uint8Array, reverse: boolean): KeyRange =>
  reverse
    ? { gte: range.gte, gt: range.gt, lt: last, lte: undefined }
    : { gt: last, gte: undefined, lte: range.lte, lt: range.lt }

/** Validates namespaces, remembering the last good one: a batch usually repeats it. */
class NamespaceCheck {
  private last: string | undefined
  constructor(private readonly config: StoreConfigShape) {}
  check(namespace: string): InvalidArgument | undefined {
    if (namespace === this.last) return undefined
    const bad = userNamespace(namespace, this.config)
    if (bad === undefined) this.last = namespace
    return bad
  }
}

/** Turns one caller op into backend ops, or names the bad field. */
const encodeOp = (op: BatchOp, config: StoreConfigShape, out: Array<WriteOp>, namespaces: NamespaceCheck): InvalidArgument | undefined => {
  switch (op.op) {
    case "put":
    case "delete":
    case "putVersion": {
      const bad = namespaces.check(op.namespace)
      if (bad !== undefined) return bad
      const key = ByteUtil.toBytes(op.key)
      const badKey = Validate.key(key, config)
      if (badKey !== undefined) return badKey
      if (op.op === "delete") {
        out.push({ _tag: "Delete", namespace: op.namespace, key })
        return undefined
      }
      const value = ByteUtil.toBytes(op.value)
      const badValue = Validate.value(value, config)
      if (badValue !== undefined) return badValue
      if (op.op === "put") {
        out.push({ _tag: "Put", namespace: op.namespace, key, value })
        return undefined
      }
      const badTimestamp = Validate.nonNegativeInteger(op.timestamp, "timestamp")
      if (badTimestamp !== undefined) return badTimestamp
      const versionKey = Layout.versionKey(Layout.versionPrefix(op.namespace, key), op.timestamp)
      out.push({ _tag: "Put", namespace: Layout.VERSION_NAMESPACE, key: versionKey, value })
      return undefined
    }
    case "append": {
      const bad = Validate.name("topic", op.topic, config)
      if (bad !== undefined) return bad
      if (!Array.isArray(op.values) || op.values.length === 0) {
        return new InvalidArgument({ field: "values", message: "must hold at least one value" })
      }
      const values: Array<Uint8Array> = []
      for (const value of op.values) {
        const bytes = ByteUtil.toBytes(value)
        const badValue = Validate.value(bytes, config, "values")
        if (badValue !== undefined) return badValue
        values.push(bytes)
      }
      out.push({ _tag: "Append", topic: op.topic, values })
      return undefined
    }
    default:
      return new InvalidArgument({ field: "op", message: `unknown op ${String((op as { op: unknown }).op)}` })
  }
}

/** Validates and encodes a caller batch into a backend batch. */
export const encodeBatch = (batch: Batch, config: StoreConfigShape): PartitionBatch | InvalidArgument => {
  const badPartition = Validate.partition(batch.partition)
  if (badPartition !== undefined) return badPartition
  if (batch.epoch !== undefined) {
    const badEpoch = Validate.epoch(batch.epoch)
    if (badEpoch !== undefined) return badEpoch
  }
  if (batch.ops.length === 0) return new InvalidArgument({ field: "ops", message: "must hold at least one op" })
  const ops: Array<WriteOp> = []
  let size = 0
  const checked = new NamespaceCheck(config)
  for (const op of batch.ops) {
    const bad = encodeOp(op, config, ops, checked)
    if (bad !== undefined) return bad
    size += op.op === "append" ? op.values.length : 1
    if (size > config.batchOpsMax) {
      return new InvalidArgument({ field: "ops", message: `must hold at most ${config.batchOpsMax} writes` })
    }
  }
  return { partition: batch.partition, epoch: batch.epoch, ops }
}

/** Builds the key-value store over a backend. */
export const make: Effect.Effect<KeyValueStoreShape, never, StoreBackend> = Effect.gen(function*() {
  const backend = yield* StoreBackend
  const config = yield* StoreConfig

  const checkRead = (partition: string, namespace: string): InvalidArgument | undefined =>
    Validate.partition(partition) ?? userNamespace(namespace, config)

  const commit: KeyValueStoreShape["commit"] = (batches) => {
    const encoded = batches.map((batch) => encodeBatch(batch, config))
    const valid: Array<PartitionBatch> = []
    for (const item of encoded) if (!(item instanceof InvalidArgument)) valid.push(item)
    if (valid.length === 0) return Effect.succeed(encoded.map((item) => Result.fail(item as InvalidArgument)))
    return Effect.map(backend.write(valid), (outcomes) => {
      let next = 0
      return encoded.map((item): Result.Result<Committed, InvalidArgument | Fenced> => {
        if (item instanceof InvalidArgument) return Result.fail(item)
        const outcome = outcomes[next++]!
        return outcome._tag === "Committed"
          ? Result.succeed({ firstIndexes: outcome.firstIndexes })
          : Result.fail(new Fenced({ partition: item.partition, epoch: item.epoch ?? 0, currentEpoch: outcome.currentEpoch }))
      })
    })
  }

  const batch: KeyValueStoreShape["batch"] = (partition, ops, options) =>
    Effect.flatMap(commit([{ partition, ops, epoch: options?.epoch }]), (results) => {
      const result = results[0]!
      return Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)
    })

  const scanRange = (partition: string, namespace: string, options: ScanOptions, maxLimit: number) => {
    const bad = Validate.partition(partition) ?? userNamespace(namespace, config) ??
      Validate.limit(options.limit ?? DEFAULT_SCAN_LIMIT, maxLimit)
    if (bad !== undefined) return bad
    return toRange(options, config)
  }

  const scan: KeyValueStoreShape["scan"] = (partition, namespace, options = {}) => {
    const range = scanRange(partition, namespace, options, config.scanLimitMax)
    if (range instanceof InvalidArgument) return Effect.fail(range)
    return backend.scan(partition, namespace, range, options.reverse === true, options.limit ?? DEFAULT_SCAN_LIMIT)
  }

  const stream: KeyValueStoreShape["stream"] = (partition, namespace, options = {}) => {
    const total = options.limit ?? Number.MAX_SAFE_INTEGER
    const range = scanRange(partition, namespace, { ...options, limit: undefined }, config.scanLimitMax)
    if (range instanceof InvalidArgument) return Stream.fail(range)
    if (options.limit !== undefined && Validate.limit(options.limit, Number.MAX_SAFE_INTEGER) !== undefined) {
      return Stream.fail(new InvalidArgument({ field: "limit", message: "must be a positive integer" }))
    }
    return streamRange(backend, partition, namespace, range, options.reverse === true, config.chunkSize, total)
  }

  const deleteRange: KeyValueStoreShape["deleteRange"] = (partition, namespace, options, writeOptions) => {
    const range = scanRange(partition, namespace, options, config.scanLimitMax)
    if (range instanceof InvalidArgument) return Effect.fail(range)
    return deleteChunks(backend, partition, namespace, range, config.chunkSize, writeOptions?.epoch)
  }

  const versionRange = (namespace: string, key: Bytes, upTo: number | undefined): KeyRange | InvalidArgument => {
    const keyBytes = ByteUtil.toBytes(key)
    const bad = userNamespace(namespace, config) ?? Validate.key(keyBytes, config) ??
      (upTo === undefined ? undefined : Validate.nonNegativeInteger(upTo, "before"))
    if (bad !== undefined) return bad
    const prefix = Layout.versionPrefix(namespace, keyBytes)
    return {
      gte: Layout.versionKey(prefix, 0),
      lte: Layout.versionKey(prefix, upTo ?? Number.MAX_SAFE_INTEGER)
    }
  }

  const service: KeyValueStoreShape = {
    backend: { name: backend.name, supports: backend.supports },
    get: (partition, namespace, key) => {
      const bytes = ByteUtil.toBytes(key)
      const bad = checkRead(partition, namespace) ?? Validate.key(bytes, config)
      return bad !== undefined ? Effect.fail(bad) : backend.get(partition, namespace, bytes)
    },
    getMany: (partition, namespace, keys) => {
      const bad = checkRead(partition, namespace) ?? Validate.limit(keys.length, config.scanLimitMax, "keys")
      if (bad !== undefined) return Effect.fail(bad)
      const encoded: Array<Uint8Array> = []
      for (const key of keys) {
        const bytes = ByteUtil.toBytes(key)
        const badKey = Validate.key(bytes, config, "keys")
        if (badKey !== undefined) return Effect.fail(badKey)
        encoded.push(bytes)
      }
      return backend.getMany(partition, namespace, encoded)
    },
    put: (partition, namespace, key, value, options) =>
      Effect.asVoid(batch(partition, [{ op: "put", namespace, key, value }], options)),
    delete: (partition, namespace, key, options) =>
      Effect.asVoid(batch(partition, [{ op: "delete", namespace, key }], options)),
    scan,
    stream,
    deleteRange,
    putVersion: (partition, namespace, key, value, timestamp, options) =>
      Effect.asVoid(batch(partition, [{ op: "putVersion", namespace, key, value, timestamp }], options)),
    getLatest: (partition, namespace, key, before) => {
      const range = versionRange(namespace, key, before)
      const bad = Validate.partition(partition)
      if (bad !== undefined) return Effect.fail(bad)
      if (range instanceof InvalidArgument) return Effect.fail(range)
      return Effect.map(backend.scan(partition, Layout.VERSION_NAMESPACE, range, true, 1), (entries) => {
        const entry = entries[0]
        return entry === undefined ? undefined : { value: entry.value, timestamp: Layout.versionTimestamp(entry.key) }
      })
    },
    versions: (partition, namespace, key, options) => {
      const range = versionRange(namespace, key, undefined)
      const limit = options?.limit ?? DEFAULT_SCAN_LIMIT
      const bad = Validate.partition(partition) ?? Validate.limit(limit, config.scanLimitMax)
      if (bad !== undefined) return Effect.fail(bad)
      if (range instanceof InvalidArgument) return Effect.fail(range)
      return Effect.map(
        backend.scan(partition, Layout.VERSION_NAMESPACE, range, false, limit),
        (entries) => entries.map((entry) => Layout.versionTimestamp(entry.key))
      )
    },
    deleteVersionsBefore: (partition, namespace, key, timestamp, options) => {
      const bad = Validate.partition(partition) ?? Validate.nonNegativeInteger(timestamp, "timestamp")
      if (bad !== undefined) return Effect.fail(bad)
      if (timestamp === 0) return Effect.succeed(0)
      const range = versionRange(namespace, key, timestamp - 1)
      if (range instanceof InvalidArgument) return Effect.fail(range)
      return deleteChunks(backend, partition, Layout.VERSION_NAMESPACE, range, config.chunkSize, options?.epoch)
    },
    batch,
    commit,
    registerEpoch: (partition, epoch) => {
      const bad = Validate.partition(partition) ?? Validate.epoch(epoch)
      return bad !== undefined ? Effect.fail(bad) : backend.registerEpoch(partition, epoch)
    },
    epoch: (partition) => {
      const bad = Validate.partition(partition)
      return bad !== undefined ? Effect.fail(bad) : backend.epoch(partition)
    }
  }
  return service
})

/** Streams a backend range `chunkSize` entries per round trip, up to `total` entries. */
export const streamRange = (
  backend: StoreBackendShape,
  partition: string,
  namespace: string,
  range: KeyRange,
  reverse: boolean,
  chunkSize: number,
  total: number
): Stream.Stream<Entry, StoreClosed | StoreUnavailable> =>
  Stream.paginate({ range, remaining: total }, (state) => {
    const limit = Math.min(chunkSize, state.remaining)
    return Effect.map(backend.scan(partition, namespace, state.range, reverse, limit), (entries) => {
      const last = entries[entries.length - 1]
      const remaining = state.remaining - entries.length
      const more = entries.length === limit && remaining > 0 && last !== undefined
      return [
        entries,
        more ? Option.some({ range: continueAfter(state.range, last.key, reverse), remaining }) : Option.none()
      ] as const
    })
  })

/**
 * Deletes a range chunk by chunk: read up to `chunkSize` keys, delete them in one (fenced) batch,
 * repeat. Bounded per round so a huge range never blocks the backend in one call.
 */
const deleteChunks = (
  backend: StoreBackendShape,
  partition: string,
  namespace: string,
  range: KeyRange,
  chunkSize: number,
  epoch: number | undefined
): Effect.Effect<number, WriteError> => {
  const loop = (deleted: number): Effect.Effect<number, WriteError> =>
    Effect.flatMap(backend.scan(partition, namespace, range, false, chunkSize), (entries) => {
      if (entries.length === 0) return Effect.succeed(deleted)
      const ops: Array<WriteOp> = entries.map((entry) => ({ _tag: "Delete", namespace, key: entry.key }))
      return Effect.flatMap(backend.write([{ partition, epoch, ops }]), (outcomes) => {
        const outcome = outcomes[0]!
        if (outcome._tag === "Fenced") {
          return Effect.fail(new Fenced({ partition, epoch: epoch ?? 0, currentEpoch: outcome.currentEpoch }))
        }
        return entries.length < chunkSize ? Effect.succeed(deleted + entries.length) : loop(deleted + entries.length)
      })
    })
  return loop(0)
}

/** The key-value store over whatever `StoreBackend` is provided. */
export const layer: Layer.Layer<KeyValueStore, never, StoreBackend> = Layer.effect(KeyValueStore, make)
