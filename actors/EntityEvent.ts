/**
 * Lifecycle events of the entity runtime, published as a stream: what activated, passivated,
 * restarted, which messages were skipped as poison, and when shards stopped.
 */

/** One lifecycle event. */
export type EntityEvent =
  | { readonly _tag: "Activated"; readonly type: string; readonly id: string; readonly shard: number; readonly recoveryMillis: number }
  | { readonly _tag: "Passivated"; readonly type: string; readonly id: string; readonly reason: "idle" | "resident-cap" | "shard-stopped" }
  | { readonly _tag: "Restarted"; readonly type: string; readonly id: string; readonly reason: string }
  | {
    readonly _tag: "PoisonMessage"
    readonly type: string
    readonly id: string
    readonly message: string
    readonly attempts: number
    readonly cause: string
  }
  | { readonly _tag: "ShardAssigned"; readonly shard: number; readonly epoch: number }
  | { readonly _tag: "ShardStopped"; readonly shard: number; readonly entities: number; readonly millis: number }
  | { readonly _tag: "ShardFenced"; readonly shard: number }
