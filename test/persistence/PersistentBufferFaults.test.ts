/**
 * PersistentBuffer against bad input and bad disks: locked, stale-locked and unwritable
 * directories, damaged segments and indexes, bad options, oversized elements, plus the file
 * mechanics those depend on (large frames, index seeks, time rolls, every durability policy).
 *
 * Goal: every such case ends in the typed error the contract names (or, for a stale lock, a
 * takeover that is reported), never in a crash, a hang or silently wrong data. Method: real
 * files in temp directories, damaged by hand between a close and a reopen; real second
 * processes (the compiled `test/fixtures/bufferOpen.js`) for locks and permissions.
 */
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as PersistentBuffer from "../../persistence/PersistentBuffer.js"
import { itEffect } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i)
const fixture = Path.resolve("dist/test/fixtures/bufferOpen.js")
/** Inverts one byte: damage no checksum can miss. */
const flip = (bytes: Buffer, at: number) => bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at)
const names = (directory: string, suffix: string) => Fs.readdirSync(directory).filter((name) => name.endsWith(suffix)).sort()

/** Runs the fixture in `try` mode (as `uid` when given) and returns what it printed. */
const tryOpen = (directory: string, uid?: number): { ok?: boolean; error?: Record<string, unknown> } => {
  const result = spawnSync(process.execPath, [fixture, "try", directory], {
    encoding: "utf8",
    ...(uid === undefined ? {} : { uid, gid: uid })
  })
  return JSON.parse(result.stdout.trim().split("\n").at(-1)!)
}

/** A pid that belonged to a process that has exited. */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" })
  return Number(child.stdout)
}

describe("PersistentBuffer directory lock", () => {
  it("refuses a directory held by another process with BufferLocked naming its pid", async () => {
    const directory = tempDir("buffer-locked")
    const holder = spawn(process.execPath, [fixture, "hold", directory], { stdio: ["ignore", "pipe", "inherit"] })
    try {
      const pid = await new Promise<number>((resolve, reject) => {
        let output = ""
        holder.stdout!.on("data", (chunk: Buffer) => {
          output += chunk.toString()
          const match = /open (\d+)\n/.exec(output)
          if (match !== null) resolve(Number(match[1]))
        })
        holder.once("exit", () => reject(new Error("holder exited")))
      })
      await expect(PersistentBuffer.open({ directory })).rejects.toMatchObject({ _tag: "BufferLocked", pid })
    } finally {
      holder.kill("SIGKILL")
    }
  })

  it("refuses a second open in the same process while the first is open, and allows it after close", async () => {
    const directory = tempDir("buffer-locked-here")
    const first = await PersistentBuffer.open({ directory })
    await expect(PersistentBuffer.open({ directory })).rejects.toMatchObject({ _tag: "BufferLocked", pid: process.pid })
    await first.close()
    const second = await PersistentBuffer.open({ directory })
    await second.close()
    expect(Fs.existsSync(Path.join(directory, "buffer.lock"))).toBe(false)
  })

  it("takes over a stale lock left by a dead process, and reports it", async () => {
    const directory = tempDir("buffer-stale")
    const pid = deadPid()
    Fs.writeFileSync(Path.join(directory, "buffer.lock"), `${pid}\n`)
    const buffer = await PersistentBuffer.open({ directory })
    expect(buffer.recovery.staleLockPid).toBe(pid)
    expect(Fs.readFileSync(Path.join(directory, "buffer.lock"), "utf8").trim()).toBe(String(process.pid))
    await buffer.close()
    // Our own pid in a lock no buffer of ours holds: a previous process with our pid died.
    Fs.writeFileSync(Path.join(directory, "buffer.lock"), `${process.pid}\n`)
    const again = await PersistentBuffer.open({ directory })
    expect(again.recovery.staleLockPid).toBe(process.pid)
    await again.close()
  })
})

describe("PersistentBuffer unusable directories", () => {
  it("fails with BufferIoError (EACCES) on a directory it may not write", () => {
    const directory = tempDir("buffer-readonly")
    // Root ignores permissions, so as root the fixture runs as `nobody`; otherwise the mode suffices.
    const asRoot = process.getuid?.() === 0
    Fs.chmodSync(directory, 0o555)
    try {
      const outcome = tryOpen(Path.join(directory, "buffer"), asRoot ? 65534 : undefined)
      expect(outcome.error).toMatchObject({ _tag: "BufferIoError", code: "EACCES" })
    } finally {
      Fs.chmodSync(directory, 0o755)
    }
  })

  it("fails with BufferIoError when the path is a file", async () => {
    const file = Path.join(tempDir("buffer-notdir"), "file")
    Fs.writeFileSync(file, "not a directory")
    await expect(PersistentBuffer.open({ directory: file })).rejects.toMatchObject({ _tag: "BufferIoError", code: "EEXIST" })
    await expect(PersistentBuffer.open({ directory: Path.join(file, "below") })).rejects.toMatchObject({ _tag: "BufferIoError", code: "ENOTDIR" })
  })

  it("names the bad field of bad options with InvalidArgument", async () => {
    const directory = tempDir("buffer-options")
    await expect(PersistentBuffer.open({ directory: "" })).rejects.toMatchObject({ _tag: "InvalidArgument", field: "directory" })
    await expect(PersistentBuffer.open({ directory, consumers: 0 })).rejects.toMatchObject({ field: "consumers" })
    await expect(PersistentBuffer.open({ directory, segmentBytesMax: 65536, sizeBytesMax: 100_000 })).rejects.toMatchObject({ field: "sizeBytesMax" })
    await expect(PersistentBuffer.open({ directory, durability: "sometimes" as never })).rejects.toMatchObject({ field: "durability" })
    await expect(PersistentBuffer.open({ directory, segmentBytesMax: 4096, elementBytesMax: 8192 })).rejects.toMatchObject({ field: "elementBytesMax" })
  })
})

describe("PersistentBuffer corruption", () => {
  const small = { codec: PersistentBuffer.text(), durability: "none" as const, segmentBytesMax: 65536, writeBatchBytes: 4096, indexSpacingBytes: 4096 }

  const filled = async (label: string, count: number) => {
    const directory = tempDir(label)
    const buffer = await PersistentBuffer.open({ ...small, directory })
    // One offer per element: each write batch holds only a few frames, so the index gets entries.
    for (let n = 0; n < count; n += 50) await buffer.offerAll(range(n, 50).map((i) => `element ${i} `.padEnd(64, "#")))
    await buffer.close()
    return directory
  }

  it("fails a read through a damaged sealed segment with BufferCorrupt naming file and offset", async () => {
    const directory = await filled("buffer-corrupt-sealed", 3000)
    const first = names(directory, ".segment")[0]!
    expect(names(directory, ".segment").length).toBeGreaterThan(1)
    const bytes = Fs.readFileSync(Path.join(directory, first))
    flip(bytes, 32 + 8 + 200 * 72)
    Fs.writeFileSync(Path.join(directory, first), bytes)
    const buffer = await PersistentBuffer.open({ ...small, directory })
    expect((await buffer.takeUpTo(200)).length).toBe(200)
    await expect(buffer.take()).rejects.toMatchObject({ _tag: "BufferCorrupt", file: first, offset: 32 + 200 * 72 })
    await buffer.close()
  })

  it("refuses to open when the frame at the last durable index entry is damaged", async () => {
    const directory = await filled("buffer-corrupt-index", 1500)
    const last = names(directory, ".segment").at(-1)!
    const index = Fs.readFileSync(Path.join(directory, last.replace(".segment", ".index")))
    expect(index.length).toBeGreaterThan(0)
    const offset = index.readUInt32LE(index.length - 16 + 8)
    const bytes = Fs.readFileSync(Path.join(directory, last))
    flip(bytes, offset + 12)
    Fs.writeFileSync(Path.join(directory, last), bytes)
    await expect(PersistentBuffer.open({ ...small, directory })).rejects.toMatchObject({ _tag: "BufferCorrupt", file: last, offset })
    // A segment cut shorter than its durable index says is corruption too, not a torn tail.
    Fs.truncateSync(Path.join(directory, last), offset - 10)
    await expect(PersistentBuffer.open({ ...small, directory })).rejects.toMatchObject({ _tag: "BufferCorrupt" })
  })

  it("refuses to open a segment with a damaged header", async () => {
    const directory = await filled("buffer-corrupt-header", 100)
    const segment = Path.join(directory, names(directory, ".segment")[0]!)
    const bytes = Fs.readFileSync(segment)
    flip(bytes, 14)
    Fs.writeFileSync(segment, bytes)
    await expect(PersistentBuffer.open({ ...small, directory })).rejects.toMatchObject({ _tag: "BufferCorrupt", offset: 0 })
  })

  it("resumes a cursor in the middle of an indexed segment (a seek through the sparse index)", async () => {
    const directory = await filled("buffer-seek", 3000)
    const first = await PersistentBuffer.open({ ...small, directory })
    let taken = 0
    while (taken < 2777) taken += (await first.takeUpTo(2777 - taken)).length
    await first.close()
    const second = await PersistentBuffer.open({ ...small, directory })
    expect(await second.take()).toBe("element 2777 ".padEnd(64, "#"))
    await second.close()
  })
})

describe("PersistentBuffer file mechanics", () => {
  itEffect("stores elements larger than the write batch, and refuses ones over elementBytesMax", () =>
    Effect.gen(function*() {
      const buffer = yield* PersistentBuffer.make<string>({
        directory: tempDir("buffer-large"), codec: PersistentBuffer.text(), writeBatchBytes: 4096, readChunkBytes: 4096, elementBytesMax: 50_000
      })
      const large = "L".repeat(20_000)
      yield* buffer.offerAll(["small", large, "é".repeat(9000), "after"])
      expect(yield* buffer.takeUpTo(10)).toEqual(["small", large, "é".repeat(9000), "after"])
      const error = yield* Effect.flip(buffer.offer("x".repeat(50_001)))
      expect(error).toMatchObject({ _tag: "InvalidArgument", field: "element" })
    }))

  itEffect("rolls a segment by age when segmentRollMillis is set", () =>
    Effect.gen(function*() {
      const directory = tempDir("buffer-roll-time")
      const buffer = yield* PersistentBuffer.make<number>({ directory, segmentRollMillis: 1, durability: "none" })
      yield* buffer.offer(1)
      yield* Effect.sleep("10 millis")
      yield* buffer.offer(2)
      expect(names(directory, ".segment").length).toBe(2)
      expect(yield* buffer.takeUpTo(10)).toEqual([1, 2])
    }))

  for (const durability of ["none", "interval", "batch"] as const) {
    it(`keeps acknowledged elements and commits across a reopen under durability ${durability}`, async () => {
      const directory = tempDir(`buffer-${durability}`)
      const options = { directory, durability, fsyncIntervalMillis: 5, segmentBytesMax: 8192, codec: PersistentBuffer.text() }
      const first = await PersistentBuffer.open(options)
      await Promise.all(range(0, 40).map((n) => first.offerAll(range(n * 25, 25).map(String))))
      const taken = await first.takeUpTo(333)
      await first.close()
      const second = await PersistentBuffer.open(options)
      const rest: Array<string> = []
      while (rest.length < 1000 - taken.length) rest.push(...await second.takeUpTo(1000))
      expect([...taken, ...rest].map(Number).sort((a, b) => a - b)).toEqual(range(0, 1000))
      await second.close()
    })
  }
})
