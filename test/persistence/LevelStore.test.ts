/**
 * The LevelDB backend against the shared conformance suite, plus what only it has: data survives
 * closing and reopening the directory, and a directory held by another process is `StoreLocked`.
 */
import { spawn } from "node:child_process"
import { Effect, Exit, Cause, Layer, ManagedRuntime } from "effect"
import { describe, expect, it } from "vitest"
import { IndexedStore } from "../../persistence/IndexedStore.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import { suite } from "../conformance/StoreSuite.js"
import { tempDir } from "../support/tempDir.js"

suite("level backend", () => LevelStore.layer({ directory: tempDir("level-conformance") }))

describe("level backend on disk", () => {
  it("keeps values, topic positions and epochs across close and reopen", async () => {
    const directory = tempDir("level-reopen")
    const first = ManagedRuntime.make(LevelStore.layer({ directory }))
    await first.runPromise(Effect.gen(function*() {
      const store = yield* KeyValueStore
      const indexed = yield* IndexedStore
      yield* store.put("p1", "ns", "k", "v")
      yield* indexed.append("p1", "t", ["a", "b"])
      yield* store.registerEpoch("p1", 4)
    }))
    await first.dispose()
    const second = ManagedRuntime.make(LevelStore.layer({ directory }))
    const [value, position, epoch, fenced] = await second.runPromise(Effect.gen(function*() {
      const store = yield* KeyValueStore
      const indexed = yield* IndexedStore
      return [
        yield* store.get("p1", "ns", "k"),
        yield* indexed.position("p1", "t"),
        yield* store.epoch("p1"),
        yield* Effect.exit(store.put("p1", "ns", "k", "stale", { epoch: 3 }))
      ] as const
    }))
    await second.dispose()
    expect(Buffer.from(value!).toString()).toBe("v")
    expect(position).toBe(2)
    expect(epoch).toBe(4)
    expect(Exit.isFailure(fenced)).toBe(true)
  })

  it("refuses a directory held by another process with StoreLocked naming it", async () => {
    const directory = tempDir("level-locked")
    const holder = spawn(process.execPath, ["-e", `
      const { ClassicLevel } = require("classic-level");
      const db = new ClassicLevel(${JSON.stringify(directory)});
      db.open().then(() => process.stdout.write("open\\n"));
      setInterval(() => {}, 1000);
    `], { stdio: ["ignore", "pipe", "inherit"], cwd: process.cwd() })
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("open") && resolve())
        holder.once("exit", () => reject(new Error("holder exited")))
      })
      const exit = await Effect.runPromiseExit(Layer.build(LevelStore.layer({ directory })).pipe(Effect.scoped))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = Cause.findErrorOption(exit.cause)
        expect(error._tag === "Some" ? error.value : undefined).toMatchObject({ _tag: "StoreLocked", directory })
      }
    } finally {
      holder.kill("SIGKILL")
    }
  })
})
