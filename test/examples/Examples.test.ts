/**
 * Goal: the examples run as their headers say.
 * Method: each compiled example in a child process over a temp directory, run twice where a
 * second run must find the first run's data; its output checked.
 */
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { promisify } from "node:util"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import { tempDir } from "../support/tempDir.js"

const run = promisify(execFile)
const example = (name: string) => Path.resolve(`dist/examples/${name}.js`)

describe("examples", () => {
  it("StoreComposition: LevelDB + prefix + metrics, data kept between runs", async () => {
    const directory = tempDir("example-store")
    const first = await run(process.execPath, [example("StoreComposition"), directory])
    assert.match(first.stdout + first.stderr, /appended at index 1/)
    const second = await run(process.execPath, [example("StoreComposition"), directory])
    assert.match(second.stdout + second.stderr, /appended at index 3/)
  })

  it("MatchFeed: a typed feed served by a node, exactly once across runs", async () => {
    const directory = tempDir("example-match")
    const first = await run(process.execPath, [example("MatchFeed"), directory])
    assert.match(first.stdout, /#3 Goal by Grace at 88'/)
    const second = await run(process.execPath, [example("MatchFeed"), directory])
    assert.match(second.stdout, /"duplicate":true/)
    assert.match(second.stdout, /3 events, last nonce 3/)
  })

  it("ScaleOut: two worker processes and a client, a graceful leave, data kept in Redis", async () => {
    const cluster = `example-${Math.random().toString(36).slice(2, 8)}`
    const first = await run(process.execPath, [example("ScaleOut"), inject("redisUrl"), cluster])
    assert.match(first.stdout, /20 counters after 5 increments each: 5\n/)
    assert.match(first.stdout, /after worker-a left, 5 more each: 10\n/)
    const second = await run(process.execPath, [example("ScaleOut"), inject("redisUrl"), cluster])
    assert.match(second.stdout, /after worker-a left, 5 more each: 20\n/)
  }, 60_000)
})
