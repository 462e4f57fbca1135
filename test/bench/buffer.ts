/**
 * `npm run bench -- buffer [--messages N] [--levelMessages N] [--techniques]`: PersistentBuffer
 * throughput, 100-byte messages offered and taken in one process (a producer loop of `offerAll`
 * of 1,000 and a consumer loop of `takeUpTo(4096)`, running together), against the same workload
 * on a queue over classic-level, in the same run. Every row names its codec and policy.
 *
 * Rows: text codec with fsync every 100 ms (the headline, squbs's ~1M msg/s), binary and JSON
 * codecs, fsync every batch, broadcast to 3 consumers, the Effect stream stage, and the
 * classic-level queue (a chained batch of puts per offer; per take an iterator read, then a
 * chained batch deleting what was read and storing the cursor; `sync: false`). `--techniques`
 * runs only the micro-measurements behind the design (file write techniques, checksums).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { ClassicLevel } from "classic-level"
import { Effect, Stream } from "effect"
import * as PersistentBuffer from "../../persistence/PersistentBuffer.js"
import { crc32c } from "../../persistence/internal/bufferChecksum.js"
import { options as parseOptions, report, type Row } from "./report.js"

const MESSAGE_BYTES = 100
const OFFER_BATCH = 1_000
const TAKE_MAX = 4_096
const POOL = 1_024

const scratch = (label: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), `bench-buffer-${label}-`))

/** 1,024 distinct 100-byte messages per codec, reused round robin (no allocation in the timed loop). */
const texts = Array.from({ length: POOL }, (_, i) => `message ${i} `.padEnd(MESSAGE_BYTES, "abcdefghij"))
const bytes = texts.map((text) => Buffer.from(text))
const objects = Array.from({ length: POOL }, (_, i) => ({ id: i, at: 1_732_560_000_000 + i, text: "x".repeat(MESSAGE_BYTES - 49 - String(i).length) }))

const batches = <A>(pool: ReadonlyArray<A>): Array<Array<A>> =>
  Array.from({ length: POOL / 8 }, (_, b) => Array.from({ length: OFFER_BATCH }, (_, i) => pool[(b * 8 + i) % POOL]!))

interface Measured {
  readonly messagesPerSecond: number
  readonly seconds: number
}

/** Offers `messages` and takes them back on `consumers` consumers concurrently; rate of messages through. */
const throughBuffer = async <A>(
  messages: number,
  pool: ReadonlyArray<A>,
  options: Omit<PersistentBuffer.BufferOptions<A>, "directory">
): Promise<Measured> => {
  const directory = scratch("run")
  const buffer = await PersistentBuffer.open<A>({ ...options, directory })
  const groups = batches(pool)
  const started = performance.now()
  const produce = async () => {
    for (let sent = 0, b = 0; sent < messages; sent += OFFER_BATCH, b++) await buffer.offerAll(groups[b % groups.length]!)
  }
  const consume = async (consumer: PersistentBuffer.ConsumerHandle<A>) => {
    let received = 0
    while (received < messages) received += (await consumer.takeUpTo(TAKE_MAX)).length
    if (received !== messages) throw new Error(`consumer ${consumer.consumer} received ${received} of ${messages}`)
  }
  await Promise.all([produce(), ...buffer.consumers.map(consume)])
  const seconds = (performance.now() - started) / 1000
  await buffer.close()
  Fs.rmSync(directory, { recursive: true, force: true })
  return { messagesPerSecond: messages / seconds, seconds }
}

/** The same workload through the Effect stream stage: a stream of `messages` elements, `via`, drained. */
const throughStage = async (messages: number): Promise<Measured> => {
  const directory = scratch("stage")
  const groups = batches(texts)
  // One chunk of 1,000 per upstream pull, like the Promise producer's offerAll.
  const source = Stream.fromArrays(...Array.from({ length: Math.ceil(messages / OFFER_BATCH) }, (_, b) => groups[b % groups.length]!))
  const started = performance.now()
  const count = await Effect.runPromise(source.pipe(PersistentBuffer.via({ directory, codec: PersistentBuffer.text() }), Stream.runCount))
  const seconds = (performance.now() - started) / 1000
  if (count !== messages) throw new Error(`stage delivered ${count} of ${messages}`)
  Fs.rmSync(directory, { recursive: true, force: true })
  return { messagesPerSecond: messages / seconds, seconds }
}

const key = (index: number): Buffer => {
  const out = Buffer.allocUnsafe(8)
  out.writeUInt32BE(Math.floor(index / 0x1_0000_0000), 0)
  out.writeUInt32BE(index >>> 0, 4)
  return out
}

/**
 * A queue over classic-level, as one would write it: offer = one batch of puts keyed by index;
 * take = read up to 4,096 entries after the cursor, then one batch deleting them and storing the
 * cursor. `sync: false` (survives a process crash, like the buffer's acknowledgement).
 */
const throughLevel = async (messages: number, json: boolean): Promise<Measured> => {
  const directory = scratch("level")
  const db = new ClassicLevel<Buffer, Buffer>(directory, { keyEncoding: "buffer", valueEncoding: "buffer", createIfMissing: true })
  await db.open()
  const cursorKey = Buffer.from([0xff])
  const started = performance.now()
  let written = 0
  let wake: (() => void) | undefined
  // Chained batches: about 7x faster than array batches in classic-level 3 (measured: 0.95M vs
  // 0.13M puts/s of 1,000 per batch), so the baseline is the fast way to use it.
  const produce = async () => {
    for (let b = 0; written < messages; b++) {
      const batch = db.batch()
      for (let i = 0; i < OFFER_BATCH; i++) {
        const index = (b * 8 + i) % POOL
        batch.put(key(written + i), json ? Buffer.from(JSON.stringify(objects[index])) : bytes[index]!)
      }
      await batch.write({ sync: false })
      written += OFFER_BATCH
      wake?.()
    }
  }
  const consume = async () => {
    let next = 0
    while (next < messages) {
      if (next >= written) await new Promise<void>((resolve) => (wake = resolve))
      const entries = await db.iterator({ gte: key(next), lt: key(messages), limit: TAKE_MAX }).all()
      const batch = db.batch()
      for (const [entryKey, value] of entries) {
        if (json) sink ^= (JSON.parse(value.toString("utf8")) as { id: number }).id
        batch.del(entryKey)
      }
      next += entries.length
      batch.put(cursorKey, key(next))
      await batch.write({ sync: false })
    }
  }
  await Promise.all([produce(), consume()])
  const seconds = (performance.now() - started) / 1000
  await db.close()
  Fs.rmSync(directory, { recursive: true, force: true })
  return { messagesPerSecond: messages / seconds, seconds }
}

/** Micro-measurements behind the design: write techniques for 108-byte frames, and checksums. */
const techniques = (frames: number): Array<Row> => {
  const directory = scratch("techniques")
  const frame = Buffer.alloc(108, 97)
  /** Frames per second of `f`, which writes `count` frames to a fresh file. */
  const rate = (name: string, count: number, f: (fd: number) => void): Row => {
    const fd = Fs.openSync(Path.join(directory, `${name.replace(/\W+/g, "-")}.log`), "w")
    const started = performance.now()
    f(fd)
    const seconds = (performance.now() - started) / 1000
    Fs.closeSync(fd)
    return { name: `write technique: ${name}`, value: count / seconds, unit: "frames/s" }
  }
  const batched = (batchBytes: number, sync: boolean) => (fd: number) => {
    const batch = Buffer.allocUnsafe(batchBytes)
    let used = 0
    for (let i = 0; i < frames; i++) {
      if (used + frame.length > batchBytes) {
        Fs.writeSync(fd, batch, 0, used)
        if (sync) Fs.fsyncSync(fd)
        used = 0
      }
      used += frame.copy(batch, used)
    }
    Fs.writeSync(fd, batch, 0, used)
  }
  const rows = [
    rate("batch 64 KiB + writeSync", frames, batched(64 * 1024, false)),
    rate("batch 1 MiB + writeSync", frames, batched(1024 * 1024, false)),
    rate("batch 1 MiB + writeSync + fsync each", frames, batched(1024 * 1024, true)),
    rate("writev of 1,024 frames", frames, (fd) => {
      let vectors: Array<Buffer> = []
      for (let i = 0; i < frames; i++) {
        vectors.push(Buffer.from(frame))
        if (vectors.length === 1024) (Fs.writevSync(fd, vectors), vectors = [])
      }
      if (vectors.length > 0) Fs.writevSync(fd, vectors)
    }),
    // A tenth as many: one system call per frame is slow enough to measure on fewer.
    rate("writeSync per frame", frames / 10, (fd) => {
      for (let i = 0; i < frames / 10; i++) Fs.writeSync(fd, frame)
    })
  ]
  Fs.rmSync(directory, { recursive: true, force: true })
  const data = Buffer.alloc(1 << 20, 31)
  const checksum = (name: string, f: (start: number) => number): Row => {
    const started = performance.now()
    for (let round = 0; round < 50; round++) for (let at = 0; at + 108 <= data.length; at += 108) sink ^= f(at)
    const seconds = (performance.now() - started) / 1000
    return { name: `checksum: ${name}`, value: (50 * data.length) / 1e6 / seconds, unit: "MB/s" }
  }
  const native = (Zlib as { crc32?: (data: Uint8Array) => number }).crc32
  return [
    ...rows,
    checksum("CRC-32C sliced by 8 (ours), 108-byte frames", (at) => crc32c(data, at, at + 108)),
    ...(native === undefined ? [] : [checksum("zlib.crc32 (native), 108-byte frames", (at) => native(data.subarray(at, at + 108)))])
  ]
}

/** Keeps checksum results alive so the measured loops are not optimized away. */
let sink = 0

/** Runs every row and prints the table and the JSON line. */
export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const options = parseOptions(args)
  const messages = Number(options.messages ?? 3_000_000)
  const levelMessages = Number(options.levelMessages ?? 500_000)
  // Alone: its half a gigabyte of writes would otherwise load the page cache under the other rows.
  if (options.techniques !== undefined) return report("buffer techniques", techniques(1_000_000), { load: Os.loadavg()[0], sink })
  const interval = { durability: "interval" as const, fsyncIntervalMillis: 100 }
  const loadBefore = Os.loadavg()[0]
  const headline = await throughBuffer(messages, texts, { ...interval, codec: PersistentBuffer.text() })
  const binary = await throughBuffer(messages, bytes, { ...interval, codec: PersistentBuffer.binary() })
  const json = await throughBuffer(messages, objects, { ...interval, codec: PersistentBuffer.json() })
  const everyBatch = await throughBuffer(messages, texts, { durability: "batch", codec: PersistentBuffer.text() })
  const broadcast = await throughBuffer(messages, texts, { ...interval, codec: PersistentBuffer.text(), consumers: 3 })
  const stage = await throughStage(messages)
  const levelRate = (await throughLevel(levelMessages, false)).messagesPerSecond
  const levelJsonRate = (await throughLevel(levelMessages, true)).messagesPerSecond
  const rows: Array<Row> = [
    { name: "buffer, text codec, fsync every 100 ms", value: headline.messagesPerSecond, unit: "msg/s", baseline: "classic-level queue", ratio: headline.messagesPerSecond / levelRate, target: ">= 1,000,000 msg/s and >= 3x" },
    { name: "buffer, binary codec, fsync every 100 ms", value: binary.messagesPerSecond, unit: "msg/s", baseline: "classic-level queue", ratio: binary.messagesPerSecond / levelRate },
    { name: "buffer, json codec, fsync every 100 ms", value: json.messagesPerSecond, unit: "msg/s", baseline: "classic-level queue, JSON", ratio: json.messagesPerSecond / levelJsonRate },
    { name: "buffer, text codec, fsync every batch", value: everyBatch.messagesPerSecond, unit: "msg/s", baseline: "classic-level queue", ratio: everyBatch.messagesPerSecond / levelRate },
    { name: "buffer, text codec, broadcast to 3 consumers (each gets all)", value: broadcast.messagesPerSecond, unit: "msg/s", baseline: "classic-level queue", ratio: broadcast.messagesPerSecond / levelRate },
    { name: "buffer, text codec, Effect stream stage (via)", value: stage.messagesPerSecond, unit: "msg/s", baseline: "classic-level queue", ratio: stage.messagesPerSecond / levelRate },
    { name: "classic-level queue, binary values, sync: false", value: levelRate, unit: "msg/s" },
    { name: "classic-level queue, JSON values, sync: false", value: levelJsonRate, unit: "msg/s" }
  ]
  // The machine is shared: the 1-minute load average says how much else was running.
  const load = { before: loadBefore, after: Os.loadavg()[0], cores: Os.cpus().length }
  report("buffer", rows, { messages, levelMessages, messageBytes: MESSAGE_BYTES, offerBatch: OFFER_BATCH, takeMax: TAKE_MAX, load, sink })
}
