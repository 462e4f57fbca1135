/**
 * Goal: a process that would break routing or single-writer safety is refused when it starts,
 * with `JoinRefused` naming why: a worker or a client-only process whose shard count differs from
 * the cluster's (its messages would go to workers that do not own them), and a second worker in a
 * cluster whose store is local to one process (the workers would not share their data).
 * Method: in-process workers on the test setup's Redis, one cluster name per case.
 */
import { Cause, Exit, ManagedRuntime } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { clusterName, inProcessWorker } from "./inProcess.js"

const worker = (cluster: string, shardCount: number, options: { readonly clientOnly?: boolean } = {}) =>
  inProcessWorker(cluster, { runtime: { shardCount }, clientOnly: options.clientOnly })

/** The reason of the `JoinRefused` a start failed with, or what else happened. */
const refusal = async (runtime: ManagedRuntime.ManagedRuntime<any, any>): Promise<string> => {
  const exit = await runtime.runPromiseExit(EntityRuntime.EntityRuntime)
  await runtime.dispose()
  if (Exit.isSuccess(exit)) return "started"
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" && (error.value as { _tag?: string })._tag === "JoinRefused"
    ? (error.value as { reason: string }).reason
    : Cause.pretty(exit.cause)
}

describe("joining a cluster", () => {
  it("refuses a worker and a client-only process with another shard count, and a second worker on a local store", async () => {
    const cluster = clusterName("refuse")
    const first = worker(cluster, 8)
    try {
      await first.runPromise(EntityRuntime.EntityRuntime)
      assert.equal(await refusal(worker(cluster, 16)), "settings", "a worker with 16 shards where the cluster has 8")
      assert.equal(await refusal(worker(cluster, 16, { clientOnly: true })), "settings", "a client with 16 shards where the cluster has 8")
      assert.equal(await refusal(worker(cluster, 8)), "local-store", "a second worker while the first one's store is in its memory")
      const client = worker(cluster, 8, { clientOnly: true })
      assert.equal(await refusal(client), "started", "a client with the cluster's settings starts")
    } finally {
      await first.dispose()
    }
  }, 60_000)
})
