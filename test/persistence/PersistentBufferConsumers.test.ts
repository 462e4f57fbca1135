/**
 * PersistentBuffer consumers: at-least-once delivery with a commit stage, commit-order policies,
 * broadcast to independent consumers, space reclaim, and the Promise API's iterators.
 *
 * Goal: committed elements are never delivered again, uncommitted ones always are; each
 * consumer goes at its own pace; a segment file lives exactly until every consumer committed
 * past it. Method: one process, real files, restarts by closing and reopening the directory;
 * assertions on delivered elements, cursors and the segment files on disk. No timing assertions.
 */
import * as Fs from "node:fs"
import { Cause, Effect, Exit, Stream } from "effect"
import { describe, expect, it } from "vitest"
import * as PersistentBuffer from "../../persistence/PersistentBuffer.js"
import { itEffect } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i)
const segments = (directory: string) => Fs.readdirSync(directory).filter((name) => name.endsWith(".segment")).length

const failureOf = <A, E>(effect: Effect.Effect<A, E, any>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return Effect.die(new Error("expected a failure, got success"))
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "None") return Effect.die(new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`))
    return Effect.succeed(error.value as E)
  })

describe("PersistentBuffer at least once", () => {
  itEffect("delivers again what was emitted but not committed, and never what was committed", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-alo")
      const options = { directory, takeChunkMax: 10 }
      // Chunks of 10 are emitted; `take(25)` lets 25 reach the commit stage and drops the rest of the third chunk.
      const first = yield* Stream.fromIterable(range(0, 100)).pipe(
        PersistentBuffer.viaAtLeastOnce(options),
        Stream.take(25),
        PersistentBuffer.commit,
        Stream.runCollect
      )
      expect(first).toEqual(range(0, 25))
      const second = yield* Stream.fromIterable(range(100, 3)).pipe(
        PersistentBuffer.viaAtLeastOnce(options),
        Stream.map((item) => item.map((n) => n * 2)),
        PersistentBuffer.commit,
        Stream.runCollect
      )
      expect(second).toEqual(range(25, 78).map((n) => n * 2))
      const third = yield* Stream.empty.pipe(PersistentBuffer.viaAtLeastOnce(options), PersistentBuffer.commit, Stream.runCollect)
      expect(third).toEqual([])
    }))

  itEffect("resumes right after the last commit when processing fails mid-stream", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-alo-fail")
      const options = { directory, takeChunkMax: 7 }
      const passed: Array<number> = []
      const error = yield* failureOf(Stream.fromIterable(range(0, 60)).pipe(
        PersistentBuffer.viaAtLeastOnce(options),
        Stream.mapEffect((item) => (item.value === 42 ? Effect.fail("processing failed" as const) : Effect.succeed(item))),
        PersistentBuffer.commit,
        Stream.tap((n) => Effect.sync(() => passed.push(n))),
        Stream.runDrain
      ))
      expect(error).toBe("processing failed")
      const resumed = yield* Stream.empty.pipe(PersistentBuffer.viaAtLeastOnce(options), PersistentBuffer.commit, Stream.runCollect)
      // Every element past the commit stage is committed; everything after is delivered again.
      expect(resumed).toEqual(range(passed.length, 60 - passed.length))
      expect(passed).toEqual(range(0, passed.length))
    }))

  itEffect("strict commit order fails with CommitOrder; lenient moves the cursor forward", () =>
    Effect.gen(function*() {
      const strict = yield* PersistentBuffer.make<number>({ directory: tempDir("buffer-strict"), commitOrder: "strict" })
      yield* strict.offerAll(range(0, 10))
      const items = yield* strict.takeCommittable(10)
      const outOfOrder = yield* failureOf(strict.commit([items[0]!, items[2]!]))
      expect(outOfOrder).toMatchObject({ _tag: "CommitOrder", expected: 1, received: 2 })
      yield* strict.commit([items[1]!, items[2]!])
      const lenientDirectory = tempDir("buffer-lenient")
      yield* Effect.scoped(Effect.gen(function*() {
        const lenient = yield* PersistentBuffer.make<number>({ directory: lenientDirectory })
        yield* lenient.offerAll(range(0, 10))
        const taken = yield* lenient.takeCommittable(10)
        // 5 moves the cursor to 6 (0..4 count as done); 3 is behind it and ignored.
        yield* lenient.commit([taken[5]!, taken[3]!])
      }))
      const reopened = yield* PersistentBuffer.make<number>({ directory: lenientDirectory })
      expect(yield* reopened.takeUpTo(100)).toEqual(range(6, 4))
    }))
})

describe("PersistentBuffer broadcast and space", () => {
  itEffect("lets a fast consumer run ahead of a slow one, keeping segments until the slow one commits", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-broadcast")
      const options = { directory, consumers: 2, durability: "none" as const, segmentBytesMax: 4096, codec: PersistentBuffer.text() }
      const input = range(0, 2000).map((n) => `element ${n}`)
      const [fast, slow] = yield* Stream.fromIterable(input).pipe(PersistentBuffer.broadcastAtLeastOnce(options))
      // The fast consumer finishes before the slow one has taken anything: nothing couples them.
      expect(yield* fast!.pipe(PersistentBuffer.commit, Stream.runCollect)).toEqual(input)
      expect(segments(directory)).toBeGreaterThanOrEqual(8)
      expect(yield* slow!.pipe(PersistentBuffer.commit, Stream.runCollect)).toEqual(input)
      expect(segments(directory)).toBe(1)
    }))

  itEffect("deletes a segment file exactly when the slowest consumer commits past it", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-reclaim")
      const buffer = yield* PersistentBuffer.make<string>({
        directory, consumers: 2, durability: "none", segmentBytesMax: 4096, codec: PersistentBuffer.text()
      })
      const [fast, slow] = buffer.consumers
      yield* buffer.offerAll(range(0, 2000).map((n) => `element ${n}`))
      const held = segments(directory)
      let taken = 0
      while (taken < 2000) taken += (yield* fast!.takeUpTo(300)).length
      expect(segments(directory)).toBe(held)
      taken = 0
      while (taken < 1000) taken += (yield* slow!.takeUpTo(1000 - taken)).length
      const midway = segments(directory)
      expect(midway).toBeLessThan(held)
      expect(midway).toBeGreaterThan(1)
      // Segments left start at or before the slow consumer's position.
      const firstLeft = Number(Fs.readdirSync(directory).filter((name) => name.endsWith(".segment")).sort()[0]!.slice(0, 20))
      expect(firstLeft).toBeLessThanOrEqual(1000)
      while (taken < 2000) taken += (yield* slow!.takeUpTo(300)).length
      expect(segments(directory)).toBe(1)
    }))

  itEffect("plain broadcast streams each get every element", () =>
    Effect.gen(function*() {
      const streams = yield* Stream.fromIterable(range(0, 5000)).pipe(PersistentBuffer.broadcast({ directory: tempDir("buffer-broadcast-3"), consumers: 3 }))
      const outputs = yield* Effect.all(streams.map((stream) => Stream.runCollect(stream)), { concurrency: "unbounded" })
      for (const output of outputs) expect(output).toEqual(range(0, 5000))
    }))

  itEffect("fails an offer past the size limit with BufferFull (policy fail), and accepts again once consumers free space", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-full")
      const buffer = yield* PersistentBuffer.make<string>({
        directory, durability: "none", segmentBytesMax: 4096, sizeBytesMax: 8192, whenFull: "fail", codec: PersistentBuffer.text()
      })
      const element = "x".repeat(92)
      let offered = 0
      let full: PersistentBuffer.BufferFull | undefined
      for (let round = 0; round < 200 && full === undefined; round++) {
        const exit = yield* Effect.exit(buffer.offerAll([element, element]))
        if (Exit.isSuccess(exit)) offered += 2
        else full = Cause.findErrorOption(exit.cause).pipe((error) => (error._tag === "Some" ? error.value as PersistentBuffer.BufferFull : undefined))
      }
      expect(full).toMatchObject({ _tag: "BufferFull", sizeBytesMax: 8192 })
      offered += full!.accepted
      expect((yield* buffer.size).diskBytes).toBeLessThanOrEqual(8192)
      let taken = 0
      while (taken < offered) taken += (yield* buffer.takeUpTo(100)).length
      yield* buffer.offerAll([element, element])
      expect(yield* buffer.takeUpTo(10)).toEqual([element, element])
    }))

  it("holds an offer at the size limit until a consumer frees space (policy backpressure)", async () => {
    const directory = tempDir("buffer-backpressure")
    const buffer = await PersistentBuffer.open({ directory, durability: "none", segmentBytesMax: 4096, sizeBytesMax: 8192, codec: PersistentBuffer.text() })
    const input = range(0, 1000).map((n) => `${n}`.padStart(60, "."))
    let done = false
    const offering = buffer.offerAll(input).then(() => (done = true))
    // 1,000 frames of 68 bytes need about 68 KiB: far past the limit, so the offer cannot finish alone.
    for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve))
    expect(done).toBe(false)
    expect(buffer.size().diskBytes).toBeLessThanOrEqual(8192)
    const output: Array<string> = []
    while (output.length < input.length) output.push(...await buffer.takeUpTo(64))
    await offering
    expect(done).toBe(true)
    expect(output).toEqual(input)
    await buffer.close()
  })
})

describe("PersistentBuffer Promise API", () => {
  it("offers, takes, commits envelopes and iterates until the input ends", async () => {
    const directory = tempDir("buffer-promise")
    const buffer = await PersistentBuffer.open<{ readonly n: number }>({ directory, consumers: 2 })
    await buffer.offer({ n: 0 })
    await buffer.offerAll(range(1, 99).map((n) => ({ n })))
    expect(await buffer.take()).toEqual({ n: 0 })
    const envelopes = await buffer.consumers[1]!.takeCommittable(10)
    expect(envelopes.map((item) => item.index)).toEqual(range(0, 10))
    await buffer.consumers[1]!.commit(envelopes)
    buffer.endInput()
    const seen: Array<number> = []
    for await (const element of buffer) seen.push(element.n)
    expect(seen).toEqual(range(1, 99))
    const rest: Array<number> = []
    for await (const element of buffer.consumers[1]!) {
      rest.push(element.n)
      if (rest.length === 20) break
    }
    await buffer.close()
    const reopened = await PersistentBuffer.open<{ readonly n: number }>({ directory, consumers: 2 })
    // The element in hand when the loop broke (29) is delivered again.
    expect((await reopened.consumers[1]!.takeUpTo(1000)).map((element) => element.n)).toEqual(range(29, 71))
    await expect(reopened.consumers[0]!.takeUpTo(0)).rejects.toMatchObject({ _tag: "InvalidArgument", field: "max" })
    await reopened.close()
    await expect(reopened.take()).rejects.toBeInstanceOf(PersistentBuffer.BufferClosed)
  })
})
