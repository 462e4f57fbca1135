/**
 * Snapshot chunks: runs of members in (score, member) order packed into one record each, so a
 * million-member set is a few hundred records and loads without sorting. A chunk is
 *
 * ```
 * version u8 ‖ count u32 ‖ UTF-8 length u32 × count ‖ score f64 × count ‖ member bytes
 * ```
 *
 * (little-endian numbers). A chunk holds at most `CHUNK_MEMBERS_MAX` members and about
 * `CHUNK_BYTES_MAX` member bytes, so each record stays far below the store's value limit.
 */

/** Most members in one chunk. */
export const CHUNK_MEMBERS_MAX = 4096
/** Member bytes after which a chunk is closed (one member adds at most 64 KiB more). */
export const CHUNK_BYTES_MAX = 1024 * 1024

const VERSION = 1
const HEADER_BYTES = 5

const encoder = new TextEncoder()

/** Packs members and their scores (already in order) into one chunk. */
export const encodeChunk = (members: ReadonlyArray<string>, scores: ReadonlyArray<number>, lengths: ReadonlyArray<number>): Uint8Array => {
  const count = members.length
  let memberBytes = 0
  for (const length of lengths) memberBytes += length
  const out = new Uint8Array(HEADER_BYTES + count * 12 + memberBytes)
  const view = new DataView(out.buffer)
  out[0] = VERSION
  view.setUint32(1, count, true)
  let at = HEADER_BYTES
  for (let i = 0; i < count; i++, at += 4) view.setUint32(at, lengths[i]!, true)
  for (let i = 0; i < count; i++, at += 8) view.setFloat64(at, scores[i]!, true)
  // One encoder call for the whole run: the members are concatenated in the same order.
  const written = encoder.encodeInto(members.join(""), out.subarray(at)).written
  if (written !== memberBytes) throw new Error("encodeChunk: member lengths do not match their encoding")
  return out
}

/** Appends a chunk's members and scores to the columns; returns why it is corrupt, if it is. */
export const decodeChunk = (value: Uint8Array, members: Array<string>, scores: Array<number>): string | undefined => {
  if (value.length < HEADER_BYTES || value[0] !== VERSION) return "a chunk has an unknown format"
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  const count = view.getUint32(1, true)
  const lengthsAt = HEADER_BYTES
  const scoresAt = lengthsAt + count * 4
  let memberAt = scoresAt + count * 8
  if (memberAt > value.length) return "a chunk is shorter than its count"
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(lengthsAt + i * 4, true)
    const score = view.getFloat64(scoresAt + i * 8, true)
    if (length === 0 || memberAt + length > value.length || Number.isNaN(score)) return "a chunk holds a malformed member"
    members.push(bytes.toString("utf8", memberAt, memberAt + length))
    // −0 ties with 0 in Redis's order and is kept as 0 (see the engine).
    scores.push(score === 0 ? 0 : score)
    memberAt += length
  }
  return memberAt === value.length ? undefined : "a chunk has trailing bytes"
}
