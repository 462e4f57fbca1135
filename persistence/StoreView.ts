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
import { fromLatin1, prefixSuccessor, toBytes, toLatin1 } from "./internal/bytes.js"
import type { LatinRange } from "./internal/sortedMap.js"
import * as Validate from "./internal/validate.js"
import type { BatchOp, Bytes, KeyValueStoreShape, ScanOptions } from "./KeyValueStore.js"
import { toRange } from "./KeyValueStore.js"
import type { Entry } from "./StoreBackend.js"
import { StoreConfig, type StoreConfigShape } from "./StoreConfig.js"
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
  /** The staged entries by namespace, with latin-1 keys. */
  readonly entries: () => ReadonlyMap<string, ReadonlyMap<string, Staged>>
  /** Forgets every staged write (after they were committed, or to abandon them). */
  readonly clear: () => void
}

const DEFAULT_LIMIT = 1_000

/**
 * A staged view over `store`. At most `opsMax` keys may be staged (default: the store's
 * `batchOpsMax`), so one handler cannot build an unbounded batch; past it a write is refused with
 * `InvalidArgument` naming `ops`.
 */
export const staged = (store: KeyValueStoreShape, partition: string, opsMax?: number): Effect.Effect<StagedView> =>
  stagedOver(direct(store, partition), opsMax)

/** An entry of an overlay: a staged value, or a staged deletion. */
export type Staged = { readonly value: Uint8Array } | { readonly deleted: true }

/**
 * Scans `base` with the overlay entries of a range laid over it: overlay values replace base
 * values, overlay deletions hide them. `overlay` yields latin-1 keys in scan order.
 */
export const mergeScan = (
  base: StoreView,
  namespace: string,
  options: ScanOptions,
  overlay: (range: LatinRange, reverse: boolean) => Iterable<readonly [string, Staged]>,
  config: StoreConfigShape
): Effect.Effect<ReadonlyArray<Entry>, ReadError> => {
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
  const staged = Array.from(overlay(latin, reverse))
  if (staged.length === 0) return base.scan(namespace, options)
  // Deleted keys may hide stored ones, so read enough stored entries to still fill the page.
  const deletions = staged.filter(([, entry]) => "deleted" in entry).length
  const storedLimit = Math.min(wanted + deletions, config.scanLimitMax)
  return Effect.map(base.scan(namespace, { ...options, limit: storedLimit }), (stored) => {
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

/** A staged view over any other view: reads see the staged writes first, then `base`. */
export const stagedOver = (base: StoreView, opsMax?: number): Effect.Effect<StagedView> =>
  Effect.map(StoreConfig, (config) => stagedWith(base, config, opsMax))

/** `stagedOver` with the store limits given, for callers that already hold them. */
export const stagedWith = (base: StoreView, config: StoreConfigShape, opsMax?: number): StagedView =>
  new Staging(base, config, opsMax ?? config.batchOpsMax)

/**
 * The staged view. Staged keys live in plain maps (latin-1 keys) and are sorted only when a scan
 * needs them: a handler usually stages a few keys and scans rarely, and this keeps a message's
 * write set to a couple of small allocations.
 */
class Staging implements StagedView {
  readonly partition: string
  private readonly overlay = new Map<string, Map<string, Staged>>()
  private count = 0

  constructor(private readonly base: StoreView, private readonly config: StoreConfigShape, private readonly limit: number) {
    this.partition = base.partition
  }

  get(namespace: string, key: Bytes): Effect.Effect<Uint8Array | undefined, ReadError> {
    const entry = this.overlay.get(namespace)?.get(toLatin1(toBytes(key)))
    if (entry === undefined) return this.base.get(namespace, key)
    return Effect.succeed("deleted" in entry ? undefined : entry.value)
  }

  getMany(namespace: string, keys: ReadonlyArray<Bytes>): Effect.Effect<ReadonlyArray<Uint8Array | undefined>, ReadError> {
    const map = this.overlay.get(namespace)
    if (map === undefined) return this.base.getMany(namespace, keys)
    const entries = keys.map((key) => map.get(toLatin1(toBytes(key))))
    const missing = keys.filter((_, i) => entries[i] === undefined)
    return Effect.map(missing.length === 0 ? Effect.succeed([]) : this.base.getMany(namespace, missing), (values) => {
      let next = 0
      return entries.map((entry) => (entry === undefined ? values[next++] : "deleted" in entry ? undefined : entry.value))
    })
  }

  scan(namespace: string, options: ScanOptions = {}): Effect.Effect<ReadonlyArray<Entry>, ReadError> {
    const map = this.overlay.get(namespace)
    if (map === undefined || map.size === 0) return this.base.scan(namespace, options)
    return mergeScan(this.base, namespace, options, (range, reverse) => sortedRange(map, range, reverse), this.config)
  }

  put(namespace: string, key: Bytes, value: Bytes): Effect.Effect<void, WriteError> {
    return this.stage(namespace, key, { value: toBytes(value) })
  }

  delete(namespace: string, key: Bytes): Effect.Effect<void, WriteError> {
    return this.stage(namespace, key, DELETED)
  }

  ops(): ReadonlyArray<BatchOp> {
    const out: Array<BatchOp> = []
    for (const [namespace, map] of this.overlay) {
      for (const [key, entry] of map) {
        out.push("deleted" in entry
          ? { op: "delete", namespace, key: fromLatin1(key) }
          : { op: "put", namespace, key: fromLatin1(key), value: entry.value })
      }
    }
    return out
  }

  /** The staged entries with their latin-1 keys, for owners that keep them in that form. */
  entries(): ReadonlyMap<string, ReadonlyMap<string, Staged>> {
    return this.overlay
  }

  size(): number {
    return this.count
  }

  clear(): void {
    this.overlay.clear()
    this.count = 0
  }

  private stage(namespace: string, key: Bytes, entry: Staged): Effect.Effect<void, WriteError> {
    const keyBytes = toBytes(key)
    // Checked now rather than at commit, so the handler that wrote it gets the error.
    const bad = Validate.name("namespace", namespace, this.config) ?? Validate.key(keyBytes, this.config) ??
      ("value" in entry ? Validate.value(entry.value, this.config) : undefined)
    if (bad !== undefined) return Effect.fail(bad)
    let map = this.overlay.get(namespace)
    if (map === undefined) {
      map = new Map()
      this.overlay.set(namespace, map)
    }
    const latin = toLatin1(keyBytes)
    if (!map.has(latin)) {
      if (this.count >= this.limit) {
        return Effect.fail(new InvalidArgument({ field: "ops", message: `a write set holds at most ${this.limit} keys` }))
      }
      this.count++
    }
    map.set(latin, entry)
    return Effect.void
  }
}

const DELETED: Staged = { deleted: true }

/** The entries of a map within a latin-1 range, sorted. */
const sortedRange = function*(map: ReadonlyMap<string, Staged>, range: LatinRange, reverse: boolean): Generator<readonly [string, Staged]> {
  const keys: Array<string> = []
  for (const key of map.keys()) {
    if (range.gte !== undefined && key < range.gte) continue
    if (range.gt !== undefined && key <= range.gt) continue
    if (range.lte !== undefined && key > range.lte) continue
    if (range.lt !== undefined && key >= range.lt) continue
    keys.push(key)
  }
  keys.sort()
  if (reverse) keys.reverse()
  for (const key of keys) yield [key, map.get(key)!] as const
}

/** How a scoped view confines its owner: a namespace prefix and a key prefix. */
export interface Scope {
  /** Prepended to every namespace (for example the entity type and a dot). */
  readonly namespacePrefix: string
  /** Prepended to every key (for example the entity id and a 0x00 byte); must be prefix-free. */
  readonly keyPrefix: Uint8Array
}

/**
 * A view confined to one owner's keys inside a shared partition: namespaces and keys are
 * prefixed on the way in and keys stripped on the way out, and scans never leave the owner's
 * key prefix. This is how each entity of a shard gets data structures of its own.
 */
export const scoped = (base: StoreView, scope: Scope): StoreView => new Scoped(base, scope)

const EMPTY_KEY = new Uint8Array(0)

class Scoped implements StoreView {
  readonly partition: string

  constructor(private readonly base: StoreView, private readonly scope: Scope) {
    this.partition = base.partition
  }

  get(namespace: string, key: Bytes): Effect.Effect<Uint8Array | undefined, ReadError> {
    return this.base.get(this.scope.namespacePrefix + namespace, this.inner(key))
  }

  getMany(namespace: string, keys: ReadonlyArray<Bytes>): Effect.Effect<ReadonlyArray<Uint8Array | undefined>, ReadError> {
    return this.base.getMany(this.scope.namespacePrefix + namespace, keys.map((key) => this.inner(key)))
  }

  scan(namespace: string, options: ScanOptions = {}): Effect.Effect<ReadonlyArray<Entry>, ReadError> {
    const length = this.scope.keyPrefix.length
    return Effect.map(
      this.base.scan(this.scope.namespacePrefix + namespace, this.translate(options)),
      (entries) => entries.map((entry) => ({ key: entry.key.subarray(length), value: entry.value }))
    )
  }

  put(namespace: string, key: Bytes, value: Bytes): Effect.Effect<void, WriteError> {
    return this.base.put(this.scope.namespacePrefix + namespace, this.inner(key), value)
  }

  delete(namespace: string, key: Bytes): Effect.Effect<void, WriteError> {
    return this.base.delete(this.scope.namespacePrefix + namespace, this.inner(key))
  }

  private inner(key: Bytes): Uint8Array {
    const bytes = toBytes(key)
    const prefix = this.scope.keyPrefix
    const out = new Uint8Array(prefix.length + bytes.length)
    out.set(prefix, 0)
    out.set(bytes, prefix.length)
    return out
  }

  private translate(options: ScanOptions): ScanOptions {
    const base = { reverse: options.reverse, limit: options.limit }
    const bound = (value: Bytes | undefined) => (value === undefined ? undefined : this.inner(value))
    if (options.prefix !== undefined) {
      // Bounds given with a prefix are passed on so that the store refuses the combination.
      return { ...base, prefix: bound(options.prefix), gte: bound(options.gte), gt: bound(options.gt), lte: bound(options.lte), lt: bound(options.lt) }
    }
    const lower = options.gt !== undefined ? { gt: bound(options.gt) } : { gte: this.inner(options.gte ?? EMPTY_KEY) }
    if (options.lt !== undefined) return { ...base, ...lower, lt: bound(options.lt) }
    if (options.lte !== undefined) return { ...base, ...lower, lte: bound(options.lte) }
    const end = prefixSuccessor(this.scope.keyPrefix)
    return end === undefined ? { ...base, ...lower } : { ...base, ...lower, lt: end }
  }
}
