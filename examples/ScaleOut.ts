/**
 * An application's own entity type (the Counter of `entities/Counter.ts`) hosted by two worker
 * processes coordinated through Redis, used from a third, client-only process. The client
 * increments 20 counters five times each, one worker leaves gracefully (its shards move to the
 * other, drained first), and the client increments them five more times without noticing. The
 * counters live in the Redis store, so a second run continues where the first stopped.
 *
 * Run: `npm run build && node dist/examples/ScaleOut.js redis://127.0.0.1:6379 [cluster name]`
 * (any Redis you own; the example writes only keys of its cluster, prefixed `sf.<cluster>`).
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Layer, ManagedRuntime } from "effect"
import { EntityClient, EntityRuntime, Worker } from "../src/index.js"
import { Counter, CounterBehavior } from "./entities/Counter.js"

const [redisUrl = "redis://127.0.0.1:6379", cluster = "scale-out-example", role] = process.argv.slice(2)
const COUNTERS = 20

const options = (workerId: string, clientOnly: boolean): Worker.WorkerOptions => ({
  redisUrl,
  store: { _tag: "Redis" },
  transport: { host: "127.0.0.1", port: 0 },
  sharding: { clusterName: cluster, workerId },
  runtime: { shardCount: 64 },
  clientOnly
})

/** A worker: hosts counters until SIGTERM, then leaves the cluster gracefully. */
const worker = async (id: string) => {
  const runtime = ManagedRuntime.make(Worker.layer(options(id, false), EntityRuntime.register(CounterBehavior)))
  await runtime.runPromise(Effect.void)
  process.send!("ready")
  process.once("SIGTERM", () => void runtime.dispose().then(() => process.exit(0)))
}

const startWorker = (id: string) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [redisUrl, cluster, id])
    child.once("message", () => resolve(child))
    child.once("exit", (code) => reject(new Error(`worker ${id} exited with ${code}`)))
  })

/** The client: increments every counter `times` times; answers the values. */
const incrementAll = (times: number) =>
  Effect.gen(function*() {
    const counters = yield* EntityClient.make(Counter)
    const values = yield* Effect.forEach(Array.from({ length: COUNTERS }, (_, i) => `counter-${i}`), (id) =>
      Effect.gen(function*() {
        let value = 0
        for (let i = 0; i < times; i++) value = yield* counters.ask(id, "Increment", { by: 1 })
        return value
      }), { concurrency: COUNTERS })
    return values
  })

const main = async () => {
  const workers = await Promise.all(["worker-a", "worker-b"].map(startWorker))
  const client = ManagedRuntime.make(Worker.layer(options(`client-${process.pid}`, true)).pipe(Layer.orDie))
  try {
    const first = await client.runPromise(incrementAll(5))
    console.log(`${COUNTERS} counters after 5 increments each: ${[...new Set(first)].join(", ")}`)
    // worker-a leaves: its shards are drained, handed over, and the client never sees an error.
    workers[0]!.kill("SIGTERM")
    await new Promise((resolve) => workers[0]!.once("exit", resolve))
    const second = await client.runPromise(incrementAll(5))
    console.log(`after worker-a left, 5 more each: ${[...new Set(second)].join(", ")}`)
  } finally {
    await client.dispose()
    for (const child of workers) child.kill("SIGTERM")
  }
}

if (role !== undefined) void worker(role)
else {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
