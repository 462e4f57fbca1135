/**
 * Store access of the engine: batched reads (`getMany` in pages, never with an empty key list)
 * and the ordered write list of one operation, handed to the view in one pass at its end, after
 * every read. Holding writes to the end means a failure while reading writes nothing, even
 * through a direct view; it does not make a direct view atomic (the entity runtime stages the
 * view and commits its ops as one batch for that).
 */
import { Effect } from "effect"
import type { ReadError, WriteError } from "../../../persistence/StoreError.js"
import type { StoreView } from "../../../persistence/StoreView.js"

/** Most keys per `getMany` round trip (well under the store's `scanLimitMax`). */
export const READ_PAGE = 1_000

/** The writes of one operation, in order; a later write of a key wins. */
export class Writes {
  private readonly list: Array<readonly [namespace: string, key: Uint8Array, value: Uint8Array | undefined]> = []

  get size(): number {
    return this.list.length
  }

  put(namespace: string, key: Uint8Array, value: Uint8Array): void {
    this.list.push([namespace, key, value])
  }

  delete(namespace: string, key: Uint8Array): void {
    this.list.push([namespace, key, undefined])
  }

  /** Hands every write to the view, in order. */
  flush(view: StoreView): Effect.Effect<void, WriteError> {
    return Effect.forEach(
      this.list,
      ([namespace, key, value]) => (value === undefined ? view.delete(namespace, key) : view.put(namespace, key, value)),
      { discard: true }
    )
  }
}

/** Reads keys, `READ_PAGE` keys per store round trip. */
export const readMany = (
  view: StoreView,
  namespace: string,
  keys: ReadonlyArray<Uint8Array>
): Effect.Effect<ReadonlyArray<Uint8Array | undefined>, ReadError> => {
  if (keys.length === 0) return Effect.succeed([])
  if (keys.length <= READ_PAGE) return view.getMany(namespace, keys)
  const pages: Array<ReadonlyArray<Uint8Array>> = []
  for (let at = 0; at < keys.length; at += READ_PAGE) pages.push(keys.slice(at, at + READ_PAGE))
  return Effect.map(Effect.forEach(pages, (page) => view.getMany(namespace, page)), (results) => results.flat())
}
