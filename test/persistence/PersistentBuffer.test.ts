/**
 * PersistentBuffer in one process, on real files in temp directories.
 *
 * Goal: the buffer keeps order and contents through every API (stream stage, Effect service,
 * Promise handle, async iterator), resumes where it stopped after a restart, and handles the
 * disk going wrong the way its contract says (torn tails cut and reported, corruption a typed
 * error). Method: each test opens a buffer in a fresh directory, drives it through the public
 * API, and checks the elements delivered and the files left on disk. No mocks, no timing
 * assertions; the multi-process crash test and the 10-million-element memory test live in
 * their own files.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Cause, Effect, Exit, Schema, Stream } from "effect"
import { describe, expect, it } from "vitest"
import * as PersistentBuffer from "../../persistence/PersistentBuffer.js"
import { crc32c } from "../../persistence/internal/bufferChecksum.js"
import { itEffect } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i)

/** The typed failure of an effect, or fails the test. */
const failureOf = <A, E>(effect: Effect.Effect<A, E, any>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return Effect.die(new Error("expected a failure, got success"))
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "None") return Effect.die(new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`))
    return Effect.succeed(error.value as E)
  })

const files = (directory: string, suffix: string) => Fs.readdirSync(directory).filter((name) => name.endsWith(suffix)).sort()

describe("PersistentBuffer stream stage", () => {
  itEffect("passes every element through in order (default JSON codec)", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-via")
      const input = range(0, 20_000).map((n) => ({ n, text: `element ${n}` }))
      const output = yield* Stream.fromIterable(input).pipe(PersistentBuffer.via({ directory }), Stream.runCollect)
      expect(output).toEqual(input)
    }))

  itEffect("emits elements left over by an early stop first on the next run, then new ones", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-rerun")
      const codec = PersistentBuffer.text()
      const first = yield* Stream.fromIterable(range(0, 10_000).map(String)).pipe(
        PersistentBuffer.via({ directory, codec, takeChunkMax: 100 }),
        Stream.take(250),
        Stream.runCollect
      )
      expect(first).toEqual(range(0, 250).map(String))
      // The stop came in the middle of a chunk: that chunk (200..299) is delivered again.
      const second = yield* Stream.fromIterable(range(10_000, 5).map(String)).pipe(
        PersistentBuffer.via({ directory, codec, takeChunkMax: 100 }),
        Stream.runCollect
      )
      expect(second).toEqual([...range(200, 9_800), ...range(10_000, 5)].map(String))
    }))

  itEffect("fails the output with the upstream's error", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-upstream-fails")
      const failing = Stream.concat(Stream.make(1, 2, 3), Stream.fail("upstream broke" as const))
      const error = yield* failureOf(failing.pipe(PersistentBuffer.via({ directory }), Stream.runCollect))
      expect(error).toBe("upstream broke")
      const left = yield* Stream.empty.pipe(PersistentBuffer.via({ directory }), Stream.runCollect)
      expect(left.length).toBeLessThanOrEqual(3)
    }))
})

describe("PersistentBuffer service", () => {
  itEffect("runs a stream in with run, and ends the consumer stream once the input ended", () =>
    Effect.gen(function*() {
      const buffer = yield* PersistentBuffer.make<number>({ directory: tempDir("buffer-run"), consumers: 2 })
      yield* buffer.run(Stream.range(1, 10_000))
      const [first, second] = yield* Effect.all([Stream.runCollect(buffer.stream), Stream.runCollect(buffer.consumers[1]!.stream)], {
        concurrency: 2
      })
      expect(first).toEqual(range(1, 10_000))
      expect(second).toEqual(range(1, 10_000))
      const size = yield* buffer.size
      expect(size).toMatchObject({ nextIndex: 10_000, published: 10_000 })
      expect(size.consumers.map((consumer) => consumer.committed)).toEqual([10_000, 10_000])
    }))
})

describe("PersistentBuffer codecs", () => {
  itEffect("round trips text, binary and schema-typed JSON elements", () =>
    Effect.gen(function*() {
      const text = yield* Stream.make("a", "", "ünïcødé ✓", "x".repeat(5000)).pipe(
        PersistentBuffer.via({ directory: tempDir("buffer-text"), codec: PersistentBuffer.text() }),
        Stream.runCollect
      )
      expect(text).toEqual(["a", "", "ünïcødé ✓", "x".repeat(5000)])
      const bytes = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(3000).fill(7)]
      const binary = yield* Stream.fromIterable(bytes).pipe(
        PersistentBuffer.via({ directory: tempDir("buffer-binary"), codec: PersistentBuffer.binary() }),
        Stream.runCollect
      )
      expect(binary.map((value) => [...value])).toEqual(bytes.map((value) => [...value]))
      const Event = Schema.Struct({ id: Schema.Number, at: Schema.Date, tags: Schema.Array(Schema.String) })
      const events = [{ id: 1, at: new Date(1_700_000_000_000), tags: ["x"] }, { id: 2, at: new Date(0), tags: [] }]
      const typed = yield* Stream.fromIterable(events).pipe(
        PersistentBuffer.via({ directory: tempDir("buffer-schema"), codec: PersistentBuffer.json(Event) }),
        Stream.runCollect
      )
      expect(typed).toEqual(events)
      expect(typed[0]!.at).toBeInstanceOf(Date)
    }))

  itEffect("maps elements through a schema with the text codec", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-text-schema")
      const numbers = yield* Stream.make(1, 2.5, -3).pipe(
        PersistentBuffer.via({ directory, codec: PersistentBuffer.text(Schema.NumberFromString) }),
        Stream.runCollect
      )
      expect(numbers).toEqual([1, 2.5, -3])
    }))

  itEffect("refuses an element the codec cannot encode with ElementEncodeError, keeping the ones before it", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-encode")
      const buffer = yield* PersistentBuffer.make<unknown>({ directory, durability: "none" })
      const error = yield* failureOf(buffer.offerAll([1, 2, 10n, 4]))
      expect(error._tag).toBe("ElementEncodeError")
      expect(yield* buffer.takeUpTo(10)).toEqual([1, 2])
    }))

  it("fails a read that does not decode with ElementDecodeError naming the index, and stays before it", async () => {
    const directory = tempDir("buffer-decode")
    const writer = await PersistentBuffer.open({ directory, codec: PersistentBuffer.text() })
    await writer.offerAll(["1", "2", "three", "4"])
    await writer.close()
    const reader = await PersistentBuffer.open({ directory, codec: PersistentBuffer.json(Schema.Number) })
    expect(await reader.takeUpTo(10)).toEqual([1, 2])
    const error = await reader.take().catch((cause: PersistentBuffer.ElementDecodeError) => cause)
    expect(error).toBeInstanceOf(PersistentBuffer.ElementDecodeError)
    expect((error as PersistentBuffer.ElementDecodeError).index).toBe(2)
    await expect(reader.take()).rejects.toMatchObject({ _tag: "ElementDecodeError", index: 2 })
    await reader.close()
  })

  it("computes CRC-32C as specified, and an all-zero frame never passes", () => {
    expect(crc32c(Buffer.from("123456789"), 0, 9)).toBe(0xe3069283)
    expect(crc32c(new Uint8Array(4), 0, 4)).not.toBe(0)
  })
})

describe("PersistentBuffer restart and recovery", () => {
  it("delivers what was not consumed before a restart first, then new elements", async () => {
    const directory = tempDir("buffer-restart")
    const options = { directory, codec: PersistentBuffer.text(), segmentBytesMax: 8192, indexSpacingBytes: 4096 }
    const first = await PersistentBuffer.open(options)
    await first.offerAll(range(0, 3000).map(String))
    expect(await first.takeUpTo(1000)).toEqual(range(0, 1000).map(String))
    await first.close()
    const second = await PersistentBuffer.open(options)
    expect(second.recovery).toMatchObject({ nextIndex: 3000, tornTail: undefined })
    await second.offerAll(["new"])
    const rest: Array<string> = []
    while (rest.length < 2001) rest.push(...await second.takeUpTo(500))
    expect(rest).toEqual([...range(1000, 2000).map(String), "new"])
    await second.close()
    // Everything was consumed, so only the active segment is left (reclaim follows the commits'
    // fsync under the default policy; close does a last one).
    expect(files(directory, ".segment").length).toBe(1)
  })

  it("cuts a torn tail, reports it, and keeps every whole element before it", async () => {
    const directory = tempDir("buffer-torn")
    const options = { directory, codec: PersistentBuffer.text(), durability: "none" as const }
    const first = await PersistentBuffer.open(options)
    await first.offerAll(range(0, 100).map((n) => `element-${n}`))
    await first.close()
    const segment = Path.join(directory, files(directory, ".segment").at(-1)!)
    const size = Fs.statSync(segment).size
    // A crash mid-write: the last frame loses its last 5 bytes.
    Fs.truncateSync(segment, size - 5)
    let reported: PersistentBuffer.RecoveryReport | undefined
    const second = await PersistentBuffer.open({ ...options, onRecovery: (report) => (reported = report) })
    expect(reported?.tornTail).toMatchObject({ bytesCut: Buffer.byteLength("element-99") + 8 - 5 })
    expect(second.recovery.nextIndex).toBe(99)
    await second.offerAll(["after"])
    expect(await second.takeUpTo(1000)).toEqual([...range(0, 99).map((n) => `element-${n}`), "after"])
    await second.close()
  })

  it("cuts garbage after the last frame (a partially written batch) the same way", async () => {
    const directory = tempDir("buffer-garbage")
    const options = { directory, codec: PersistentBuffer.text(), durability: "none" as const }
    const first = await PersistentBuffer.open(options)
    await first.offerAll(["a", "b"])
    await first.close()
    const segment = Path.join(directory, files(directory, ".segment").at(-1)!)
    Fs.appendFileSync(segment, Buffer.from([0x12, 0x34, 0x56, 0x78, 3, 0, 0, 0, 0x61, 0x62, 0x63, 0, 0, 0]))
    const second = await PersistentBuffer.open(options)
    expect(second.recovery.tornTail?.bytesCut).toBe(14)
    expect(await second.takeUpTo(10)).toEqual(["a", "b"])
    await second.close()
  })
})
