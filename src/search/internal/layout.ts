/**
 * Where one search partition keeps its data inside a `StoreView`: every namespace and key is
 * built here, with the encoding of every record but the postings chunks (`postings.ts`).
 *
 * Namespaces (under a base, default `search`, so several indexes share a store partition):
 *
 *   <base>/meta       "state" → JSON: fingerprint, docs, next doc number, write stamp, lexicon
 *                     version, terms, per text field { docs, length }
 *   <base>/docs       id (UTF-8) → doc number (8 bytes BE) + the document as written (JSON)
 *   <base>/forward    doc number (8 bytes BE) → the id, text field lengths, numeric values, and
 *                     every (field, term) with the key of the chunk holding its posting
 *   <base>/terms      field byte + term (UTF-8) → df, stamp, sealed chunk count, and the
 *                     term's tail chunk with its positions inline (appends rewrite only this)
 *   <base>/lexicon    field byte + term → empty: the term list that prefix and fuzzy words
 *                     walk; written only when a term appears or disappears
 *   <base>/postings   field byte + term + 0x00 + first doc number (8 bytes BE) → sealed chunk
 *   <base>/positions  same key → the positions of that chunk's postings
 *   <base>/numeric    field byte + block number (8 bytes BE) → 128 slots of (present, float64)
 *   <base>/thin       field byte + term → empty, or the doc number (8 bytes BE) to resume from:
 *                     terms with a sealed chunk thinned out by removals, for `mergeChunks`
 *
 * Doc numbers are internal, start at 1 and are never reused, so postings are sorted by them and
 * delta-encoded. A term's postings are its sealed chunks in key order, then its tail. A chunk
 * keeps the key of its first doc number from the tail into sealing, so the forward record's
 * chunk reference stays valid. The 0x00 after a term keeps one term's chunks apart from a
 * longer term's (terms never contain U+0000: text tokens are letters and digits, keyword values
 * are checked).
 */
import { ByteReader, ByteWriter, concat, putParts, putVarint, readUint64, utf8, varintSize, writeUint64 } from "./codec.js"

/** The namespaces of one partition's index. */
export interface Namespaces {
  readonly meta: string
  readonly docs: string
  readonly forward: string
  readonly terms: string
  readonly lexicon: string
  readonly postings: string
  readonly positions: string
  readonly numeric: string
  readonly thin: string
}

/** The namespaces under `base`. */
export const namespaces = (base: string): Namespaces => ({
  meta: `${base}/meta`,
  docs: `${base}/docs`,
  forward: `${base}/forward`,
  terms: `${base}/terms`,
  lexicon: `${base}/lexicon`,
  postings: `${base}/postings`,
  positions: `${base}/positions`,
  numeric: `${base}/numeric`,
  thin: `${base}/thin`
})

/** The key of the meta record. */
export const META_KEY = "state"

/** Slots per numeric block: 128 values of 8 bytes plus a 16-byte presence bitmap ≈ 1 KiB. */
export const NUMERIC_BLOCK_SLOTS = 128
const NUMERIC_BITMAP_BYTES = NUMERIC_BLOCK_SLOTS / 8

/** 8-byte big-endian key of a number (doc numbers, chunk keys, block numbers). */
export const numberKey = (value: number): Uint8Array => {
  const out = new Uint8Array(8)
  writeUint64(out, 0, value)
  return out
}

/** The number stored by `numberKey`. */
export const decodeNumber = (bytes: Uint8Array): number => readUint64(bytes, 0)

/**
 * A term's identity inside the engine: the field byte as the first character, then the term.
 * Used as a map key; its UTF-8 encoding is the dictionary key (field indexes are below 0x80).
 */
export const termId = (fieldIndex: number, term: string): string => String.fromCharCode(fieldIndex) + term

/** The field index of a term id. */
export const termIdField = (id: string): number => id.charCodeAt(0)

/** The term of a term id. */
export const termIdText = (id: string): string => id.slice(1)

/** The dictionary key of a term id. */
export const termKey = (id: string): Uint8Array => utf8(id)

/** The prefix shared by every chunk key of a term. */
export const chunkPrefix = (id: string): Uint8Array => concat([utf8(id), new Uint8Array([0])])

/** The key of the chunk of `id` whose first doc number is `first`. */
export const chunkKey = (id: string, first: number): Uint8Array => concat([utf8(id), new Uint8Array([0]), numberKey(first)])

/** The first doc number of a chunk key. */
export const chunkKeyFirst = (key: Uint8Array): number => readUint64(key, key.length - 8)

/** The key of a numeric block. */
export const numericKey = (fieldIndex: number, block: number): Uint8Array => concat([new Uint8Array([fieldIndex]), numberKey(block)])

// ---------------------------------------------------------------------------------------------
// Meta

/** Per text field statistics of a partition. */
export interface FieldTotals {
  docs: number
  length: number
}

/** The partition's state record. */
export interface Meta {
  readonly fingerprint: string
  docs: number
  nextDoc: number
  /** Bumped by every write; a term's entry records the stamp of its last change. */
  stamp: number
  /** Bumped by every write that adds or removes terms: the version of the lexicon. */
  lexicon: number
  terms: number
  fields: Record<string, FieldTotals>
}

/** A fresh partition's state. */
export const emptyMeta = (fingerprint: string): Meta => ({ fingerprint, docs: 0, nextDoc: 1, stamp: 0, lexicon: 0, terms: 0, fields: {} })

/** The meta record's bytes (JSON: small, read once per operation). */
export const encodeMeta = (meta: Meta): Uint8Array => utf8(JSON.stringify(meta))

/** Reads a meta record. */
export const decodeMeta = (bytes: Uint8Array): Meta => JSON.parse(Buffer.from(bytes).toString("utf8")) as Meta

// ---------------------------------------------------------------------------------------------
// Dictionary entries

/**
 * A dictionary entry. `tailFirst` is the key (first doc number) of the tail chunk, 0 when the
 * tail is empty; `tail` and `tailPositions` are its chunk and positions records.
 */
export interface TermEntry {
  df: number
  stamp: number
  /** How many sealed chunks the term has in `postings`. */
  chunks: number
  tailFirst: number
  tail: Uint8Array | undefined
  tailPositions: Uint8Array | undefined
}

const EMPTY = new Uint8Array(0)

/** A new term's entry. */
export const emptyEntry = (stamp: number): TermEntry => ({ df: 0, stamp, chunks: 0, tailFirst: 0, tail: undefined, tailPositions: undefined })

/** A dictionary entry's bytes: four varints, then the tail chunk and its positions as byte strings. */
export const encodeEntry = (entry: TermEntry): Uint8Array =>
  new ByteWriter(32 + (entry.tail?.length ?? 0) + (entry.tailPositions?.length ?? 0))
    .uint(entry.df).uint(entry.stamp).uint(entry.chunks).uint(entry.tailFirst)
    .blob(entry.tail ?? EMPTY).blob(entry.tailPositions ?? EMPTY)
    .finish()

/**
 * Encodes an entry whose tail chunk is given as header values and body parts, and its
 * positions as parts (a continued chunk): one allocation, one copy of the old tail.
 */
export const encodeEntryParts = (
  entry: Pick<TermEntry, "df" | "stamp" | "chunks" | "tailFirst">,
  tailCount: number,
  tailLastDelta: number,
  body: ReadonlyArray<Uint8Array>,
  positions: ReadonlyArray<Uint8Array>
): Uint8Array => {
  let bodySize = varintSize(tailCount) + varintSize(tailLastDelta)
  for (const part of body) bodySize += part.length
  let positionsSize = 0
  for (const part of positions) positionsSize += part.length
  const size = varintSize(entry.df) + varintSize(entry.stamp) + varintSize(entry.chunks) + varintSize(entry.tailFirst) +
    varintSize(bodySize) + bodySize + varintSize(positionsSize) + positionsSize
  const out = new Uint8Array(size)
  let at = putVarint(out, 0, entry.df)
  at = putVarint(out, at, entry.stamp)
  at = putVarint(out, at, entry.chunks)
  at = putVarint(out, at, entry.tailFirst)
  at = putVarint(out, at, bodySize)
  at = putVarint(out, at, tailCount)
  at = putVarint(out, at, tailLastDelta)
  at = putParts(out, at, body)
  at = putVarint(out, at, positionsSize)
  putParts(out, at, positions)
  return out
}

/** Decodes an entry; the tail records are views into `bytes`. */
export const decodeEntry = (bytes: Uint8Array): TermEntry => {
  const reader = new ByteReader(bytes)
  const df = reader.uint()
  const stamp = reader.uint()
  const chunks = reader.uint()
  const tailFirst = reader.uint()
  const tail = reader.blob()
  const tailPositions = reader.blob()
  return {
    df,
    stamp,
    chunks,
    tailFirst,
    tail: tail.length === 0 ? undefined : tail,
    tailPositions: tailPositions.length === 0 ? undefined : tailPositions
  }
}

/** The document frequency of an entry, without decoding the rest. */
export const entryDf = (bytes: Uint8Array): number => new ByteReader(bytes).uint()

// ---------------------------------------------------------------------------------------------
// Document records

/** The `docs` record: the doc number, then the document's JSON. */
export const encodeDocument = (doc: number, json: string): Uint8Array => concat([numberKey(doc), utf8(json)])

/** The doc number of a `docs` record. */
export const documentNumber = (bytes: Uint8Array): number => readUint64(bytes, 0)

/** The JSON of a `docs` record. */
export const documentJson = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset + 8, bytes.byteLength - 8).toString("utf8")

// ---------------------------------------------------------------------------------------------
// Forward records

/** What removing a document needs to know, and its id (read for hits). */
export interface Forward {
  readonly id: string
  /** Text field index → length (only fields with at least one token). */
  readonly lengths: ReadonlyArray<readonly [number, number]>
  /** Numeric field index → value. */
  readonly numbers: ReadonlyArray<readonly [number, number]>
  /** Term key (`termKey` of the term id) → first doc number of the chunk holding the posting. */
  readonly terms: ReadonlyArray<readonly [Uint8Array, number]>
}

/**
 * Encodes a forward record. Terms are given by `eachTerm`, which calls its argument with each
 * term key and chunk key (so callers need not build a list).
 */
export const encodeForward = (
  doc: number,
  forward: Omit<Forward, "terms">,
  termCount: number,
  eachTerm: (write: (key: Uint8Array, chunk: number) => void) => void
): Uint8Array => {
  const writer = new ByteWriter(64 + termCount * 12)
  writer.blob(utf8(forward.id))
  writer.uint(forward.lengths.length)
  for (const [field, length] of forward.lengths) writer.uint(field).uint(length)
  writer.uint(forward.numbers.length)
  for (const [field, value] of forward.numbers) writer.uint(field).float64(value)
  writer.uint(termCount)
  // The chunk key is at or below the doc number, and usually close: store the difference.
  eachTerm((key, chunk) => writer.blob(key).uint(doc - chunk))
  return writer.finish()
}

/** The id of a forward record, without decoding the rest. */
export const forwardId = (bytes: Uint8Array): string => Buffer.from(new ByteReader(bytes).blob()).toString("utf8")

/** Reads a forward record of `doc`. */
export const decodeForward = (doc: number, bytes: Uint8Array): Forward => {
  const reader = new ByteReader(bytes)
  const id = Buffer.from(reader.blob()).toString("utf8")
  const lengths: Array<readonly [number, number]> = []
  for (let i = reader.uint(); i > 0; i--) lengths.push([reader.uint(), reader.uint()])
  const numbers: Array<readonly [number, number]> = []
  for (let i = reader.uint(); i > 0; i--) numbers.push([reader.uint(), reader.float64()])
  const terms: Array<readonly [Uint8Array, number]> = []
  for (let i = reader.uint(); i > 0; i--) terms.push([reader.blob(), doc - reader.uint()])
  return { id, lengths, numbers, terms }
}

// ---------------------------------------------------------------------------------------------
// Numeric blocks

/** A numeric block: a presence bitmap and the values of 128 consecutive doc numbers. */
export interface NumericBlock {
  readonly present: Uint8Array
  readonly values: Float64Array
}

/** A numeric block with no value. */
export const emptyBlock = (): NumericBlock => ({ present: new Uint8Array(NUMERIC_BITMAP_BYTES), values: new Float64Array(NUMERIC_BLOCK_SLOTS) })

/** A numeric block's bytes: the presence bitmap, then 128 float64 little-endian. */
export const encodeBlock = (block: NumericBlock): Uint8Array => {
  const out = new Uint8Array(NUMERIC_BITMAP_BYTES + NUMERIC_BLOCK_SLOTS * 8)
  out.set(block.present, 0)
  // Little-endian explicitly: the record must read the same on any host.
  const view = new DataView(out.buffer)
  for (let slot = 0; slot < NUMERIC_BLOCK_SLOTS; slot++) view.setFloat64(NUMERIC_BITMAP_BYTES + slot * 8, block.values[slot]!, true)
  return out
}

/** Reads a numeric block. */
export const decodeBlock = (bytes: Uint8Array): NumericBlock => {
  const values = new Float64Array(NUMERIC_BLOCK_SLOTS)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let slot = 0; slot < NUMERIC_BLOCK_SLOTS; slot++) values[slot] = view.getFloat64(NUMERIC_BITMAP_BYTES + slot * 8, true)
  return { present: bytes.slice(0, NUMERIC_BITMAP_BYTES), values }
}

/** The block number and slot of a doc number. */
export const blockOf = (doc: number): readonly [number, number] => [Math.floor(doc / NUMERIC_BLOCK_SLOTS), doc % NUMERIC_BLOCK_SLOTS]

/** Whether the block holds a value at `slot`. */
export const isPresent = (block: NumericBlock, slot: number): boolean => (block.present[slot >>> 3]! & (1 << (slot & 7))) !== 0

/** Sets (or clears, with undefined) the value at `slot`. */
export const setSlot = (block: NumericBlock, slot: number, value: number | undefined): void => {
  if (value === undefined) block.present[slot >>> 3]! &= ~(1 << (slot & 7))
  else {
    block.present[slot >>> 3]! |= 1 << (slot & 7)
    block.values[slot] = value
  }
}

/** Whether a block holds no value at all (then it is deleted rather than stored). */
export const isEmptyBlock = (block: NumericBlock): boolean => block.present.every((byte) => byte === 0)
