/**
 * Every bound of the entity runtime, one named field each, with its default and what happens at
 * the limit. Relationships between fields are checked when the runtime is built.
 */
import { Context, Effect } from "effect"
import { InvalidArgument } from "../persistence/StoreError.js"

/** The runtime's limits and timings. */
export interface RuntimeConfigShape {
  /** Shards of the cluster (default 1,024); every process must use the same number. */
  readonly shardCount: number
  /** Messages an entity's mailbox holds (default 4,096); past it a delivery fails with `MailboxFull`. */
  readonly mailboxCapacityMax: number
  /** An entity idle this long is passivated (default 60 s); per type overridable. */
  readonly idlePassivationMillis: number
  /** Resident entities (default 100,000); past it the least recently used idle one is passivated. */
  readonly residentEntitiesMax: number
  /** Attempts of a message whose handler crashes before it is answered `PoisonMessage` (default 3). */
  readonly handlerAttemptsMax: number
  /** Default `ask` timeout (default 10 s); the caller then gets `AskTimeout`. */
  readonly askTimeoutMillis: number
  /**
   * Keys one entity may have waiting to commit, which also bounds one message's write set
   * (default 65,536: a sorted set's snapshot rewrite stages up to about 52,000); past it the
   * entity waits for its commit, and a single message staging more fails with `InvalidArgument`.
   */
  readonly pendingKeysPerEntityMax: number
  /** Writes in one group-commit round (default 131,072); more wait for the next round. */
  readonly commitOpsMax: number
  /** How long `stopShard` waits for a shard to drain before passivating anyway (default 30 s). */
  readonly stopShardTimeoutMillis: number
  /** Events between snapshots of an event-sourced entity (default 100); per type overridable. */
  readonly snapshotEvery: number
}

/** The defaults. */
export const defaults: RuntimeConfigShape = {
  shardCount: 1_024,
  mailboxCapacityMax: 4_096,
  idlePassivationMillis: 60_000,
  residentEntitiesMax: 100_000,
  handlerAttemptsMax: 3,
  askTimeoutMillis: 10_000,
  pendingKeysPerEntityMax: 65_536,
  commitOpsMax: 131_072,
  stopShardTimeoutMillis: 30_000,
  snapshotEvery: 100
}

/** The runtime configuration; the defaults apply when none is provided. */
export const RuntimeConfig: Context.Reference<RuntimeConfigShape> = Context.Reference<RuntimeConfigShape>(
  "shardfeed/RuntimeConfig",
  { defaultValue: () => defaults }
)

const positiveInteger = (config: RuntimeConfigShape, field: keyof RuntimeConfigShape, max = Number.MAX_SAFE_INTEGER) => {
  const value = config[field]
  return Number.isInteger(value) && value >= 1 && value <= max
    ? undefined
    : new InvalidArgument({ field, message: `must be an integer from 1 to ${max}` })
}

/** Checks every field and the relationships between them. */
export const validate = (config: RuntimeConfigShape): Effect.Effect<RuntimeConfigShape, InvalidArgument> => {
  const bad = positiveInteger(config, "shardCount", 1 << 20) ??
    positiveInteger(config, "mailboxCapacityMax") ??
    positiveInteger(config, "idlePassivationMillis") ??
    positiveInteger(config, "residentEntitiesMax") ??
    positiveInteger(config, "handlerAttemptsMax", 100) ??
    positiveInteger(config, "askTimeoutMillis") ??
    positiveInteger(config, "pendingKeysPerEntityMax") ??
    positiveInteger(config, "commitOpsMax") ??
    positiveInteger(config, "stopShardTimeoutMillis") ??
    positiveInteger(config, "snapshotEvery")
  if (bad !== undefined) return Effect.fail(bad)
  if (config.pendingKeysPerEntityMax > config.commitOpsMax) {
    return Effect.fail(new InvalidArgument({ field: "pendingKeysPerEntityMax", message: "must not exceed commitOpsMax" }))
  }
  return Effect.succeed(config)
}
