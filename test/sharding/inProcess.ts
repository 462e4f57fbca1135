/**
 * In-process workers for the sharding tests that need no process of their own: a worker (or a
 * client-only process) on the test setup's Redis, in a cluster of the test's own, and a wait
 * until it holds every shard.
 */
import { type Layer, ManagedRuntime } from "effect"
import { inject } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import * as Worker from "../../sharding/Worker.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** A cluster name of its own for a test (`label-xxxxxx`). */
export const clusterName = (label: string) => `${label}-${Math.random().toString(36).slice(2, 8)}`

/** A worker of `cluster` on the test setup's Redis (memory store, loopback transport), hosting `entities`. */
export const inProcessWorker = <ROut = never, E = never>(
  cluster: string,
  options: Partial<Worker.WorkerOptions> = {},
  entities?: Layer.Layer<ROut, E, any>
) =>
  ManagedRuntime.make(Worker.layer<ROut, E, any>({
    redisUrl: inject("redisUrl"),
    store: { _tag: "Memory" },
    transport: { host: "127.0.0.1", port: 0 },
    ...options,
    sharding: { clusterName: cluster, ...options.sharding }
  }, entities) as Layer.Layer<any, unknown, never>)

/** Waits until `worker`'s runtime holds every shard; answers its shard → epoch map. Bounded: 20 s. */
export const ownsEveryShard = async (worker: ManagedRuntime.ManagedRuntime<any, any>): Promise<ReadonlyMap<number, number>> => {
  const runtime = await worker.runPromise(EntityRuntime.EntityRuntime)
  const shards = runtime.config.shardCount
  for (const deadline = Date.now() + 20_000; runtime.owned().size < shards;) {
    if (Date.now() > deadline) throw new Error(`the worker holds ${runtime.owned().size} shards of ${shards}`)
    await sleep(20)
  }
  return new Map(runtime.owned())
}
