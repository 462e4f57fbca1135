/**
 * The options of the persistent buffer: every bound is a named field with a default and a
 * reason, validated (with the relationships between fields) before anything touches the disk.
 * A bad option is an `InvalidArgument` naming the field. This module only resolves options; the
 * codecs live in `bufferCodec.ts`.
 */
import * as Path from "node:path"
import { InvalidArgument } from "../StoreError.js"
import type { BufferCodec } from "./bufferCodec.js"
import { json } from "./bufferCodec.js"
import { FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES } from "./bufferFormat.js"

/**
 * When an offer is acknowledged, and what it survives:
 * - `"none"`: once written to the operating system; survives a crash of the process, not of the machine.
 * - `"interval"`: as `"none"`, and every `fsyncIntervalMillis` the files are fsynced; a machine
 *   crash loses at most the elements acknowledged in the last interval (plus the fsync time).
 * - `"batch"`: once fsynced; survives a crash of the process and of the machine.
 */
export type Durability = "none" | "interval" | "batch"

/** What recovery found when the buffer was opened. */
export interface RecoveryReport {
  /** The first index still retained on disk, and the index the next offered element gets. */
  readonly firstIndex: number
  readonly nextIndex: number
  /** Segment files found (after removing any fully consumed ones). */
  readonly segments: number
  /** A torn frame at the tail (a crash mid-write) that was cut, if any. */
  readonly tornTail: { readonly file: string; readonly offset: number; readonly bytesCut: number } | undefined
  /** Per consumer: where it resumes, and a note when its cursor had to be moved into the retained range. */
  readonly consumers: ReadonlyArray<{ readonly consumer: number; readonly next: number; readonly note: string | undefined }>
  /** Whether a lock file left by a dead process was taken over, and its pid. */
  readonly staleLockPid: number | undefined
}

/** Options of a persistent buffer; only `directory` is required. */
export interface BufferOptions<A> {
  /** The buffer's directory, created when missing. One open buffer per directory (a lock file enforces it). */
  readonly directory: string
  /** How elements become bytes: `json()` (default), `binary()` or `text()`, each optionally with a Schema. */
  readonly codec?: BufferCodec<A> | undefined
  /** Independent consumers, each with its own cursor (default 1, at most 1,024). Segments are kept until all have committed past them. */
  readonly consumers?: number | undefined
  /** When an offer is acknowledged and what it survives (default `"interval"`). */
  readonly durability?: Durability | undefined
  /** fsync period of the `"interval"` policy, 1 to 60,000 ms (default 100). */
  readonly fsyncIntervalMillis?: number | undefined
  /** A segment is rolled before it would exceed this size, 4 KiB to 1 GiB (default 64 MiB). */
  readonly segmentBytesMax?: number | undefined
  /** A segment is also rolled once it is this old, when set (default: off). Checked at each offer. */
  readonly segmentRollMillis?: number | undefined
  /** Bytes of frames gathered in memory before one write, 4 KiB to 64 MiB (default 1 MiB). */
  readonly writeBatchBytes?: number | undefined
  /** Bytes each consumer reads from disk at a time, 4 KiB to 64 MiB (default 1 MiB). */
  readonly readChunkBytes?: number | undefined
  /** Distance in bytes between sparse index entries, at least 4 KiB (default 1 MiB); bounds recovery and seek scans. */
  readonly indexSpacingBytes?: number | undefined
  /** Largest encoded element (default: 16 MiB, or less so that one element fits a segment); larger is `InvalidArgument`. */
  readonly elementBytesMax?: number | undefined
  /** Disk bytes of segment files the buffer may hold (default: no limit). At least twice `segmentBytesMax`. */
  readonly sizeBytesMax?: number | undefined
  /** At the size limit: wait until consumers free space (`"backpressure"`, default) or fail with `BufferFull` (`"fail"`). */
  readonly whenFull?: "backpressure" | "fail" | undefined
  /** `"lenient"` (default) moves a cursor forward on any later commit; `"strict"` fails with `CommitOrder` unless the commit is the next index. */
  readonly commitOrder?: "lenient" | "strict" | undefined
  /** Most elements one stream pull or `takeUpTo` call returns, 1 to 65,536 (default 4,096). */
  readonly takeChunkMax?: number | undefined
  /** Called once after recovery, before anything is emitted (recovery also logs a torn tail as a warning). */
  readonly onRecovery?: ((report: RecoveryReport) => void) | undefined
}

/** Options with every default filled in. */
export interface ResolvedOptions<A> {
  readonly directory: string
  readonly codec: BufferCodec<A>
  readonly consumers: number
  readonly durability: Durability
  readonly fsyncIntervalMillis: number
  readonly segmentBytesMax: number
  readonly segmentRollMillis: number | undefined
  readonly writeBatchBytes: number
  readonly readChunkBytes: number
  readonly indexSpacingBytes: number
  readonly elementBytesMax: number
  readonly sizeBytesMax: number | undefined
  readonly whenFull: "backpressure" | "fail"
  readonly commitOrder: "lenient" | "strict"
  readonly takeChunkMax: number
  readonly onRecovery: ((report: RecoveryReport) => void) | undefined
}

const KIB = 1024
const MIB = 1024 * KIB
const GIB = 1024 * MIB
/** Consumers are numbered 0..n-1; each costs a read chunk and a cursor file. */
export const CONSUMERS_MAX = 1024
const TAKE_CHUNK_MAX = 65_536

const integerIn = (field: string, value: number, min: number, max: number): InvalidArgument | undefined =>
  Number.isSafeInteger(value) && value >= min && value <= max
    ? undefined
    : new InvalidArgument({ field, message: `must be an integer from ${min} to ${max}` })

const oneOf = (field: string, value: string, allowed: ReadonlyArray<string>): InvalidArgument | undefined =>
  allowed.includes(value) ? undefined : new InvalidArgument({ field, message: `must be one of ${allowed.join(", ")}` })

/** Fills in defaults and checks every field and the relationships between them. */
export const resolve = <A>(options: BufferOptions<A>): ResolvedOptions<A> | InvalidArgument => {
  if (typeof options?.directory !== "string" || options.directory.length === 0) {
    return new InvalidArgument({ field: "directory", message: "must be a non-empty path" })
  }
  const segmentBytesMax = options.segmentBytesMax ?? 64 * MIB
  const frameOverhead = SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES
  const resolved: ResolvedOptions<A> = {
    directory: Path.resolve(options.directory),
    codec: options.codec ?? (json() as unknown as BufferCodec<A>),
    consumers: options.consumers ?? 1,
    durability: options.durability ?? "interval",
    fsyncIntervalMillis: options.fsyncIntervalMillis ?? 100,
    segmentBytesMax,
    segmentRollMillis: options.segmentRollMillis,
    writeBatchBytes: options.writeBatchBytes ?? MIB,
    readChunkBytes: options.readChunkBytes ?? MIB,
    indexSpacingBytes: options.indexSpacingBytes ?? MIB,
    // One element must fit an empty segment, so that a segment never grows past its maximum.
    elementBytesMax: options.elementBytesMax ?? Math.min(16 * MIB, segmentBytesMax - frameOverhead),
    sizeBytesMax: options.sizeBytesMax,
    whenFull: options.whenFull ?? "backpressure",
    commitOrder: options.commitOrder ?? "lenient",
    takeChunkMax: options.takeChunkMax ?? 4096,
    onRecovery: options.onRecovery
  }
  const bad = integerIn("consumers", resolved.consumers, 1, CONSUMERS_MAX) ??
    oneOf("durability", resolved.durability, ["none", "interval", "batch"]) ??
    integerIn("fsyncIntervalMillis", resolved.fsyncIntervalMillis, 1, 60_000) ??
    integerIn("segmentBytesMax", segmentBytesMax, 4 * KIB, GIB) ??
    (resolved.segmentRollMillis === undefined ? undefined : integerIn("segmentRollMillis", resolved.segmentRollMillis, 1, 366 * 86_400_000)) ??
    integerIn("writeBatchBytes", resolved.writeBatchBytes, 4 * KIB, 64 * MIB) ??
    integerIn("readChunkBytes", resolved.readChunkBytes, 4 * KIB, 64 * MIB) ??
    integerIn("indexSpacingBytes", resolved.indexSpacingBytes, 4 * KIB, GIB) ??
    integerIn("elementBytesMax", resolved.elementBytesMax, 1, segmentBytesMax - frameOverhead) ??
    (resolved.sizeBytesMax === undefined || (Number.isSafeInteger(resolved.sizeBytesMax) && resolved.sizeBytesMax >= 2 * segmentBytesMax)
      ? undefined
      // Under one segment, the active segment (never deleted) could fill the limit alone and hold
      // the producer forever; two leave room to fill one while consumers free the other.
      : new InvalidArgument({ field: "sizeBytesMax", message: `must be an integer of at least 2 × segmentBytesMax (${2 * segmentBytesMax})` })) ??
    oneOf("whenFull", resolved.whenFull, ["backpressure", "fail"]) ??
    oneOf("commitOrder", resolved.commitOrder, ["lenient", "strict"]) ??
    integerIn("takeChunkMax", resolved.takeChunkMax, 1, TAKE_CHUNK_MAX)
  return bad ?? resolved
}
