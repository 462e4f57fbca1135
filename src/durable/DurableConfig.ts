/**
 * Every bound and BullMQ setting of durable messages, one named field each with its default and
 * what happens at the limit, plus the checks of their relationships made when a layer is built.
 * BullMQ's critical options (lock duration, stalled checks, attempts, backoff, what is kept after
 * completion and failure) are all set from here, never left to BullMQ's defaults.
 *
 * It does not hold connection details (`BullConnection`) nor the ingest bridge's settings.
 */
import { Effect } from "effect"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as Bull from "./internal/bullConnection.js"

/** The settings of durable messages. */
export interface DurableConfig {
  /** The BullMQ queue carrying durable messages (default `shardfeed-durable`). */
  readonly queueName: string
  /** The BullMQ key prefix (default `shardfeed`); every key of this module lives under it. */
  readonly prefix: string
  /** Messages one worker process handles at once, over all entities (default 50). */
  readonly concurrency: number
  /**
   * Attempts of one message before it is dead-lettered (default 10). An attempt is a delivery
   * begun: a failed reply, or a crash of the worker while the message was being handled.
   */
  readonly attemptsMax: number
  /** Delay before the first retry (default 1 s); it doubles per attempt up to `backoffMaxMillis`. */
  readonly backoffBaseMillis: number
  /** Longest delay between two attempts (default 5 min). With the defaults, ten attempts span about 8.5 minutes. */
  readonly backoffMaxMillis: number
  /** A second send with the same id within this window is acknowledged and dropped (default 24 h). */
  readonly dedupWindowMillis: number
  /**
   * BullMQ `lockDuration` (default 30 s): a message being handled is locked this long and the lock
   * is renewed every half of it; a crashed worker's messages are taken over once it expires.
   */
  readonly lockDurationMillis: number
  /** BullMQ `stalledInterval` (default 5 s): how often a worker looks for messages of crashed workers. */
  readonly stalledIntervalMillis: number
  /** How long one delivery waits for the entity's reply (default 30 s); then the attempt failed. */
  readonly deliveryTimeoutMillis: number
  /**
   * Longest time a message waiting behind an earlier message of its entity stays parked before it
   * looks again (default 5 s). Normally the earlier message's completion wakes it at once; this
   * only bounds the wait when the process that would wake it crashed.
   */
  readonly parkMaxMillis: number
  /** Failed BullMQ jobs kept for inspection, newest first (default 10,000); dead letters are kept apart. */
  readonly failedJobsKept: number
  /** Dead letters kept per entity type (default 100,000); past it the oldest are dropped and counted. */
  readonly deadLettersPerTypeMax: number
  /** Bytes of one message's encoded payload (default 1 MiB); a larger one is refused. */
  readonly payloadBytesMax: number
  /** Sends combined into one round of Redis calls (default 500, at most 512); more wait for the next one. */
  readonly sendBatchMax: number
  /**
   * How often a consuming process sweeps the lanes no message was claimed from for that long
   * (default 60 s; 0: never). A worker that crashed between finishing a message and releasing it
   * from its entity's lane left the lane to the entity's next message; the sweep drops such
   * finished heads, deletes the lanes they emptied and wakes a parked message behind them.
   */
  readonly laneSweepEveryMillis: number
  /** Whether this process also handles durable messages (default true); false: it only sends. */
  readonly consume: boolean
}

/** The defaults. */
export const defaults: DurableConfig = {
  queueName: "shardfeed-durable",
  prefix: "shardfeed",
  concurrency: 50,
  attemptsMax: 10,
  backoffBaseMillis: 1_000,
  backoffMaxMillis: 300_000,
  dedupWindowMillis: 24 * 60 * 60 * 1_000,
  lockDurationMillis: 30_000,
  stalledIntervalMillis: 5_000,
  deliveryTimeoutMillis: 30_000,
  parkMaxMillis: 5_000,
  failedJobsKept: 10_000,
  deadLettersPerTypeMax: 100_000,
  payloadBytesMax: 1024 * 1024,
  sendBatchMax: 500,
  laneSweepEveryMillis: 60_000,
  consume: true
}

/** Queue names: no `:` (BullMQ's separator), no braces. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/

const integer = (config: DurableConfig, field: keyof DurableConfig, min: number, max: number) => {
  const value = config[field]
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
    ? undefined
    : new InvalidArgument({ field, message: `must be an integer from ${min} to ${max}` })
}

/** Checks every field and the relationships between them. */
export const validate = (partial: Partial<DurableConfig> = {}): Effect.Effect<DurableConfig, InvalidArgument> => {
  const config: DurableConfig = { ...defaults, ...partial }
  if (!NAME.test(config.queueName)) return Effect.fail(new InvalidArgument({ field: "queueName", message: `must match ${NAME}` }))
  if (!Bull.PREFIX.test(config.prefix)) return Effect.fail(new InvalidArgument({ field: "prefix", message: `must match ${Bull.PREFIX}` }))
  const bad = integer(config, "concurrency", 1, 10_000) ??
    integer(config, "attemptsMax", 1, 1_000) ??
    integer(config, "backoffBaseMillis", 1, 86_400_000) ??
    integer(config, "backoffMaxMillis", 1, 86_400_000) ??
    integer(config, "dedupWindowMillis", 1, 365 * 86_400_000) ??
    integer(config, "lockDurationMillis", 1_000, 3_600_000) ??
    integer(config, "stalledIntervalMillis", 100, 3_600_000) ??
    integer(config, "deliveryTimeoutMillis", 1, 3_600_000) ??
    integer(config, "parkMaxMillis", 10, 3_600_000) ??
    integer(config, "failedJobsKept", 0, 10_000_000) ??
    integer(config, "deadLettersPerTypeMax", 1, 100_000_000) ??
    integer(config, "payloadBytesMax", 1, 64 * 1024 * 1024) ??
    integer(config, "sendBatchMax", 1, 512) ??
    (config.laneSweepEveryMillis === 0 || integer(config, "laneSweepEveryMillis", 1_000, 86_400_000) === undefined
      ? undefined
      : new InvalidArgument({ field: "laneSweepEveryMillis", message: "must be 0 (never) or an integer from 1000 to 86400000" }))
  if (bad !== undefined) return Effect.fail(bad)
  if (config.backoffMaxMillis < config.backoffBaseMillis) {
    return Effect.fail(new InvalidArgument({ field: "backoffMaxMillis", message: "must not be below backoffBaseMillis" }))
  }
  if (typeof config.consume !== "boolean") return Effect.fail(new InvalidArgument({ field: "consume", message: "must be a boolean" }))
  return Effect.succeed(config)
}

/** The delay before retry number `attempt` (1-based): doubling from the base, capped, ±10 % jitter. */
export const backoffMillis = (config: Pick<DurableConfig, "backoffBaseMillis" | "backoffMaxMillis">, attempt: number, random = Math.random): number => {
  const exponent = Math.min(Math.max(attempt - 1, 0), 40)
  const plain = Math.min(config.backoffMaxMillis, config.backoffBaseMillis * 2 ** exponent)
  // Jitter spreads the retries of many messages that failed together (a shard move, a restart).
  return Math.max(1, Math.round(plain * (0.9 + 0.2 * random())))
}
