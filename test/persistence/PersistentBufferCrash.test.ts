/**
 * PersistentBuffer under SIGKILL: 20 kills of a process that streams into the buffer and
 * consumes from it at least once, at random points, then a final drain.
 *
 * Goal: after every restart, every element whose offer was acknowledged before the kill is
 * delivered (now or later), no element whose commit was acknowledged is ever delivered again,
 * deliveries keep buffer order, and nothing has holes. Method: the compiled fixture
 * `test/fixtures/bufferCrashChild.js` logs each acknowledgement, delivery and commit with a
 * synchronous write after it happened; this test kills it (a quarter of the time during
 * start-up and recovery, otherwise while it runs), varies the durability policy per run, and
 * checks the invariants from the outside on the logs. A kill cannot tear a write (the kernel
 * finishes a write to the page cache), so after a third of the kills the test appends a torn
 * frame itself, as a partial write of an unacknowledged batch would leave, and checks that the
 * next open cuts exactly it. The seed is printed; set
 * `BUFFER_CRASH_SEED` to replay a run's choices (kill times still depend on the scheduler,
 * which is why the invariants must hold for any timing).
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { crc32c } from "../../persistence/internal/bufferChecksum.js"
import * as PersistentBuffer from "../../persistence/PersistentBuffer.js"
import { tempDir } from "../support/tempDir.js"
import { random as generator } from "../support/random.js"

const KILLS = 20
const fixture = Path.resolve("dist/test/fixtures/bufferCrashChild.js")
const options = { segmentBytesMax: 16 * 1024, writeBatchBytes: 4096, indexSpacingBytes: 4096 }


/** An element as a comparable number: run r, sequence s (s < 10^7 per run). */
const order = (r: number, s: number) => r * 10_000_000 + s
const parse = (text: string) => {
  const [r, s] = text.split(":").map(Number)
  return order(r!, s!)
}

interface RunLog {
  readonly acked: number
  readonly delivered: ReadonlyArray<number>
  readonly committed: ReadonlyArray<number>
  readonly errors: ReadonlyArray<string>
}

const readLog = (file: string, run: number): RunLog => {
  const text = Fs.existsSync(file) ? Fs.readFileSync(file, "utf8") : ""
  let acked = -1
  const delivered: Array<number> = []
  const committed: Array<number> = []
  const errors: Array<string> = []
  // The last line may be cut by the kill: only complete lines count.
  for (const line of text.split("\n").slice(0, -1)) {
    const [kind, ...rest] = line.split(" ")
    if (kind === "A") acked = Math.max(acked, order(run, Number(rest[0])))
    else if (kind === "D") delivered.push(...rest.map(parse))
    else if (kind === "C") committed.push(parse(rest[0]!))
    else if (kind === "E") errors.push(rest.join(" "))
  }
  return { acked, delivered, committed, errors }
}

/** Spawns the child for one run and kills it at a random point; resolves when it is gone. */
const killedRun = (directory: string, run: number, durability: string, random: () => number, logFile: string) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, directory, String(run), durability, String(Math.floor(random() * 2 ** 31)), logFile], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const early = random() < 0.25
    const delayMillis = early ? Math.floor(random() * 300) : 30 + Math.floor(random() * 400)
    const kill = () => setTimeout(() => child.kill("SIGKILL"), delayMillis)
    if (early) kill()
    else {
      let output = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        if (output.includes("ready")) return
        output += chunk.toString()
        if (output.includes("ready")) kill()
      })
    }
    child.once("error", reject)
    child.once("exit", (code, signal) => (signal === "SIGKILL" ? resolve() : reject(new Error(`child exited with ${code} before the kill`))))
  })

/**
 * Appends a torn frame to the newest segment: half the time a header declaring more bytes than
 * follow, otherwise a whole frame whose checksum is off by one bit. Returns its size (0 when
 * there is no segment yet).
 */
const tearTail = (directory: string, random: () => number): number => {
  const segments = Fs.existsSync(directory) ? Fs.readdirSync(directory).filter((name) => name.endsWith(".segment")).sort() : []
  if (segments.length === 0) return 0
  const present = 1 + Math.floor(random() * 40)
  const frame = Buffer.alloc(8 + present, 0x5a)
  const short = random() < 0.5
  frame.writeUInt32LE(short ? present + 1 + Math.floor(random() * 50) : present, 4)
  frame.writeUInt32LE((crc32c(frame, 4, 8 + present) ^ (short ? 0 : 1)) >>> 0, 0)
  Fs.appendFileSync(Path.join(directory, segments.at(-1)!), frame)
  return frame.length
}

/** Opens and closes the buffer in-process: the open must cut exactly the torn frame. */
const expectCut = async (directory: string, bytes: number) => {
  const buffer = await PersistentBuffer.open({ directory, ...options })
  expect(buffer.recovery.tornTail?.bytesCut).toBe(bytes)
  await buffer.close()
}

/** Drains what is left in-process, at least once with commits, as the last "run". */
const drain = async (directory: string): Promise<ReadonlyArray<number>> => {
  const buffer = await PersistentBuffer.open<{ readonly r: number; readonly s: number }>({ directory, ...options })
  const delivered: Array<number> = []
  while (buffer.size().published > (buffer.size().consumers[0]?.next ?? 0)) {
    const items = await buffer.takeCommittable(1000)
    delivered.push(...items.map((item) => order(item.value.r, item.value.s)))
    await buffer.commit(items)
  }
  await buffer.close()
  return delivered
}

describe("PersistentBuffer crash recovery", () => {
  it(`keeps acknowledged elements, never redelivers committed ones, and keeps order over ${KILLS} SIGKILLs`, async () => {
    const seed = Number(process.env.BUFFER_CRASH_SEED ?? Date.now() % 2 ** 31)
    console.log(`PersistentBuffer crash test seed: ${seed} (replay with BUFFER_CRASH_SEED=${seed})`)
    const random = generator(seed)
    const directory = tempDir("buffer-crash")
    const logs: Array<RunLog> = []
    let tornInjected = 0
    for (let run = 0; run < KILLS; run++) {
      const durability = (["none", "interval", "batch"] as const)[Math.floor(random() * 3)]!
      const logFile = Path.join(directory, `run-${run}.log`)
      await killedRun(Path.join(directory, "buffer"), run, durability, random, logFile)
      logs.push(readLog(logFile, run))
      if (random() < 0.33) {
        // The kill itself may have torn the last frame: recover that first, so the cut checked
        // below is the injected frame's alone.
        await (await PersistentBuffer.open({ directory: Path.join(directory, "buffer"), ...options })).close()
        const torn = tearTail(Path.join(directory, "buffer"), random)
        if (torn > 0) await expectCut(Path.join(directory, "buffer"), torn)
        if (torn > 0) tornInjected++
      }
    }
    const final = await drain(Path.join(directory, "buffer"))
    const runs = [...logs.map((log) => log.delivered), final]

    expect(logs.flatMap((log) => log.errors)).toEqual([])
    // Order: within a run, deliveries strictly increase (buffer order, no duplicates).
    runs.forEach((delivered, run) => {
      const disorder = delivered.findIndex((element, i) => i > 0 && element <= delivered[i - 1]!)
      expect(disorder, `run ${run}: delivery ${disorder} is not after the one before it`).toBe(-1)
    })
    // Committed never again: a run delivers only elements after everything committed before it.
    let committedMax = -1
    runs.forEach((delivered, run) => {
      if (delivered.length > 0) expect(delivered[0]!, `run ${run} delivered a committed element again`).toBeGreaterThan(committedMax)
      for (const element of logs[run]?.committed ?? []) committedMax = Math.max(committedMax, element)
    })
    // Acknowledged means delivered, and no holes: per producing run, the delivered sequence
    // numbers form 0..m with m at least the last acknowledged one.
    const seen = new Map<number, Set<number>>()
    for (const element of runs.flat()) {
      const run = Math.floor(element / 10_000_000)
      if (!seen.has(run)) seen.set(run, new Set())
      seen.get(run)!.add(element % 10_000_000)
    }
    logs.forEach((log, run) => {
      const sequence = seen.get(run) ?? new Set<number>()
      const acked = log.acked < 0 ? -1 : log.acked % 10_000_000
      expect(sequence.size).toBeGreaterThanOrEqual(acked + 1)
      for (let s = 0; s < sequence.size; s++) if (!sequence.has(s)) expect.fail(`run ${run}: element ${s} missing of ${sequence.size}`)
    })
    const acknowledged = logs.reduce((sum, log) => sum + (log.acked < 0 ? 0 : (log.acked % 10_000_000) + 1), 0)
    console.log(
      `crash test: ${acknowledged} acknowledged, ${runs.flat().length} delivered (${runs.flat().length - new Set(runs.flat()).size} again after a crash), ` +
        `${tornInjected} torn frames appended and cut`
    )
  }, 240_000)
})
