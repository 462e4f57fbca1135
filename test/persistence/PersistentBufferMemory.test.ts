/**
 * PersistentBuffer keeps memory bounded over 10 million elements.
 *
 * Goal: memory does not grow with the number of elements passed or buffered: the buffer lives
 * on disk. Method: the compiled fixture `test/fixtures/bufferMemoryChild.js` streams 10,000,000
 * text elements (about 260 MB of frames) through `PersistentBuffer.via` in a child process run
 * with `--expose-gc` and a 160 MB old-space limit, forcing a collection before each of its 40
 * samples; its consumer pauses until the upstream is 120 MiB ahead on disk, so the backlog is
 * large too. The bounds are generous (64 MB of heap, 256 MB of RSS over the baseline) yet far below
 * what keeping the elements would cost (10M strings of ~16 characters: over 400 MB of heap,
 * which the old-space limit alone would turn into a crash). No assertion on time; the duration
 * is printed.
 */
import { spawnSync } from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { tempDir } from "../support/tempDir.js"

const COUNT = 10_000_000
const MIB = 1024 * 1024

describe("PersistentBuffer memory", () => {
  it("passes 10 million elements with bounded heap and RSS", () => {
    const directory = tempDir("buffer-memory")
    const child = spawnSync(
      process.execPath,
      ["--expose-gc", "--max-old-space-size=160", Path.resolve("dist/test/fixtures/bufferMemoryChild.js"), Path.join(directory, "buffer"), String(COUNT)],
      { encoding: "utf8", maxBuffer: 1024 * 1024 }
    )
    expect(child.status, child.stderr).toBe(0)
    const result = JSON.parse(child.stdout.trim().split("\n").at(-1)!)
    console.log(
      `10M elements in ${result.seconds.toFixed(1)} s; heap ${(result.baseline.heapUsed / MIB).toFixed(0)} -> peak ${(result.peak.heapUsed / MIB).toFixed(0)} MiB, ` +
        `RSS ${(result.baseline.rss / MIB).toFixed(0)} -> peak ${(result.peak.rss / MIB).toFixed(0)} MiB, ` +
        `external ${(result.peak.external / MIB).toFixed(0)} MiB, disk peak ${(result.peak.disk / MIB).toFixed(0)} MiB`
    )
    expect(result.received).toBe(COUNT)
    expect(result.ordered).toBe(true)
    expect(result.peak.heapUsed - result.baseline.heapUsed).toBeLessThan(64 * MIB)
    expect(result.peak.rss - result.baseline.rss).toBeLessThan(256 * MIB)
    // The pause did build a backlog of millions of elements on disk, not in memory.
    expect(result.peak.disk).toBeGreaterThan(100 * MIB)
  }, 180_000)
})
