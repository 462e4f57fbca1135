/**
 * Postings chunks: one term's postings for a run of doc numbers, as two records under the same
 * key. The chunk record is read by every query; the positions record only by phrase queries.
 *
 *   chunk:     varint count, varint (last - first), then per posting:
 *              varint doc delta (from `first`, then from the previous doc), varint tf,
 *              varint field length (so scoring needs no other read)
 *   positions: per posting in the same order, tf varints: the first position, then deltas
 *
 * Positions are delta-encoded from 0 (the first is absolute). Appending to a chunk copies its
 * bytes and re-encodes only the header. Removing postings decodes and re-encodes the chunk;
 * that is the rare path (replacements and deletes).
 */
import { ByteReader, ByteWriter, putParts, putVarint, varintSize } from "./codec.js"

/** Most postings per chunk: a chunk is rewritten whole on append, so it stays small. */
export const CHUNK_POSTINGS_MAX = 128
/** A chunk closes early once its positions reach this size (a few very long documents). */
export const CHUNK_POSITIONS_BYTES_MAX = 32 * 1024

/** A chunk record from its header values and body parts, in one allocation. */
export const chunkRecord = (count: number, lastDelta: number, body: ReadonlyArray<Uint8Array>): Uint8Array => {
  let size = varintSize(count) + varintSize(lastDelta)
  for (const part of body) size += part.length
  const out = new Uint8Array(size)
  putParts(out, putVarint(out, putVarint(out, 0, count), lastDelta), body)
  return out
}

/** The decoded postings of a chunk. */
export interface ChunkPostings {
  readonly docs: Float64Array
  readonly tfs: Uint32Array
  readonly lengths: Uint32Array
}

/** The header of a chunk record. */
export interface ChunkHeader {
  readonly count: number
  readonly last: number
  readonly bodyOffset: number
}

/** Reads a chunk's header; `first` is its key's doc number. */
export const readHeader = (first: number, bytes: Uint8Array): ChunkHeader => {
  const reader = new ByteReader(bytes)
  const count = reader.uint()
  const last = first + reader.uint()
  return { count, last, bodyOffset: reader.offset }
}

/** Decodes a chunk's postings. */
export const decodeChunk = (first: number, bytes: Uint8Array): ChunkPostings => {
  const header = readHeader(first, bytes)
  const reader = new ByteReader(bytes, header.bodyOffset)
  const docs = new Float64Array(header.count)
  const tfs = new Uint32Array(header.count)
  const lengths = new Uint32Array(header.count)
  let doc = first
  for (let i = 0; i < header.count; i++) {
    doc += reader.uint()
    docs[i] = doc
    tfs[i] = reader.uint()
    lengths[i] = reader.uint()
  }
  return { docs, tfs, lengths }
}

/** Decoded positions: posting `i` has `values[offsets[i] .. offsets[i + 1])`, ascending. */
export interface ChunkPositions {
  readonly offsets: Uint32Array
  readonly values: Uint32Array
}

/** Decodes a positions record given the chunk's term frequencies. */
export const decodePositions = (bytes: Uint8Array, tfs: Uint32Array): ChunkPositions => {
  const offsets = new Uint32Array(tfs.length + 1)
  let total = 0
  for (let i = 0; i < tfs.length; i++) {
    offsets[i] = total
    total += tfs[i]!
  }
  offsets[tfs.length] = total
  const values = new Uint32Array(total)
  const reader = new ByteReader(bytes)
  let at = 0
  for (let i = 0; i < tfs.length; i++) {
    let position = 0
    for (let j = 0; j < tfs[i]!; j++) {
      position += reader.uint()
      values[at++] = position
    }
  }
  return { offsets, values }
}

/** Builds one chunk (and its positions) by appending postings in doc order (the removal path). */
export class ChunkBuilder {
  private readonly body = new ByteWriter(256)
  private readonly positions: ByteWriter | undefined
  count = 0
  last: number

  constructor(readonly first: number, withPositions: boolean) {
    this.positions = withPositions ? new ByteWriter(256) : undefined
    this.last = first
  }

  /** Appends a posting; `doc` must be above every doc already in the chunk. */
  add(doc: number, tf: number, length: number, positions: ArrayLike<number> | undefined): void {
    if (doc < this.first || (this.count > 0 && doc <= this.last)) throw new Error(`postings out of order: ${doc} after ${this.last}`)
    this.body.uint(doc - (this.count === 0 ? this.first : this.last)).uint(tf).uint(length)
    if (this.positions !== undefined) {
      let previous = 0
      for (let j = 0; j < tf; j++) {
        const position = positions?.[j] ?? 0
        this.positions.uint(position - previous)
        previous = position
      }
    }
    this.count++
    this.last = doc
  }

  /** The chunk record. */
  chunk(): Uint8Array {
    return chunkRecord(this.count, this.last - this.first, [this.body.view()])
  }

  /** The positions record, when the field has positions. */
  positionsRecord(): Uint8Array | undefined {
    return this.positions?.finish()
  }
}

/**
 * Rebuilds a chunk without the postings of `removed` doc numbers. Returns the new builder
 * (possibly empty) and how many postings went away.
 */
export const withoutDocs = (
  first: number,
  chunk: Uint8Array,
  positions: Uint8Array | undefined,
  removed: ReadonlySet<number>
): { readonly builder: ChunkBuilder; readonly removedCount: number } => {
  const postings = decodeChunk(first, chunk)
  const decoded = positions === undefined ? undefined : decodePositions(positions, postings.tfs)
  const builder = new ChunkBuilder(first, positions !== undefined)
  let removedCount = 0
  for (let i = 0; i < postings.docs.length; i++) {
    const doc = postings.docs[i]!
    if (removed.has(doc)) {
      removedCount++
      continue
    }
    const list = decoded === undefined ? undefined : decoded.values.subarray(decoded.offsets[i]!, decoded.offsets[i + 1]!)
    builder.add(doc, postings.tfs[i]!, postings.lengths[i]!, list)
  }
  return { builder, removedCount }
}
