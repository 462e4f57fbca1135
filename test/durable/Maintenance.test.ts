/**
 * Goal: maintenance schedules run once per period across workers, retention trimming reaches
 * feeds that get no appends, record compaction merges the records of feeds appended to one item
 * at a time, periodic dumps are written, and runs show in `status` and metrics.
 * Method: (1) three real worker processes (the compiled `test/fixtures/durableChild.js`) run the
 * same `tick` schedule every 500 ms for a few seconds, each run recording its period in Redis;
 * every recorded period must appear once. (2) In-process, a node on the memory store with a feed
 * type whose clock the test moves, a retention task, a compaction task and a dump task, checked
 * through the feed client, the store's records, the dump directory, `status` and the metric
 * registry. Real Redis, random prefixes.
 */
import { Effect, Layer, ManagedRuntime, Metric, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as RedisConnection from "../../persistence/RedisConnection.js"
import * as Maintenance from "../../src/durable/Maintenance.js"
import * as Feed from "../../src/feed/Feed.js"
import { tempDir } from "../support/tempDir.js"
import { testPrefix } from "./support.js"

const url = inject("redisUrl")
const fixture = Path.resolve("dist/test/fixtures/durableChild.js")
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const startWorker = (args: ReadonlyArray<string>) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, ...args], { stdio: ["ignore", "pipe", "inherit"] })
    let output = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("ready")) resolve(child)
    })
    child.once("exit", (code) => reject(new Error(`maintenance worker exited (${code}) before it was ready`)))
  })

const stopWorker = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

describe("maintenance", () => {
  it("runs a schedule once per period with three workers up", async () => {
    const prefix = testPrefix("ticks")
    const every = 500
    const workers = await Promise.all(["w1", "w2", "w3"].map((name) => startWorker(["maintenance", url, prefix, name, String(every)])))
    try {
      await sleep(5_000)
    } finally {
      await Promise.all(workers.map(stopWorker))
    }
    const ticks = await Effect.runPromise(Effect.scoped(Effect.flatMap(RedisConnection.make({ url }), (redis) =>
      Effect.promise(() => redis.client.lrange(`${prefix}:ticks`, 0, -1)))))
    const periods = ticks.map((line) => Number(line.split(" ")[1]))
    const counts = new Map<number, number>()
    for (const period of periods) counts.set(period, (counts.get(period) ?? 0) + 1)
    assert.ok(counts.size >= 4, `the schedule ran in at least 4 periods of 5 s of 500 ms: ${ticks.join(", ")}`)
    for (const [period, count] of counts) assert.equal(count, 1, `period ${period} ran once: ${ticks.join(", ")}`)
    const sorted = [...counts.keys()].sort((a, b) => a - b)
    for (let i = 1; i < sorted.length; i++) {
      // BullMQ offsets an `every` schedule from its first registration; periods stay `every` apart.
      assert.equal((sorted[i]! - sorted[0]!) % every, 0, `periods are a whole number of periods apart: ${ticks.join(", ")}`)
    }
    console.log(`maintenance: ${counts.size} periods, run by ${new Set(ticks.map((line) => line.split(" ")[0])).size} of the 3 workers`)
  }, 60_000)

  it("shows a schedule's last run on any process, not only on the one that ran it", async () => {
    const prefix = testPrefix("last-run")
    let ran = 0
    const task = (schedule: Maintenance.Task["schedule"]): Maintenance.Task => ({ id: "tick", schedule, run: () => Effect.sync(() => void ran++) })
    const first = ManagedRuntime.make(Maintenance.layer({ url, prefix, tasks: [task({ everyMillis: 200 })] }))
    try {
      await first.runPromise(Effect.void)
      const deadline = Date.now() + 20_000
      while (ran < 2) {
        if (Date.now() > deadline) throw new Error("the schedule did not run")
        await sleep(50)
      }
    } finally {
      await first.dispose()
    }
    // A second process registers the same task on the first of January (the last one started
    // wins), so it runs nothing during the test: what it reports is the first process's run,
    // kept in the queue.
    const second = ManagedRuntime.make(Maintenance.layer({ url, prefix, tasks: [task({ pattern: "0 0 1 1 *" })] }))
    try {
      const [status] = await second.runPromise(Effect.flatMap(Maintenance.Maintenance, (maintenance) => maintenance.status))
      assert.deepEqual(status!.runs, { ok: 0, error: 0 }, "this process ran nothing")
      assert.ok(status!.lastRun !== null && status!.lastRun.outcome === "ok", `the other process's last run is shown: ${JSON.stringify(status)}`)
      assert.ok(status!.lastRun.at <= Date.now() && status!.lastRun.at > Date.now() - 30_000)
    } finally {
      await second.dispose()
    }
  }, 60_000)

  it("trims feeds that get no appends, compacts records, writes dumps, and shows runs in status and metrics", async () => {
    const clock = { now: 1_000_000 }
    const Aging = Feed.define("aging", { entry: Schema.Json, retention: { maxAgeMillis: 60_000 }, clock: () => clock.now })
    const Trickle = Feed.define("trickle", { entry: Schema.Number, limits: { recordEntriesMax: 8 } })
    const dumps = tempDir("maintenance-dumps")
    const node = Layer.mergeAll(Feed.layer(Aging), Feed.layer(Trickle)).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(MemoryStore.layer),
      Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16 }))
    )
    const runtime = ManagedRuntime.make(Maintenance.layer({
      url,
      prefix: testPrefix("maint"),
      tasks: [
        Maintenance.feedRetention(Aging, { everyMillis: 200 }),
        Maintenance.feedCompaction(Trickle, { everyMillis: 200 }),
        Maintenance.dump({ directory: dumps, schedule: { everyMillis: 300 }, keep: 2 })
      ]
    }).pipe(Layer.provideMerge(node)))
    try {
      const feeds = await runtime.runPromise(Feed.client(Aging))
      for (let i = 0; i < 3; i++) await runtime.runPromise(Effect.orDie(feeds.append(`old-${i}`, [{ value: { i } }, { value: { i, more: true } }])))
      // Two feeds appended to one item per commit: a record per item until compaction merges them.
      const trickle = await runtime.runPromise(Feed.client(Trickle))
      for (let i = 1; i <= 20; i++) {
        for (const id of ["slow-a", "slow-b"]) await runtime.runPromise(Effect.orDie(trickle.append(id, [{ value: i }])))
      }
      const records = (id: string) =>
        runtime.runPromise(Effect.gen(function*() {
          const store = yield* KeyValueStore
          const entities = yield* EntityRuntime.EntityRuntime
          return (yield* store.scan(String(entities.shardOf(Trickle.type, id)), `${Trickle.type}.records`, { prefix: Buffer.from(`${id}\u0000`) })).length
        }).pipe(Effect.orDie))
      // Time passes for the feeds, and nothing is appended any more: only the schedule can trim.
      clock.now += 120_000
      const deadline = Date.now() + 30_000
      for (;;) {
        const counts = await Promise.all([0, 1, 2].map((i) => runtime.runPromise(Effect.map(Effect.orDie(feeds.page(`old-${i}`)), (page) => page.items.length))))
        if (counts.every((count) => count === 0)) break
        if (Date.now() > deadline) throw new Error(`the retention schedule did not trim: ${counts.join(", ")}`)
        await sleep(50)
      }
      // Offsets 1-19 in records of 8, then the tail.
      while ((await records("slow-a")) !== 4 || (await records("slow-b")) !== 4) {
        if (Date.now() > deadline) throw new Error(`the compaction schedule did not merge: ${await records("slow-a")}, ${await records("slow-b")} records`)
        await sleep(50)
      }
      for (const id of ["slow-a", "slow-b"]) {
        const page = await runtime.runPromise(Effect.orDie(trickle.page(id, { limit: 100 })))
        assert.deepEqual(page.items.map((item) => item.value), Array.from({ length: 20 }, (_, i) => i + 1))
      }
      for (;;) {
        const written = Fs.readdirSync(dumps).filter((file) => file.endsWith(".gz"))
        if (written.length >= 2) break
        if (Date.now() > deadline) throw new Error("no dumps were written")
        await sleep(50)
      }
      assert.ok(Fs.readdirSync(dumps).filter((file) => file.endsWith(".gz")).length <= 3, "old dumps are removed (keep 2, one may be in the making)")
      const status = await runtime.runPromise(Effect.flatMap(Maintenance.Maintenance, (maintenance) => maintenance.status))
      assert.deepEqual(status.map((schedule) => schedule.task), ["retention.feed.aging", "compaction.feed.trickle", "dump"])
      for (const schedule of status) {
        assert.ok(schedule.runs.ok >= 1, `${schedule.task} ran`)
        assert.ok(schedule.next !== null && schedule.next > 0, `${schedule.task} has a next run`)
      }
      const snapshots = await runtime.runPromise(Metric.snapshot)
      const runs = snapshots.filter((snapshot) => snapshot.id === "shardfeed_maintenance_runs_total" && snapshot.attributes?.task === "dump" && snapshot.attributes?.outcome === "ok")
      assert.ok(runs.some((snapshot) => Number((snapshot.state as { count?: number }).count) >= 1), "runs are counted in metrics")
    } finally {
      await runtime.dispose()
    }
  })
})
