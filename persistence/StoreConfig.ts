/**
 * The bounds of the storage layer, one named field each, with defaults. Provide a different
 * `StoreConfig` to change them; `KeyValueStore` and `IndexedStore` read it when they are built.
 */
import { Context } from "effect"

/** Limits checked on every operation before a backend sees it. */
export interface StoreConfigShape {
  /**
   * Longest key, in bytes (default 4 KiB); longer keys are `InvalidArgument` (LevelDB and Redis
   * slow down past a few KiB). Entity keys are scoped by the entity's id (up to 512 bytes, as
   * HTTP names) and then hold a name of their own (a member, a document id, up to 512 more),
   * so the bound leaves room for both.
   */
  readonly keyBytesMax: number
  /** Largest value, in bytes (default 16 MiB); a value past it is `InvalidArgument`. */
  readonly valueBytesMax: number
  /** Longest namespace or topic name, in bytes. */
  readonly nameBytesMax: number
  /** Most entries one scan may return (default 100,000); a larger `limit` is `InvalidArgument`. */
  readonly scanLimitMax: number
  /** Most operations (counting each appended value) in one partition batch. */
  readonly batchOpsMax: number
  /** Entries read or deleted per round trip by chunked operations (streams, range deletes). */
  readonly chunkSize: number
}

/** The store limits, with their defaults when nothing is provided. */
export const StoreConfig: Context.Reference<StoreConfigShape> = Context.Reference<StoreConfigShape>("shardfeed/StoreConfig", {
  defaultValue: () => ({
    keyBytesMax: 4 * 1024,
    valueBytesMax: 16 * 1024 * 1024,
    nameBytesMax: 1024,
    scanLimitMax: 100_000,
    batchOpsMax: 100_000,
    chunkSize: 1_000
  })
})
