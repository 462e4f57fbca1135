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
  it("StoreComposition: LevelDB + prefix + metrics, then the same on Redis, data kept between runs", async () => {
    const directory = tempDir("example-store")
    const first = await run(process.execPath, [example("StoreComposition"), directory])
    assert.match(first.stdout + first.stderr, /level: appended at index 1/)
    const second = await run(process.execPath, [example("StoreComposition"), directory])
    assert.match(second.stdout + second.stderr, /level: appended at index 3/)
    const withRedis = await run(process.execPath, [example("StoreComposition"), directory, inject("redisUrl")])
    assert.match(withRedis.stdout + withRedis.stderr, /level: appended at index 5/)
    assert.match(withRedis.stdout + withRedis.stderr, /redis: appended at index \d+/)
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

  it("Cluster: a Redis and three workers sharing the shards, every dashboard printed", async () => {
    // Stopped (SIGTERM, then at most 10 s for its processes) before the test's own timeout, so a
    // run that hangs fails with what it printed.
    const { stdout } = await run(process.execPath, [example("Cluster"), "--seconds", "1"], { timeout: 45_000 }).catch((error: { stdout?: string; stderr?: string; signal?: string }) => {
      throw new Error(`the Cluster example failed (${error.signal ?? "exit"}):\n${error.stdout ?? ""}\n${error.stderr ?? ""}`)
    })
    assert.match(stdout, /3 workers own \d+ \+ \d+ \+ \d+ of 1024 shards/)
    assert.match(stdout, /worker-3 reads match-3: \{"feed":"match-3","count":1/)
    assert.equal(stdout.match(/dashboard of worker-\d: http:\/\/127\.0\.0\.1:\d+\/dashboard/g)?.length, 3)
  }, 60_000)
})
