/**
 * Cursors: opaque, reader-side positions (no server state). A cursor names the feed (by a hash
 * of its type and id), its generation, the direction and the offset of the last entry returned,
 * and carries a checksum, so an altered, truncated or foreign cursor (another feed's, of this
 * type or another) is refused rather than misread. The checksum is not a secret: a cursor made
 * by hand can only point into the feed it names, which its reader may page anyway.
 *
 *   cursor := base64url( u8 version=2 | u8 direction (0 forward, 1 backward) | u32 generation
 *                        | u64 offset | u32 murmur3(type 0x00 id) | u32 murmur3(preceding 18 bytes) )
 */
import { murmur3 } from "../../../actors/ShardId.js"
import { InvalidCursor } from "../FeedError.js"

/** A decoded cursor. */
export interface Cursor {
  readonly backward: boolean
  readonly generation: number
  /** The offset of the last entry returned; the next page starts after it. */
  readonly offset: number
}

const VERSION = 2
const SIZE = 22
const CHECK_SEED = 0x5eed
const encoder = new TextEncoder()

const feedHash = (type: string, feed: string) => murmur3(encoder.encode(`${type}\u0000${feed}`))

/** Encodes a cursor for feed `feed` of feed type `type`. */
export const encode = (type: string, feed: string, cursor: Cursor): string => {
  const bytes = new Uint8Array(SIZE)
  const view = new DataView(bytes.buffer)
  bytes[0] = VERSION
  bytes[1] = cursor.backward ? 1 : 0
  view.setUint32(2, cursor.generation)
  view.setUint32(6, Math.floor(cursor.offset / 0x1_0000_0000))
  view.setUint32(10, cursor.offset >>> 0)
  view.setUint32(14, feedHash(type, feed))
  view.setUint32(18, murmur3(bytes.subarray(0, 18), CHECK_SEED))
  return Buffer.from(bytes).toString("base64url")
}

const invalid = (message: string) => new InvalidCursor({ field: "cursor", message })

/** Decodes a cursor, checking that it is intact and belongs to feed `feed` of type `type`. */
export const decode = (type: string, feed: string, text: string): Cursor | InvalidCursor => {
  if (typeof text !== "string" || text.length === 0 || text.length > 64 || !/^[A-Za-z0-9_-]+$/.test(text)) return invalid("is not a cursor")
  const bytes = new Uint8Array(Buffer.from(text, "base64url"))
  if (bytes.length !== SIZE || bytes[0] !== VERSION) return invalid("is not a cursor of this version")
  const view = new DataView(bytes.buffer)
  if (view.getUint32(18) !== murmur3(bytes.subarray(0, 18), CHECK_SEED)) return invalid("was altered")
  if (view.getUint32(14) !== feedHash(type, feed)) return invalid("belongs to another feed")
  if (bytes[1]! > 1) return invalid("has an unknown direction")
  return { backward: bytes[1] === 1, generation: view.getUint32(2), offset: view.getUint32(6) * 0x1_0000_0000 + view.getUint32(10) }
}
