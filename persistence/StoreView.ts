/**
 * A view of one partition of the key-value store, the way an entity sees its data: reads and
 * writes by namespace and key, with the partition fixed. Two kinds:
 *
 * - `direct`: every write is its own store write (for tools, tests and single-shot programs);
 * - `staged`: writes are held in an in-memory overlay that reads see (read-your-writes, scans
 *   included) until `ops()` hands them to a batch — what the entity runtime commits, fenced and
 *   grouped with other entities' writes.
 *
 * Data structures (feeds, sorted sets, search indexes) are written against `StoreView`, so the
 * same code runs directly on a store and inside an entity's write set.
 */
import { Effect } from "effect"
import { fromLatin1, toBytes, toLatin1 } from "./internal/bytes.js"
import { SortedMap } from "./internal/sortedMap.js"
import * as Validate from "./internal/validate.js"
import type { BatchOp, Bytes, KeyValueStoreShape, ScanOptions } from "./KeyValueStore.js"
import { toRange } from "./KeyValueStore.js"
import type { Entry } from "./StoreBackend.js"
import { StoreConfig } from "./StoreConfig.js"
import { InvalidArgument, type ReadError, type WriteError } from "./StoreError.js"

/** Reads and writes of one partition. */
export interface StoreView {
  readonly partition: string
  readonly get: (namespace: string, key: Bytes) => Effect.Effect<Uint8Array | undefined, ReadError>
  readonly getMany: (namespace: string, keys: ReadonlyArray<Bytes>) => Effect.Effect<ReadonlyArray<Uint8Array | undefined>, ReadError>
  /** One bounded page of a range in key order, as `KeyValueStore.scan`. */
  readonly scan: (namespace: string, options?: ScanOptions) => Effect.Effect<ReadonlyArray<Entry>, ReadError>
  readonly put: (namespace: string, key: Bytes, value: Bytes) => Effect.Effect<void, WriteError>
  readonly delete: (namespace: string, key: Bytes) => Effect.Effect<void, WriteError>
}

/** A view whose every write goes straight to the store (unfenced unless `epoch` is given). */
export const direct = (store: KeyValueStoreShape, partition: string, epoch?: number): StoreView => ({
  partition,
  get: (namespace, key) => store.get(partition, namespace, key),
  getMany: (namespace, keys) => store.getMany(partition, namespace, keys),
  scan: (namespace, options) => store.scan(partition, namespace, options),
  put: (namespace, key, value) => store.put(partition, namespace, key, value, { epoch }),
  delete: (namespace, key) => store.delete(partition, namespace, key, { epoch })
})

/** A view that stages writes in memory; `ops()` returns them for one atomic batch. */
export interface StagedView extends StoreView {
  /** The staged writes as batch ops (last write per key), in no particular order. */
  readonly ops: () => ReadonlyArray<BatchOp>
  /** How many keys have staged writes. */
  readonly size: () => number
  /** Forgets every staged write (after they were committed, or to abandon them). */
  readonly clear: () => void
}

type Staged = { readonly value: Uint8Array } | { readonly deleted: true }

const DEFAULT_LIMIT = 1_000

/**
 * A staged view over `store`. At most `opsMax` keys may be staged (default: the store's
 * `batchOpsMax`), so one handler cannot build an unbounded batch; past it a write is refused with
 * `InvalidArgument` naming `ops`.
 */
export const staged = (store: KeyValueStoreShape, partition: string, opsMax?: number): Effect.Effect<StagedView> =>
  Effect.map(StoreConfig, (config) => {
    const limit = opsMax ?? config.batchOpsMax
    const overlay = new Map<string, SortedMap<Staged>>()
    let count = 0
    const namespaceOf = (namespace: string, create: boolean) => {
      let map = overlay.get(namespace)
      if (map === undefined && create) {
        map = new SortedMap()
        overlay.set(namespace, map)
      }
      return map
    }
    const stage = (namespace: string, key: Bytes, entry: Staged): Effect.Effect<void, WriteError> =>
      Effect.suspend(() => {
        const keyBytes = toBytes(key)
        // Checked now rather than at commit, so the handler that wrote it gets the error.
        const bad = Validate.name("namespace", namespace, config) ?? Validate.key(keyBytes, config) ??
          ("value" in entry ? Validate.value(entry.value, config) : undefined)
        if (bad !== undefined) return Effect.fail(bad)
        const map = namespaceOf(namespace, true)!
        const latin = toLatin1(keyBytes)
        if (map.get(latin) === undefined) {
          if (count >= limit) return Effect.fail(new InvalidArgument({ field: "ops", message: `a write set holds at most ${limit} keys` }))
          count++
        }
        map.set(latin, entry)
        return Effect.void
      })

    const scan = (namespace: string, options: ScanOptions = {}): Effect.Effect<ReadonlyArray<Entry>, ReadError> => {
      const map = namespaceOf(namespace, false)
      if (map === undefined || map.size === 0) return store.scan(partition, namespace, options)
      const range = toRange(options, config)
      if (range instanceof InvalidArgument) return Effect.fail(range)
      const reverse = options.reverse === true
      const wanted = options.limit ?? DEFAULT_LIMIT
      const latin = {
        gte: range.gte && toLatin1(range.gte),
        gt: range.gt && toLatin1(range.gt),
        lte: range.lte && toLatin1(range.lte),
        lt: range.lt && toLatin1(range.lt)
      }
      const staged = Array.from(map.range(latin, reverse, Number.MAX_SAFE_INTEGER))
      // Deleted keys may hide stored ones, so read enough stored entries to still fill the page.
      const deletions = staged.filter(([, entry]) => "deleted" in entry).length
      const storedLimit = Math.min(wanted + deletions, config.scanLimitMax)
      return Effect.map(store.scan(partition, namespace, { ...options, limit: storedLimit }), (stored) => {
        const merged = new Map<string, Uint8Array | undefined>()
        for (const entry of stored) merged.set(toLatin1(entry.key), entry.value)
        for (const [key, entry] of staged) merged.set(key, "deleted" in entry ? undefined : entry.value)
        const keys = [...merged.keys()].sort()
        if (reverse) keys.reverse()
        // A stored page that was cut short bounds how far the merged page is complete.
        const lastStored = stored.length === storedLimit ? toLatin1(stored[stored.length - 1]!.key) : undefined
        const out: Array<Entry> = []
        for (const key of keys) {
          if (out.length >= wanted) break
          if (lastStored !== undefined && (reverse ? key < lastStored : key > lastStored)) break
          const value = merged.get(key)
          if (value !== undefined) out.push({ key: fromLatin1(key), value })
        }
        return out
      })
    }

    const view: StagedView = {
      partition,
      get: (namespace, key) => {
        const entry = namespaceOf(namespace, false)?.get(toLatin1(toBytes(key)))
        if (entry === undefined) return store.get(partition, namespace, key)
        return Effect.succeed("deleted" in entry ? undefined : entry.value)
      },
      getMany: (namespace, keys) => {
        const map = namespaceOf(namespace, false)
        if (map === undefined) return store.getMany(partition, namespace, keys)
        const entries = keys.map((key) => map.get(toLatin1(toBytes(key))))
        const missing = keys.filter((_, i) => entries[i] === undefined)
        return Effect.map(missing.length === 0 ? Effect.succeed([]) : store.getMany(partition, namespace, missing), (values) => {
          let next = 0
          return entries.map((entry) => (entry === undefined ? values[next++] : "deleted" in entry ? undefined : entry.value))
        })
      },
      scan,
      put: (namespace, key, value) => stage(namespace, key, { value: toBytes(value) }),
      delete: (namespace, key) => stage(namespace, key, { deleted: true }),
      ops: () => {
        const out: Array<BatchOp> = []
        for (const [namespace, map] of overlay) {
          for (const [key, entry] of map.range({}, false, Number.MAX_SAFE_INTEGER)) {
            out.push("deleted" in entry
              ? { op: "delete", namespace, key: fromLatin1(key) }
              : { op: "put", namespace, key: fromLatin1(key), value: entry.value })
          }
        }
        return out
      },
      size: () => count,
      clear: () => {
        overlay.clear()
        count = 0
      }
    }
    return view
  })
