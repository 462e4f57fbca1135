/**
 * Input checks shared by the store services. Each returns the `InvalidArgument` naming the field,
 * or `undefined` when the input is fine, so hot paths check without throwing or allocating.
 */
import { InvalidArgument } from "../StoreError.js"
import type { StoreConfigShape } from "../StoreConfig.js"
import { isReserved } from "./layout.js"
import { utf8Length } from "./bytes.js"

const PARTITION = /^[A-Za-z0-9_.:-]{1,128}$/

const invalid = (field: string, message: string) => new InvalidArgument({ field, message })

/** Partitions are 1 to 128 characters of `[A-Za-z0-9_.:-]`, so they fit a Redis hash tag. */
export const partition = (value: string): InvalidArgument | undefined =>
  typeof value === "string" && PARTITION.test(value)
    ? undefined
    : invalid("partition", "must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'")

/** A namespace or topic name: non-empty, bounded, and not a reserved (U+0000-led) name. */
export const name = (field: "namespace" | "topic", value: string, config: StoreConfigShape): InvalidArgument | undefined => {
  if (typeof value !== "string" || value.length === 0) return invalid(field, "must not be empty")
  if (isReserved(value)) return invalid(field, "must not start with U+0000 (reserved)")
  if (utf8Length(value) > config.nameBytesMax) return invalid(field, `must be at most ${config.nameBytesMax} bytes`)
  return undefined
}

/** A key: at most `keyBytesMax` bytes (empty is allowed). */
export const key = (bytes: Uint8Array, config: StoreConfigShape, field = "key"): InvalidArgument | undefined =>
  bytes.length > config.keyBytesMax ? invalid(field, `must be at most ${config.keyBytesMax} bytes`) : undefined

/** A value: at most `valueBytesMax` bytes. */
export const value = (bytes: Uint8Array, config: StoreConfigShape, field = "value"): InvalidArgument | undefined =>
  bytes.length > config.valueBytesMax ? invalid(field, `must be at most ${config.valueBytesMax} bytes`) : undefined

/** A count limit between 1 and `max`. */
export const limit = (value: number, max: number, field = "limit"): InvalidArgument | undefined =>
  Number.isInteger(value) && value >= 1 && value <= max ? undefined : invalid(field, `must be an integer from 1 to ${max}`)

/** A fencing epoch: a non-negative safe integer. */
export const epoch = (value: number, field = "epoch"): InvalidArgument | undefined =>
  Number.isSafeInteger(value) && value >= 0 ? undefined : invalid(field, "must be a non-negative integer")

/** A version timestamp or topic index: a non-negative safe integer. */
export const nonNegativeInteger = (value: number, field: string): InvalidArgument | undefined =>
  Number.isSafeInteger(value) && value >= 0 ? undefined : invalid(field, "must be a non-negative integer")
