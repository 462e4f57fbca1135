/**
 * `npm run bench -- bullmq [--jobs 100000] [--sends 30000]`: durable work on BullMQ against raw
 * BullMQ, in one run, on a private redis-server (persistence off) started for the benchmark.
 *
 * - ingest: `jobs` jobs with 100-byte payloads spread over 1,000 feeds, added up front, appended
 *   to feeds (LevelDB, the embedded default) by the ingest bridge, vs a raw BullMQ `Worker` at
 *   concurrency 50 draining an identical queue with a no-op processor;
 * - durable sends end to end: `sends` messages to 1,000 entities, 50 senders at once, each message
 *   handled by its entity (in memory, no store writes: the durable machinery is what is measured),
 *   vs raw BullMQ: 50 concurrent `Queue.add` loops and a `Worker` at concurrency 50 (no-op).
 *
 * Both sides run in this one process, as a user's worker would, sharing the machine's cores with
 * Redis. `--rounds` (default 3) alternates each contender with its baseline and compares medians;
 * every round's figures are printed, with the CPU seconds Node and Redis spent (the drain figures
 * include filling the queue). Targets are ≥ 0.8× for both.
 */
import { Queue, Worker } from "bullmq"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as DurableMessages from "../../src/durable/DurableMessages.js"
import * as IngestBridge from "../../src/durable/IngestBridge.js"
import * as Feed from "../../src/feed/Feed.js"
import * as Os from "node:os"
import * as Path from "node:path"
import { startRedis } from "../support/RedisServer.js"
import { median, options, report, type Row } from "./report.js"

const PAYLOAD = "x".repeat(100)
const FEEDS = 1_000
const ENTITIES = 1_000
const CONCURRENCY = 50

/** Counts what it is told, in memory. */
const Tally = Rpc.make("Tally", { payload: { n: Schema.Number }, success: Schema.Number })
const Tallies = Entity.make("tally", [Tally])
let tallied = 0
const TallyBehavior = Entity.direct(Tallies, {
  recover: () => Effect.succeed(0),
  handlers: {
    Tally: ({ n }, context) =>
      Effect.sync(() => {
        tallied++
        context.setState(context.state + n)
        return context.state + n
      })
  }
})

/** CPU seconds used so far by this process and by the redis-server on `port` (Linux /proc), for the notes. */
const cpu = (port: number) => {
  let redis = Number.NaN
  try {
    const pid = execFileSync("pgrep", ["-f", `redis-server .*:${port}$`]).toString().trim().split("\n")[0]!
    const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    redis = (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    // Not Linux, or no pgrep: the figures stay NaN.
  }
  const usage = process.cpuUsage()
  return { node: (usage.user + usage.system) / 1e6, redis }
}

/** Runs `f` and answers its result with the CPU seconds Node and Redis spent meanwhile. */
const measured = async <A>(port: number, f: () => Promise<A>) => {
  const before = cpu(port)
  const wall = performance.now()
  const result = await f()
  const after = cpu(port)
  return { result, wallSeconds: (performance.now() - wall) / 1000, nodeSeconds: after.node - before.node, redisSeconds: after.redis - before.redis }
}

const waitUntil = async (done: () => boolean) => {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 2))
}

/** Adds `count` jobs of 100-byte payloads over 1,000 feeds (nonce per feed), in bulks of 1,000. */
const fill = async (queue: Queue, count: number) => {
  for (let start = 0; start < count; start += 1_000) {
    await queue.addBulk(Array.from({ length: Math.min(1_000, count - start) }, (_, i) => {
      const n = start + i
      return { name: "event", data: { feed: `f${n % FEEDS}`, n: Math.floor(n / FEEDS) + 1, v: PAYLOAD }, opts: { removeOnComplete: true, removeOnFail: true } }
    }))
  }
}

/** A queue of `count` jobs for a drain run, and how to remove it afterwards. */
const filled = async (url: string, count: number, label: string) => {
  const connection = { host: "127.0.0.1", port: Number(new URL(url).port) }
  const name = `${label}-${Date.now()}`
  const queue = new Queue(name, { connection, prefix: "bench" })
  await fill(queue, count)
  return { name, queue, connection }
}

/** Raw BullMQ: a concurrency-50 worker draining `count` jobs with a no-op processor. */
const rawDrain = async ({ name, queue, connection }: Awaited<ReturnType<typeof filled>>, count: number) => {
  let processed = 0
  const started = performance.now()
  const worker = new Worker(name, async () => {
    processed++
  }, { connection, prefix: "bench", concurrency: CONCURRENCY, removeOnComplete: { count: 0 } })
  await waitUntil(() => processed >= count)
  const rate = (count * 1000) / (performance.now() - started)
  await worker.close()
  await queue.obliterate({ force: true })
  await queue.close()
  return rate
}

/** The ingest bridge draining the same jobs into LevelDB feeds, until every job is completed. */
const ingestDrain = async (url: string, { name, queue }: Awaited<ReturnType<typeof filled>>, count: number) => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-bench-ingest-"))
  const node = Feed.layer(Feed.Json).pipe(
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(LevelStore.layer({ directory })),
    Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 64 }))
  )
  const started = performance.now()
  const runtime = ManagedRuntime.make(IngestBridge.layer(Feed.Json, {
    url,
    queue: name,
    prefix: "bench",
    keyspace: "None",
    feed: "Data(feed)",
    nonce: "Data(n)",
    value: "Data(v)"
  }).pipe(Layer.provideMerge(node)))
  try {
    await runtime.runPromise(Effect.void)
    let done = false
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, 5))
      const counts = await queue.getJobCounts("waiting", "active")
      done = (counts.waiting ?? 0) + (counts.active ?? 0) === 0
    }
    return (count * 1000) / (performance.now() - started)
  } finally {
    await runtime.dispose()
    await queue.obliterate({ force: true })
    await queue.close()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** Raw BullMQ: 50 `add` loops and a concurrency-50 worker; answers messages per second end to end. */
const rawAddProcess = async (url: string, count: number) => {
  const connection = { host: "127.0.0.1", port: Number(new URL(url).port) }
  const name = `raw-send-${Date.now()}`
  const queue = new Queue(name, { connection, prefix: "bench" })
  let processed = 0
  const worker = new Worker(name, async () => {
    processed++
  }, { connection, prefix: "bench", concurrency: CONCURRENCY, removeOnComplete: { count: 0 } })
  await worker.waitUntilReady()
  let sent = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (sent < count) {
      const n = sent++
      await queue.add("m", { e: `e${n % ENTITIES}`, n, v: PAYLOAD }, { removeOnComplete: true })
    }
  }))
  await waitUntil(() => processed >= count)
  const rate = (count * 1000) / (performance.now() - started)
  await worker.close()
  await queue.obliterate({ force: true })
  await queue.close()
  return rate
}

/** Durable sends to 1,000 entities by 50 senders, until every message was handled. */
const durableSends = async (url: string, count: number) => {
  const node = DurableMessages.layer({ url, config: { prefix: "bench", queueName: `durable-${Date.now()}`, concurrency: CONCURRENCY } }).pipe(
    Layer.provideMerge(EntityRuntime.register(TallyBehavior)),
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(MemoryStore.layer),
    Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 64 }))
  )
  const runtime = ManagedRuntime.make(node)
  try {
    const durable = await runtime.runPromise(DurableMessages.client(Tallies))
    tallied = 0
    let sent = 0
    const started = performance.now()
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (sent < count) {
        const n = sent++
        await durable.promise.send(`e${n % ENTITIES}`, "Tally", { n: 1 })
      }
    }))
    await waitUntil(() => tallied >= count)
    return (count * 1000) / (performance.now() - started)
  } finally {
    await runtime.dispose()
  }
}


export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const flags = options(args)
  const sends = Number(flags.sends ?? 30_000)
  const jobs = Number(flags.jobs ?? 100_000)
  // Rounds alternate each contender with its baseline, and the medians are compared: on a shared
  // machine the load of other processes changes from one minute to the next.
  const rounds = Number(flags.rounds ?? 3)
  const redis = await startRedis()
  const figures = { rawDrain: [] as Array<number>, ingest: [] as Array<number>, rawSend: [] as Array<number>, durable: [] as Array<number> }
  try {
    const port = redis.ports[0]!
    for (let round = 1; round <= rounds; round++) {
      const runs = {
        rawDrain: await measured(port, async () => rawDrain(await filled(redis.url, jobs, "raw-drain"), jobs)),
        ingest: await measured(port, async () => ingestDrain(redis.url, await filled(redis.url, jobs, "ingest"), jobs)),
        rawSend: await measured(port, () => rawAddProcess(redis.url, sends)),
        durable: await measured(port, () => durableSends(redis.url, sends))
      }
      for (const [name, run] of Object.entries(runs)) {
        figures[name as keyof typeof figures].push(run.result)
        console.log(`round ${round} ${name}: ${Math.round(run.result).toLocaleString("en-US")}/s (${run.wallSeconds.toFixed(2)} s wall incl. fill, Node ${run.nodeSeconds.toFixed(2)} s CPU, Redis ${run.redisSeconds.toFixed(2)} s CPU)`)
      }
    }
    const rawDrained = median(figures.rawDrain)
    const ingested = median(figures.ingest)
    const rawSend = median(figures.rawSend)
    const durable = median(figures.durable)
    const rows: Array<Row> = [
      { name: `ingest, ${jobs.toLocaleString("en-US")} jobs, ${FEEDS} feeds, LevelDB`, value: ingested, unit: "jobs/s", baseline: "raw Worker c50 drain", ratio: ingested / rawDrained, target: ">= 0.8x" },
      { name: "raw BullMQ Worker c50 drain (no-op)", value: rawDrained, unit: "jobs/s" },
      { name: `durable sends end to end, ${ENTITIES} entities, ${CONCURRENCY} senders`, value: durable, unit: "msgs/s", baseline: "raw add+process c50", ratio: durable / rawSend, target: ">= 0.8x" },
      { name: "raw BullMQ add + Worker c50 (no-op)", value: rawSend, unit: "jobs/s" }
    ]
    report("bullmq", rows, { jobs, sends, rounds, figures })
  } finally {
    await redis.stop()
  }
}
