/**
 * The LevelDB backend (classic-level): the embedded default. One database per process; this
 * process holds LevelDB's exclusive lock, so the epochs it caches are exact and a fence check
 * needs no read from disk. All writes pass through one queue, so reading a topic's position and
 * appending to it is atomic, and every round of queued batches is one LevelDB write.
 *
 * Durability: with `sync: false` (default) a committed batch is in LevelDB's log and survives a
 * crash of the process, not of the machine; `sync: true` fsyncs every write and survives both.
 */
import { ClassicLevel } from "classic-level"
import { Effect, Layer, Option, type Scope, Stream } from "effect"
import { prefixSuccessor, readUint64, toBytes, uint64 } from "./internal/bytes.js"
import * as Layout from "./internal/layout.js"
import { layerStores } from "./IndexedStore.js"
import {
  type BatchOutcome,
  type ExportRecord,
  type KeyRange,
  type PartitionBatch,
  StoreBackend,
  type StoreBackendShape
} from "./StoreBackend.js"
import { type BackendError, StoreClosed, StoreLocked, StoreUnavailable } from "./StoreError.js"

/** Options of the LevelDB backend. */
export interface LevelStoreOptions {
  /** The database directory; created when missing. */
  readonly directory: string
  /** fsync every write (default false: survive a process crash, not a power loss). */
  readonly sync?: boolean | undefined
}

type Db = ClassicLevel<Uint8Array, Uint8Array>
/** The writes of one round, collected into a native chained batch as they are planned. */
type Writes = Pick<ReturnType<Db["batch"]>, "put" | "del">

const DATA = 0x01
const EPOCH = 0x00
const PREFIX_CACHE_MAX = 10_000
// Buffers rather than plain views: classic-level converts a view to a Buffer per key anyway, and
// Buffers are Uint8Arrays, so callers see the same type (measured: about 15% faster writes).
const VIEW = { keyEncoding: "buffer", valueEncoding: "buffer" } as const
const EMPTY = new Uint8Array(0)
const SCAN_HIGH_WATER_BYTES = 1024 * 1024

/** The key prefix of one (partition, namespace): tag, partition length and bytes, namespace length and bytes. */
const encodePrefix = (partition: string, namespace: string): Uint8Array => {
  const partitionBytes = toBytes(partition)
  const namespaceBytes = toBytes(namespace)
  const out = new Uint8Array(2 + partitionBytes.length + 2 + namespaceBytes.length)
  out[0] = DATA
  out[1] = partitionBytes.length
  out.set(partitionBytes, 2)
  const at = 2 + partitionBytes.length
  out[at] = namespaceBytes.length >>> 8
  out[at + 1] = namespaceBytes.length & 0xff
  out.set(namespaceBytes, at + 2)
  return out
}

const decodeRecord = (key: Uint8Array, value: Uint8Array): ExportRecord => {
  const partitionLength = key[1]!
  const partition = Buffer.from(key.subarray(2, 2 + partitionLength)).toString("utf8")
  const at = 2 + partitionLength
  const namespaceLength = (key[at]! << 8) | key[at + 1]!
  const namespace = Buffer.from(key.subarray(at + 2, at + 2 + namespaceLength)).toString("utf8")
  return { partition, namespace, key: key.subarray(at + 2 + namespaceLength), value }
}

const withPrefix = (prefix: Uint8Array, key: Uint8Array): Uint8Array => {
  const out = Buffer.allocUnsafe(prefix.length + key.length)
  out.set(prefix, 0)
  out.set(key, prefix.length)
  return out
}

const epochKey = (partition: string): Uint8Array => {
  const bytes = toBytes(partition)
  const out = new Uint8Array(1 + bytes.length)
  out[0] = EPOCH
  out.set(bytes, 1)
  return out
}

/** Translates a classic-level error: the one place where `LEVEL_*` codes are read. */
const translate = (directory: string) => (cause: unknown): BackendError => {
  const code = (cause as { code?: unknown } | undefined)?.code
  if (code === "LEVEL_DATABASE_NOT_OPEN" || code === "LEVEL_ITERATOR_NOT_OPEN") return new StoreClosed({ backend: "level" })
  return new StoreUnavailable({ backend: "level", message: `${directory}: ${String((cause as Error)?.message ?? cause)}` })
}

/** Opens the database, failing with `StoreLocked` when another process holds the directory. */
const open = (options: LevelStoreOptions): Effect.Effect<Db, StoreLocked | StoreUnavailable, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(options.directory, { ...VIEW, createIfMissing: true, errorIfExists: false })
        await db.open()
        return db
      },
      catch: (cause) => {
        const inner = (cause as { cause?: { code?: string } }).cause
        return inner?.code === "LEVEL_LOCKED"
          ? new StoreLocked({ directory: options.directory })
          : new StoreUnavailable({ backend: "level", message: `cannot open ${options.directory}: ${String(cause)}` })
      }
    }),
    (db) => Effect.promise(() => db.close())
  )

/** Builds a LevelDB backend; the database closes (after queued writes) when the scope closes. */
export const make = (options: LevelStoreOptions): Effect.Effect<StoreBackendShape, StoreLocked | StoreUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const db = yield* open(options)
    const onError = translate(options.directory)
    const writeOptions = { sync: options.sync === true }
    const prefixes = new Map<string, Uint8Array>()
    const epochs = new Map<string, number>()
    let closed = false
    // Every write runs after the previous one: the queue that makes fence checks and topic
    // positions atomic. Its length is bounded by the callers (each awaits its own write).
    let tail: Promise<unknown> = Promise.resolve()
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => {
        closed = true
        return tail.catch(() => undefined)
      })
    )

    const prefixOf = (partition: string, namespace: string): Uint8Array => {
      const id = partition + "\u0000" + namespace
      let prefix = prefixes.get(id)
      if (prefix === undefined) {
        if (prefixes.size >= PREFIX_CACHE_MAX) prefixes.clear()
        prefix = encodePrefix(partition, namespace)
        prefixes.set(id, prefix)
      }
      return prefix
    }

    const epochOf = (partition: string): number => {
      let epoch = epochs.get(partition)
      if (epoch === undefined) {
        const stored = db.getSync(epochKey(partition))
        epoch = stored === undefined ? 0 : readUint64(stored, 0)
        epochs.set(partition, epoch)
      }
      return epoch
    }

    const attempt = <A>(f: () => Promise<A> | A): Effect.Effect<A, BackendError> =>
      closed ? Effect.fail(new StoreClosed({ backend: "level" })) : Effect.tryPromise({ try: async () => f(), catch: onError })

    const enqueue = <A>(f: () => Promise<A>): Promise<A> => {
      const next = tail.then(f, f)
      tail = next.catch(() => undefined)
      return next
    }

    /** Plans one batch into LevelDB ops; positions of this round are tracked in `positions`. */
    const plan = (batch: PartitionBatch, out: Writes, positions: Map<string, number>): BatchOutcome => {
      const current = epochOf(batch.partition)
      if (batch.epoch !== undefined && batch.epoch < current) return { _tag: "Fenced", currentEpoch: current }
      const firstIndexes: Array<number> = []
      // Batches usually write one namespace many times: remember its prefix between ops.
      let lastNamespace = ""
      let lastPrefix: Uint8Array = EMPTY
      const namespacePrefix = (namespace: string) => {
        if (namespace !== lastNamespace || lastPrefix === EMPTY) {
          lastNamespace = namespace
          lastPrefix = prefixOf(batch.partition, namespace)
        }
        return lastPrefix
      }
      for (const op of batch.ops) {
        if (op._tag === "Put") out.put(withPrefix(namespacePrefix(op.namespace), op.key), op.value)
        else if (op._tag === "Delete") out.del(withPrefix(namespacePrefix(op.namespace), op.key))
        else {
          const positionKey = withPrefix(prefixOf(batch.partition, Layout.POSITION_NAMESPACE), Layout.positionKey(op.topic))
          const id = batch.partition + "\u0000" + op.topic
          const position = positions.get(id) ?? Layout.decodePosition(db.getSync(positionKey))
          const entryPrefix = withPrefix(prefixOf(batch.partition, Layout.TOPIC_NAMESPACE), Layout.topicPrefix(op.topic))
          op.values.forEach((value, i) => out.put(Layout.topicEntryKey(entryPrefix, position + 1 + i), value))
          positions.set(id, position + op.values.length)
          out.put(positionKey, Layout.encodePosition(position + op.values.length))
          firstIndexes.push(position + 1)
        }
      }
      if (batch.epoch !== undefined && batch.epoch > current) {
        out.put(epochKey(batch.partition), uint64(batch.epoch))
      }
      return { _tag: "Committed", firstIndexes }
    }

    const write = (batches: ReadonlyArray<PartitionBatch>) =>
      attempt(() =>
        enqueue(async () => {
          // A chained batch goes to LevelDB's native batch op by op, without the per-op
          // object copies of the array form (measured: about 1.6x the throughput).
          const chained = db.batch()
          const positions = new Map<string, number>()
          const outcomes = batches.map((batch) => plan(batch, chained, positions))
          // Planning never mutates shared state before the write succeeds: a failed write leaves
          // the epoch cache as it was.
          if (chained.length > 0) await chained.write(writeOptions)
          else await chained.close()
          batches.forEach((batch, i) => {
            if (outcomes[i]!._tag === "Committed" && batch.epoch !== undefined && batch.epoch > epochOf(batch.partition)) {
              epochs.set(batch.partition, batch.epoch)
            }
          })
          return outcomes
        })
      )

    const scan = (partition: string, namespace: string, range: KeyRange, reverse: boolean, limit: number) =>
      attempt(async () => {
        const prefix = prefixOf(partition, namespace)
        const bound = (key: Uint8Array) => withPrefix(prefix, key)
        const iterator = db.iterator({
          ...VIEW,
          ...(range.gt !== undefined ? { gt: bound(range.gt) } : { gte: bound(range.gte ?? EMPTY) }),
          ...(range.lt !== undefined
            ? { lt: bound(range.lt) }
            : range.lte !== undefined
            ? { lte: bound(range.lte) }
            : { lt: prefixSuccessor(prefix)! }),
          reverse,
          limit,
          // Large scans cross to LevelDB's thread far fewer times with 1 MiB per crossing than with
          // the 16 KiB default (690 crossings for 100,000 entries of 100 bytes).
          highWaterMarkBytes: SCAN_HIGH_WATER_BYTES
        })
        try {
          const out: Array<{ key: Uint8Array; value: Uint8Array }> = []
          while (out.length < limit) {
            const entries = await iterator.nextv(limit - out.length)
            if (entries.length === 0) break
            for (const [key, value] of entries) out.push({ key: key.subarray(prefix.length), value })
          }
          return out
        } finally {
          await iterator.close()
        }
      })

    // One iterator for the whole export: LevelDB gives it an implicit snapshot, so a dump taken
    // while writes go on is still one consistent point in time.
    const EXPORT_PAGE = 1_000
    const exportAll: Stream.Stream<ExportRecord, BackendError> = Stream.unwrap(Effect.map(
      attempt(() => db.iterator({ ...VIEW, gte: new Uint8Array([DATA]), lt: new Uint8Array([DATA + 1]) })),
      (iterator) =>
        Stream.paginate(undefined, () =>
          Effect.map(attempt(() => iterator.nextv(EXPORT_PAGE)), (entries) => [
            entries.map(([key, value]) => decodeRecord(key, value)),
            entries.length === 0 ? Option.none<undefined>() : Option.some(undefined)
          ] as const)).pipe(Stream.ensuring(Effect.promise(() => iterator.close())))
    ))

    const backend: StoreBackendShape = {
      name: "level",
      supports: { persistent: true, shared: false },
      get: (partition, namespace, key) => attempt(() => db.getSync(withPrefix(prefixOf(partition, namespace), key))),
      getMany: (partition, namespace, keys) => {
        const prefix = prefixOf(partition, namespace)
        return attempt(() => db.getMany(keys.map((key) => withPrefix(prefix, key))))
      },
      scan,
      write,
      registerEpoch: (partition, epoch) =>
        attempt(() =>
          enqueue(async () => {
            const current = epochOf(partition)
            if (epoch <= current) return current
            await db.put(epochKey(partition), uint64(epoch), writeOptions)
            epochs.set(partition, epoch)
            return epoch
          })
        ),
      epoch: (partition) => attempt(() => epochOf(partition)),
      export: exportAll
    }
    return backend
  })

/** The LevelDB backend as a `StoreBackend` layer. */
export const layerBackend = (options: LevelStoreOptions): Layer.Layer<StoreBackend, StoreLocked | StoreUnavailable> =>
  Layer.effect(StoreBackend, make(options))

/** LevelDB-backed `KeyValueStore` and `IndexedStore` (and the backend, for store layers). */
export const layer = (options: LevelStoreOptions) => layerStores(layerBackend(options))
