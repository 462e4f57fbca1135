/**
 * The encoded interface a storage backend implements: partitions of namespaces of byte-ordered
 * keys, atomic (optionally fenced) batches per partition, and topic appends. Everything a
 * backend receives is already validated and encoded by `KeyValueStore` and `IndexedStore`, so a
 * backend only carries out primitives (the abstract-level split). It does not validate input,
 * decode values, or know about entities.
 */
import { Context, type Effect, type Stream } from "effect"
import type { BackendError } from "./StoreError.js"

/** What a backend can do, for users and for the conformance suite. */
export interface Capabilities {
  /** Data survives a restart of the process. */
  readonly persistent: boolean
  /** Several processes may use the same data at once (required by a multi-worker cluster). */
  readonly shared: boolean
}

/** A key range: at most one lower and one upper bound, all bytes. */
export interface KeyRange {
  readonly gte?: Uint8Array | undefined
  readonly gt?: Uint8Array | undefined
  readonly lte?: Uint8Array | undefined
  readonly lt?: Uint8Array | undefined
}

/** One key and its value. */
export interface Entry {
  readonly key: Uint8Array
  readonly value: Uint8Array
}

/** One write inside a partition batch. */
export type WriteOp =
  | { readonly _tag: "Put"; readonly namespace: string; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly _tag: "Delete"; readonly namespace: string; readonly key: Uint8Array }
  | { readonly _tag: "Append"; readonly topic: string; readonly values: ReadonlyArray<Uint8Array> }

/** The writes of one partition, applied all or none; fenced when `epoch` is set. */
export interface PartitionBatch {
  readonly partition: string
  readonly epoch: number | undefined
  readonly ops: ReadonlyArray<WriteOp>
}

/** What became of one partition batch. */
export type BatchOutcome =
  | {
    readonly _tag: "Committed"
    /** The first index given to each `Append` op, in op order. */
    readonly firstIndexes: ReadonlyArray<number>
  }
  | { readonly _tag: "Fenced"; readonly currentEpoch: number }

/** One stored record, as `export` streams it for dumps. */
export interface ExportRecord {
  readonly partition: string
  readonly namespace: string
  readonly key: Uint8Array
  readonly value: Uint8Array
}

/**
 * A storage backend. Each method is a primitive over clean input; `write` is the only way to
 * change data, and each `PartitionBatch` in it is atomic and checked against its fence on its own.
 */
export interface StoreBackendShape {
  /** A short name for errors and metrics: `memory`, `level`, `redis`. */
  readonly name: string
  /** The capability manifest. */
  readonly supports: Capabilities
  /** The value at a key, or `undefined`. */
  readonly get: (partition: string, namespace: string, key: Uint8Array) => Effect.Effect<Uint8Array | undefined, BackendError>
  /** The values at several keys, in the same order. */
  readonly getMany: (
    partition: string,
    namespace: string,
    keys: ReadonlyArray<Uint8Array>
  ) => Effect.Effect<ReadonlyArray<Uint8Array | undefined>, BackendError>
  /** Up to `limit` entries of a range in key order (descending when `reverse`). */
  readonly scan: (
    partition: string,
    namespace: string,
    range: KeyRange,
    reverse: boolean,
    limit: number
  ) => Effect.Effect<ReadonlyArray<Entry>, BackendError>
  /** Applies batches; each one atomically and fenced on its own, in the order given. */
  readonly write: (batches: ReadonlyArray<PartitionBatch>) => Effect.Effect<ReadonlyArray<BatchOutcome>, BackendError>
  /** Raises the registered epoch of a partition to `epoch` if it is higher; returns the registered one. */
  readonly registerEpoch: (partition: string, epoch: number) => Effect.Effect<number, BackendError>
  /** The registered epoch of a partition (0 when none). */
  readonly epoch: (partition: string) => Effect.Effect<number, BackendError>
  /** Every record of every partition (epochs excluded), for dumps; order unspecified across namespaces. */
  readonly export: Stream.Stream<ExportRecord, BackendError>
}

/** The backend service that `KeyValueStore` and `IndexedStore` are built on, and store layers wrap. */
export class StoreBackend extends Context.Service<StoreBackend, StoreBackendShape>()("shardfeed/StoreBackend") {}
