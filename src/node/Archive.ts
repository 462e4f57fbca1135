/**
 * Dump and restore: every record of a store (feeds, sorted sets, indexes, entity state and event
 * logs alike, since they are all records) to one gzip-compressed file of JSON lines, and back.
 * Epochs are not archived: a restored cluster fences with its own.
 *
 *   line 1   {"format": "shardfeed-archive", "version": 1, "created": "<ISO time>"}
 *   then     {"p": partition, "n": namespace, "k": base64 key, "v": base64 value}   one per record
 *   last     {"end": true, "records": n}                                            (a missing end is a truncated file)
 *
 * A LevelDB export reads one consistent snapshot, so a dump of a running node is one point in
 * time. Restore refuses a store that already holds data unless told to merge.
 */
import { Effect, Stream } from "effect"
import { createInterface } from "node:readline"
import type { Readable, Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as Zlib from "node:zlib"
import type { PartitionBatch, StoreBackendShape, WriteOp } from "../../persistence/StoreBackend.js"
import type { BackendError } from "../../persistence/StoreError.js"

/** An archive that cannot be read or restored; the message says why. */
export class ArchiveError extends Error {
  readonly _tag = "ArchiveError"
}

const FORMAT = "shardfeed-archive"
const BATCH_OPS = 1_000
const LINE_BYTES_MAX = 64 * 1024 * 1024

/** Progress reports: records and bytes so far. */
export type Progress = (records: number, bytes: number) => void

/** Writes `text`, waiting for the buffer to drain; a destination closed meanwhile (a client gone) is an error. */
const write = (out: Writable, text: string): Promise<void> =>
  new Promise((resolve, reject) => {
    if (out.destroyed || out.writableEnded) return reject(new ArchiveError("the archive's destination closed"))
    if (out.write(text)) return resolve()
    const settle = (error?: Error) => {
      out.off("drain", drained)
      out.off("error", settle)
      out.off("close", closed)
      if (error === undefined) resolve()
      else reject(error)
    }
    const drained = () => settle()
    const closed = () => settle(new ArchiveError("the archive's destination closed"))
    out.once("drain", drained)
    out.once("error", settle)
    out.once("close", closed)
  })

/**
 * Writes every record of `backend` to `output` as a gzip archive; answers the record count.
 * `beforeEnd` runs before the closing line: if it fails, the archive stays without its end
 * (a restore refuses it as truncated). A destination that closes early (an HTTP client gone)
 * ends the dump with an error instead of stalling it.
 */
export const dump = <E = never>(
  backend: StoreBackendShape,
  output: Writable,
  progress?: Progress,
  beforeEnd: Effect.Effect<void, E> = Effect.void
): Effect.Effect<number, BackendError | ArchiveError | E> =>
  Effect.gen(function*() {
    if (output.destroyed || output.writableEnded) return yield* Effect.fail(new ArchiveError("the archive's destination closed"))
    const gzip = Zlib.createGzip()
    // pipeline: an error or early close of either side destroys the other, so writes fail.
    const piped = pipeline(gzip, output).then(() => undefined, (error: unknown) => error)
    let records = 0
    let bytes = 0
    const emit = (text: string) =>
      Effect.tryPromise({ try: () => write(gzip, text), catch: (cause) => (cause instanceof ArchiveError ? cause : new ArchiveError(`cannot write the archive: ${String(cause)}`)) })
    yield* emit(JSON.stringify({ format: FORMAT, version: 1, created: new Date().toISOString() }) + "\n")
    yield* Stream.runForEach(backend.export, (record) =>
      Effect.suspend(() => {
        const line = JSON.stringify({
          p: record.partition,
          n: record.namespace,
          k: Buffer.from(record.key).toString("base64"),
          v: Buffer.from(record.value).toString("base64")
        }) + "\n"
        records++
        bytes += line.length
        if (records % 10_000 === 0) progress?.(records, bytes)
        return emit(line)
      }))
    yield* beforeEnd
    yield* emit(JSON.stringify({ end: true, records }) + "\n")
    gzip.end()
    const failure = yield* Effect.promise(() => piped)
    if (failure !== undefined) return yield* Effect.fail(new ArchiveError(`cannot finish the archive: ${String(failure)}`))
    progress?.(records, bytes)
    return records
  })

interface ArchiveLine {
  readonly p?: unknown
  readonly n?: unknown
  readonly k?: unknown
  readonly v?: unknown
  readonly end?: unknown
  readonly records?: unknown
  readonly format?: unknown
  readonly version?: unknown
}

const parseLine = (text: string, number: number): ArchiveLine | ArchiveError => {
  try {
    const value = JSON.parse(text) as unknown
    if (typeof value !== "object" || value === null) return new ArchiveError(`line ${number} is not an object`)
    return value as ArchiveLine
  } catch {
    return new ArchiveError(`line ${number} is not JSON`)
  }
}

/** Refuses a target that holds data unless the restore merges into it. */
export const checkTarget = (backend: StoreBackendShape, merge: boolean): Effect.Effect<void, BackendError | ArchiveError> =>
  merge
    ? Effect.void
    : Effect.flatMap(isEmpty(backend), (empty) =>
      empty ? Effect.void : Effect.fail(new ArchiveError("the target store is not empty; restore with --merge to add to it")))

/** Whether a store holds any record. */
export const isEmpty = (backend: StoreBackendShape): Effect.Effect<boolean, BackendError> =>
  Effect.map(Stream.runHead(backend.export), (head) => head._tag === "None")

/**
 * Loads an archive into `backend`, in batches of up to 1,000 writes per partition. Refuses a
 * store that holds data unless `merge`, a file that is not an archive, and a truncated one.
 */
export const restore = (
  backend: StoreBackendShape,
  input: Readable,
  options: { readonly merge?: boolean | undefined; readonly progress?: Progress | undefined } = {}
): Effect.Effect<number, BackendError | ArchiveError> =>
  Effect.gen(function*() {
    yield* checkTarget(backend, options.merge === true)
    // pipeline: an upload cut off or failing ends the reading with an error instead of a stall.
    const gunzip = Zlib.createGunzip()
    pipeline(input, gunzip).catch(() => undefined)
    const lines = createInterface({ input: gunzip, crlfDelay: Number.POSITIVE_INFINITY })
    const iterator = lines[Symbol.asyncIterator]()
    let number = 0
    let records = 0
    let bytes = 0
    let ended = false
    let pending: { partition: string; ops: Array<WriteOp> } | undefined
    const flush = () => {
      if (pending === undefined || pending.ops.length === 0) return Effect.void
      const batch: PartitionBatch = { partition: pending.partition, epoch: undefined, ops: pending.ops }
      pending = undefined
      return Effect.asVoid(backend.write([batch]))
    }
    const next = () =>
      Effect.tryPromise({ try: () => iterator.next(), catch: (cause) => new ArchiveError(`cannot read the archive: ${String(cause)}`) })
    // One line per round; the file's end ends the loop.
    for (;;) {
      const result = yield* next()
      if (result.done === true) break
      number++
      const text = result.value as string
      if (text.length === 0) continue
      if (text.length > LINE_BYTES_MAX) return yield* Effect.fail(new ArchiveError(`line ${number} is too long`))
      const line = parseLine(text, number)
      if (line instanceof ArchiveError) return yield* Effect.fail(line)
      if (number === 1) {
        if (line.format !== FORMAT || line.version !== 1) return yield* Effect.fail(new ArchiveError("this is not a shardfeed archive (version 1)"))
        continue
      }
      if (line.end === true) {
        ended = true
        if (line.records !== records) return yield* Effect.fail(new ArchiveError(`the archive says ${String(line.records)} records, it held ${records}`))
        continue
      }
      if (typeof line.p !== "string" || typeof line.n !== "string" || typeof line.k !== "string" || typeof line.v !== "string") {
        return yield* Effect.fail(new ArchiveError(`line ${number} is not a record`))
      }
      if (pending !== undefined && (pending.partition !== line.p || pending.ops.length >= BATCH_OPS)) yield* flush()
      pending ??= { partition: line.p, ops: [] }
      pending.ops.push({ _tag: "Put", namespace: line.n, key: Buffer.from(line.k, "base64"), value: Buffer.from(line.v, "base64") })
      records++
      bytes += text.length
      if (records % 10_000 === 0) options.progress?.(records, bytes)
    }
    yield* flush()
    if (!ended) return yield* Effect.fail(new ArchiveError(`the archive is truncated after ${records} records`))
    options.progress?.(records, bytes)
    return records
  })
