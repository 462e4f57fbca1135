/**
 * The on-disk form of feed entries. Consecutive entries are stored together in one record (as
 * klstore does), keyed by the feed's generation and the record's first offset, so that an append
 * of many items, or many appends in one commit round, cost one store write, and a page of 100
 * entries costs one or two reads. Removed entries stay in their record as tombstones so offsets
 * never shift.
 *
 *   key    := u32 generation | u64 firstOffset                         (big-endian: byte order = offset order)
 *   record := u8 version=1 | u16 count | u8 n | n bytes nonceBefore   (the feed's last nonce before the record)
 *             | count × entry
 *   entry  := u8 flags (1 removed, 2 has nonce) | f64 timestamp | [u8 n | n bytes nonce] | u32 length | value bytes
 */
import * as Nonce from "./nonce.js"

/** One entry as stored (values stay encoded bytes). */
export interface StoredEntry {
  readonly offset: number
  readonly timestamp: number
  readonly nonce: bigint | undefined
  readonly value: Uint8Array
  readonly removed: boolean
}

/** A decoded record. */
export interface FeedRecord {
  readonly generation: number
  readonly firstOffset: number
  /** The feed's last accepted nonce before this record's first entry (undefined: none yet). */
  readonly nonceBefore: bigint | undefined
  readonly entries: ReadonlyArray<StoredEntry>
}

const VERSION = 1
const REMOVED = 1
const HAS_NONCE = 2

/** The key of a record. */
export const recordKey = (generation: number, firstOffset: number): Uint8Array => {
  const out = new Uint8Array(12)
  const view = new DataView(out.buffer)
  view.setUint32(0, generation)
  view.setUint32(4, Math.floor(firstOffset / 0x1_0000_0000))
  view.setUint32(8, firstOffset >>> 0)
  return out
}

/** The generation and first offset in a record key. */
export const parseKey = (key: Uint8Array): { readonly generation: number; readonly firstOffset: number } => {
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength)
  return { generation: view.getUint32(0), firstOffset: view.getUint32(4) * 0x1_0000_0000 + view.getUint32(8) }
}

/** The size of an entry in a record, in bytes. */
export const entrySize = (entry: StoredEntry): number =>
  1 + 8 + (entry.nonce === undefined ? 0 : 1 + Nonce.toBytes(entry.nonce).length) + 4 + entry.value.length

/** Encodes a record. */
export const encode = (record: FeedRecord): Uint8Array => {
  const nonceBefore = record.nonceBefore === undefined ? new Uint8Array(0) : Nonce.toBytes(record.nonceBefore)
  const nonces = record.entries.map((entry) => (entry.nonce === undefined ? undefined : Nonce.toBytes(entry.nonce)))
  let size = 1 + 2 + 1 + nonceBefore.length
  record.entries.forEach((entry, i) => {
    size += 1 + 8 + (nonces[i] === undefined ? 0 : 1 + nonces[i]!.length) + 4 + (entry.removed ? 0 : entry.value.length)
  })
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  let at = 0
  out[at++] = VERSION
  view.setUint16(at, record.entries.length)
  at += 2
  out[at++] = nonceBefore.length
  out.set(nonceBefore, at)
  at += nonceBefore.length
  record.entries.forEach((entry, i) => {
    const nonce = nonces[i]
    out[at++] = (entry.removed ? REMOVED : 0) | (nonce === undefined ? 0 : HAS_NONCE)
    view.setFloat64(at, entry.timestamp)
    at += 8
    if (nonce !== undefined) {
      out[at++] = nonce.length
      out.set(nonce, at)
      at += nonce.length
    }
    const value = entry.removed ? new Uint8Array(0) : entry.value
    view.setUint32(at, value.length)
    at += 4
    out.set(value, at)
    at += value.length
  })
  return out
}

/**
 * A record as read from the store: its header at once, its entries on demand. Reads touch few
 * entries of a record (a probe of a search reads two, a page only the ones it returns), so
 * decoding all of them would be most of the work and most of the garbage. One pass over the
 * bytes finds where each entry starts; `entryAt` decodes one, `entries` all (once).
 */
export class RecordView implements FeedRecord {
  readonly generation: number
  readonly firstOffset: number
  readonly nonceBefore: bigint | undefined
  readonly #bytes: Uint8Array
  readonly #view: DataView
  readonly #starts: Uint32Array
  #all: ReadonlyArray<StoredEntry> | undefined

  constructor(key: Uint8Array, bytes: Uint8Array) {
    const { generation, firstOffset } = parseKey(key)
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    let at = 0
    if (bytes[at++] !== VERSION) throw new Error(`feed record ${generation}/${firstOffset}: unknown version ${bytes[0]}`)
    const count = view.getUint16(at)
    at += 2
    const beforeLength = bytes[at++]!
    this.nonceBefore = beforeLength === 0 ? undefined : Nonce.fromBytes(bytes, at, beforeLength)
    at += beforeLength
    const starts = new Uint32Array(count)
    for (let i = 0; i < count; i++) {
      if (at + 9 > bytes.length) break
      starts[i] = at
      const flags = bytes[at]!
      at += 9
      if ((flags & HAS_NONCE) !== 0) at += 1 + bytes[at]!
      if (at + 4 > bytes.length) break
      at += 4 + view.getUint32(at)
    }
    if (at !== bytes.length) throw new Error(`feed record ${generation}/${firstOffset}: ${bytes.length - at} bytes unaccounted for`)
    this.generation = generation
    this.firstOffset = firstOffset
    this.#bytes = bytes
    this.#view = view
    this.#starts = starts
  }

  /** How many entries the record holds. */
  get count(): number {
    return this.#starts.length
  }

  /** Entry `i`, decoded. */
  entryAt(i: number): StoredEntry {
    if (this.#all !== undefined) return this.#all[i]!
    const bytes = this.#bytes
    let at = this.#starts[i]!
    const flags = bytes[at++]!
    const timestamp = this.#view.getFloat64(at)
    at += 8
    let nonce: bigint | undefined
    if ((flags & HAS_NONCE) !== 0) {
      const length = bytes[at++]!
      nonce = Nonce.fromBytes(bytes, at, length)
      at += length
    }
    const length = this.#view.getUint32(at)
    at += 4
    return { offset: this.firstOffset + i, timestamp, nonce, value: bytes.subarray(at, at + length), removed: (flags & REMOVED) !== 0 }
  }

  /** Every entry, decoded once. */
  get entries(): ReadonlyArray<StoredEntry> {
    if (this.#all === undefined) this.#all = Array.from({ length: this.count }, (_, i) => this.entryAt(i))
    return this.#all
  }
}

/** Decodes a record stored under `key` (its entries as they are read); a malformed record is a defect (the store is corrupt). */
export const decode = (key: Uint8Array, bytes: Uint8Array): RecordView => new RecordView(key, bytes)

/** How many entries a record holds. */
export const size = (record: FeedRecord): number => (record instanceof RecordView ? record.count : record.entries.length)

/** Entry `i` of a record, decoding only it when the record was read from the store. */
export const entryAt = (record: FeedRecord, i: number): StoredEntry => (record instanceof RecordView ? record.entryAt(i) : record.entries[i]!)

/** The last offset of a record. */
export const lastOffset = (record: FeedRecord): number => record.firstOffset + size(record) - 1

/** Whether a record holds `offset` (removed or not). */
export const holds = (record: FeedRecord, offset: number): boolean => record.firstOffset <= offset && offset <= lastOffset(record)

/** The largest nonce in a record, or the nonce before it. */
export const lastNonce = (record: FeedRecord): bigint | undefined => {
  for (let i = record.entries.length - 1; i >= 0; i--) {
    const nonce = record.entries[i]!.nonce
    if (nonce !== undefined) return nonce
  }
  return record.nonceBefore
}
