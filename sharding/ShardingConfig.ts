/**
 * Every bound and timing of scale-out, one named field each with its default; the relationship
 * between lease and refresh is checked when a worker starts.
 */
import { Context, Effect } from "effect"
import { InvalidArgument } from "../persistence/StoreError.js"

/** Scale-out settings of one worker. */
export interface ShardingConfigShape {
  /** Workers of one cluster share this name; it prefixes every coordination key. */
  readonly clusterName: string
  /** This worker's id (default: random). */
  readonly workerId: string
  /** host:port where other workers reach this one's transport. */
  readonly address: string
  /** This worker's weight in the assignment (default 1). */
  readonly weight: number
  /** How long a heartbeat or shard lease lives without renewal (default 3 s). */
  readonly leaseMillis: number
  /** How often heartbeats and leases are renewed and the map recomputed (default 1 s; at most lease / 3). */
  readonly refreshMillis: number
  /** Most shards one worker takes or gives up per refresh, as a fraction of all (default 0.25). */
  readonly rebalanceFraction: number
  /** How long a sender retries a message whose shard is moving before it fails (default 10 s). */
  readonly routeRetryMillis: number
  /** Messages one transport batch carries (default 1,000). */
  readonly transportBatchMax: number
  /** Messages waiting for one peer before sends to it fail with `Overloaded` (default 20,000). */
  readonly transportQueueMax: number
}

/** The defaults. */
export const defaults = (): ShardingConfigShape => ({
  clusterName: "default",
  workerId: `worker-${Math.random().toString(36).slice(2, 10)}`,
  address: "127.0.0.1:0",
  weight: 1,
  leaseMillis: 3_000,
  refreshMillis: 1_000,
  rebalanceFraction: 0.25,
  routeRetryMillis: 10_000,
  transportBatchMax: 1_000,
  transportQueueMax: 20_000
})

/** The scale-out configuration; the defaults apply when none is provided. */
export const ShardingConfig: Context.Reference<ShardingConfigShape> = Context.Reference<ShardingConfigShape>(
  "shardfeed/ShardingConfig",
  { defaultValue: defaults }
)

const NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** Checks every field and that refresh ≤ lease / 3 (so two refreshes can fail before a lease ends). */
export const validate = (config: ShardingConfigShape): Effect.Effect<ShardingConfigShape, InvalidArgument> => {
  const bad = (field: string, message: string) => Effect.fail(new InvalidArgument({ field, message }))
  if (!NAME.test(config.clusterName)) return bad("clusterName", "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' or '-'")
  if (!NAME.test(config.workerId)) return bad("workerId", "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' or '-'")
  if (!(Number.isFinite(config.weight) && config.weight > 0 && config.weight <= 1_000)) return bad("weight", "must be a number above 0, at most 1000")
  if (!(Number.isInteger(config.leaseMillis) && config.leaseMillis >= 100)) return bad("leaseMillis", "must be an integer of at least 100")
  if (!(Number.isInteger(config.refreshMillis) && config.refreshMillis >= 10 && config.refreshMillis * 3 <= config.leaseMillis)) {
    return bad("refreshMillis", "must be an integer of at least 10 and at most leaseMillis / 3")
  }
  if (!(config.rebalanceFraction > 0 && config.rebalanceFraction <= 1)) return bad("rebalanceFraction", "must be above 0 and at most 1")
  if (!(Number.isInteger(config.routeRetryMillis) && config.routeRetryMillis >= 0)) return bad("routeRetryMillis", "must be a non-negative integer")
  if (!(Number.isInteger(config.transportBatchMax) && config.transportBatchMax >= 1)) return bad("transportBatchMax", "must be a positive integer")
  if (!(Number.isInteger(config.transportQueueMax) && config.transportQueueMax >= config.transportBatchMax)) {
    return bad("transportQueueMax", "must be an integer of at least transportBatchMax")
  }
  return Effect.succeed(config)
}
