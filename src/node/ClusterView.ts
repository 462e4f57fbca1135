/**
 * What a worker tells about the cluster: its own id, the live workers and the shard map. A single
 * node is a cluster of one that owns every shard; the Redis coordinator provides the real view
 * when workers are spread out.
 */
import { Context, Effect, Layer } from "effect"
import { EntityRuntime } from "../../actors/EntityRuntime.js"
import * as ShardManager from "../../sharding/ShardManager.js"

/** One worker as the cluster sees it. */
export interface WorkerInfo {
  readonly id: string
  readonly address: string
  readonly weight: number
  readonly shards: number
  /** Milliseconds since the epoch of its last heartbeat. */
  readonly lastSeen: number
}

/** The cluster at one moment. */
export interface ClusterSnapshot {
  readonly shardCount: number
  readonly workers: ReadonlyArray<WorkerInfo>
  /** The owner of each shard (worker id), or null while it moves. */
  readonly owners: ReadonlyArray<string | null>
  /** The fencing epoch of each shard's current tenure, or null while it moves. */
  readonly epochs: ReadonlyArray<number | null>
}

/** The cluster view of this worker. */
export interface ClusterViewShape {
  readonly workerId: string
  readonly snapshot: Effect.Effect<ClusterSnapshot>
}

/** The cluster view service. */
export class ClusterView extends Context.Service<ClusterView, ClusterViewShape>()("shardfeed/ClusterView") {}

/** The view of a single node that owns all `shardCount` shards (at the epochs its runtime holds). */
export const layerSingle = (options: { readonly workerId: string; readonly address: string; readonly shardCount: number }): Layer.Layer<ClusterView, never, EntityRuntime> =>
  Layer.effect(
    ClusterView,
    Effect.map(EntityRuntime, (runtime) => ({
      workerId: options.workerId,
      snapshot: Effect.sync(() => {
        const owned = runtime.owned()
        return {
          shardCount: options.shardCount,
          workers: [{ id: options.workerId, address: options.address, weight: 1, shards: options.shardCount, lastSeen: Date.now() }],
          owners: new Array<string>(options.shardCount).fill(options.workerId),
          epochs: Array.from({ length: options.shardCount }, (_, shard) => owned.get(shard) ?? null)
        }
      })
    }))
  )

/** The view of a worker in a Redis-coordinated cluster, read from its shard manager. */
export const layerFromManager: Layer.Layer<ClusterView, never, ShardManager.ShardManager> = Layer.effect(
  ClusterView,
  Effect.map(ShardManager.ShardManager, (manager) => ({
    workerId: manager.workerId,
    snapshot: Effect.sync(() => {
      const members = manager.members()
      const owners = ownersOf(manager)
      const shardCount = owners.length
      const counts = new Map<string, number>()
      for (const owner of owners) if (owner !== null) counts.set(owner, (counts.get(owner) ?? 0) + 1)
      return {
        shardCount,
        workers: members.map((member) => ({
          id: member.id,
          address: member.address,
          weight: member.weight,
          shards: counts.get(member.id) ?? 0,
          lastSeen: member.expiry - manager.config.leaseMillis
        })),
        owners,
        epochs: Array.from({ length: manager.shardCount }, (_, shard) => manager.owner(shard)?.epoch ?? null)
      }
    })
  }))
)

const ownersOf = (manager: ShardManager.ShardManagerShape): Array<string | null> =>
  Array.from({ length: manager.shardCount }, (_, shard) => manager.owner(shard)?.worker ?? null)
