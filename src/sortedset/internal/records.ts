/**
 * The on-disk form of a sorted set, all records in the set's namespace:
 *
 * ```
 * 0x00                                  manifest: version 1, generation u32, chunk count u32, card u64
 * 0x01 ‖ generation ‖ 0x01 ‖ member     delta of a member of at most INLINE_MEMBER_BYTES_MAX bytes
 * 0x01 ‖ generation ‖ 0x02 ‖ SHA-256    delta of a longer member (up to 64 KiB: past the key limit)
 * 0x03 ‖ generation ‖ index             snapshot chunk, see `chunks.ts`
 * ```
 *
 * Numbers are big-endian; generations and indexes are u32. A delta value is `kind u8 (1 scored,
 * 0 removed) ‖ [score f64] ‖ [member bytes, hashed keys only]`. A delta overrides the snapshot of
 * its generation. Deltas live under their generation so that a load reads exactly the current
 * generation's range and never walks over the deleted deltas of earlier ones (LevelDB keeps
 * their tombstones until it compacts).
 *
 * The inline threshold is part of the format, not a setting: a member must always map to the
 * same key. This module encodes and decodes; it does not read or write the store.
 */
import { createHash } from "node:crypto"

/** Longest member kept in its key (bytes); far below the store's default 1,024-byte key limit. */
export const INLINE_MEMBER_BYTES_MAX = 512

const MANIFEST = 0x00
const DELTA = 0x01
const CHUNK = 0x03
const INLINE = 0x01
const HASHED = 0x02
const FORMAT_VERSION = 1
const SCORED = 1
const REMOVED = 0
/** Tag, generation, kind. */
const DELTA_KEY_PREFIX_BYTES = 6
const SCORE_BYTES = 8

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8")

/** The key of the manifest. */
export const MANIFEST_KEY: Uint8Array = new Uint8Array([MANIFEST])
/** Chunk keys lie in [CHUNKS_START, CHUNKS_END). */
export const CHUNKS_START: Uint8Array = new Uint8Array([CHUNK])
/** The first key after every chunk key. */
export const CHUNKS_END: Uint8Array = new Uint8Array([CHUNK + 1])

/** Which snapshot is current and what it holds. */
export interface Manifest {
  readonly generation: number
  readonly chunkCount: number
  readonly card: number
}

/** An empty set's manifest (no record is stored for it). */
export const EMPTY_MANIFEST: Manifest = { generation: 0, chunkCount: 0, card: 0 }

/** The manifest's record value. */
export const encodeManifest = (manifest: Manifest): Uint8Array => {
  const out = new Uint8Array(17)
  const view = new DataView(out.buffer)
  out[0] = FORMAT_VERSION
  view.setUint32(1, manifest.generation)
  view.setUint32(5, manifest.chunkCount)
  view.setUint32(9, Math.floor(manifest.card / 0x1_0000_0000))
  view.setUint32(13, manifest.card >>> 0)
  return out
}

/** Decodes a manifest, or says why it is corrupt. */
export const decodeManifest = (value: Uint8Array): Manifest | string => {
  if (value.length !== 17 || value[0] !== FORMAT_VERSION) return "the manifest has an unknown format"
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  return {
    generation: view.getUint32(1),
    chunkCount: view.getUint32(5),
    card: view.getUint32(9) * 0x1_0000_0000 + view.getUint32(13)
  }
}

/** The key of one snapshot chunk. */
export const chunkKey = (generation: number, index: number): Uint8Array => {
  const out = new Uint8Array(9)
  const view = new DataView(out.buffer)
  out[0] = CHUNK
  view.setUint32(1, generation)
  view.setUint32(5, index)
  return out
}

/** The generation and index of a chunk key, or undefined when it is not one. */
export const parseChunkKey = (key: Uint8Array): { readonly generation: number; readonly index: number } | undefined => {
  if (key.length !== 9 || key[0] !== CHUNK) return undefined
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength)
  return { generation: view.getUint32(1), index: view.getUint32(5) }
}

/** The range of the delta keys of one generation. */
export const deltaRange = (generation: number): { readonly gte: Uint8Array; readonly lt: Uint8Array } => {
  const start = new Uint8Array(5)
  start[0] = DELTA
  writeUint32(start, 1, generation)
  const end = new Uint8Array(5)
  end[0] = DELTA
  // The generation after the last one is the next tag: 0x02, which no key uses.
  if (generation === 0xffff_ffff) end[0] = DELTA + 1
  else writeUint32(end, 1, generation + 1)
  return { gte: start, lt: end }
}

const writeUint32 = (target: Uint8Array, at: number, value: number): void => {
  target[at] = value >>> 24
  target[at + 1] = (value >>> 16) & 0xff
  target[at + 2] = (value >>> 8) & 0xff
  target[at + 3] = value & 0xff
}

/** A member's delta key, with its bytes when the key cannot hold them. */
export interface DeltaKey {
  readonly key: Uint8Array
  readonly hashedBytes: Uint8Array | undefined
}

/** The delta key of a member in `generation`. */
export const deltaKey = (member: string, generation: number): DeltaKey => {
  const length = Buffer.byteLength(member, "utf8")
  const inline = length <= INLINE_MEMBER_BYTES_MAX
  const bytes = inline ? undefined : encoder.encode(member)
  const key = new Uint8Array(DELTA_KEY_PREFIX_BYTES + (inline ? length : 32))
  key[0] = DELTA
  writeUint32(key, 1, generation)
  key[5] = inline ? INLINE : HASHED
  if (bytes === undefined) encoder.encodeInto(member, key.subarray(DELTA_KEY_PREFIX_BYTES))
  else key.set(createHash("sha256").update(bytes).digest(), DELTA_KEY_PREFIX_BYTES)
  return { key, hashedBytes: bytes }
}

// A scratch double and its bytes: converts scores without allocating a DataView per delta.
const scratch = new Float64Array(1)
const scratchBytes = new Uint8Array(scratch.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** A delta value: the member's score, or its removal when `score` is undefined. */
export const encodeDelta = (key: DeltaKey, score: number | undefined): Uint8Array => {
  const extra = key.hashedBytes
  const scoreBytes = score === undefined ? 0 : SCORE_BYTES
  const out = new Uint8Array(1 + scoreBytes + (extra === undefined ? 0 : extra.length))
  out[0] = score === undefined ? REMOVED : SCORED
  if (score !== undefined) {
    scratch[0] = score
    for (let i = 0; i < SCORE_BYTES; i++) out[1 + i] = scratchBytes[littleEndian ? SCORE_BYTES - 1 - i : i]!
  }
  if (extra !== undefined) out.set(extra, 1 + scoreBytes)
  return out
}

/** A decoded delta: the member and its score (undefined: removed). */
export interface Delta {
  readonly member: string
  readonly score: number | undefined
}

/** Reads a big-endian double. */
const readScore = (bytes: Uint8Array, at: number): number => {
  for (let i = 0; i < SCORE_BYTES; i++) scratchBytes[littleEndian ? SCORE_BYTES - 1 - i : i] = bytes[at + i]!
  return scratch[0]!
}

/** Decodes a delta record of the range of one generation, or says why it is corrupt. */
export const decodeDelta = (key: Uint8Array, value: Uint8Array): Delta | string => {
  const kind = value[0]
  if (value.length < 1 || (kind !== SCORED && kind !== REMOVED)) return "a delta has an unknown form"
  const scoreBytes = kind === SCORED ? SCORE_BYTES : 0
  if (value.length < 1 + scoreBytes) return "a delta is too short"
  const score = kind === SCORED ? readScore(value, 1) : undefined
  if (score !== undefined && Number.isNaN(score)) return "a delta's score is NaN"
  let memberBytes: Uint8Array
  if (key[5] === INLINE) {
    if (value.length !== 1 + scoreBytes) return "an inline delta has the wrong size"
    memberBytes = key.subarray(DELTA_KEY_PREFIX_BYTES)
  } else if (key[5] === HASHED && key.length === DELTA_KEY_PREFIX_BYTES + 32) {
    memberBytes = value.subarray(1 + scoreBytes)
    if (memberBytes.length <= INLINE_MEMBER_BYTES_MAX) return "a hashed delta's member is too short"
  } else {
    return "a delta key has an unknown form"
  }
  if (memberBytes.length === 0) return "a delta's member is empty"
  return { member: decoder.decode(memberBytes), score: score === 0 ? 0 : score }
}
