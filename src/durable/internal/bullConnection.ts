/**
 * How durable work reaches Redis through BullMQ: connection options built from a Redis URL with
 * every critical ioredis option set explicitly, the one place where BullMQ and ioredis errors are
 * translated into `DurableUnavailable`, and the registration of this module's Lua scripts on
 * BullMQ's own client (so no second connection and no direct ioredis import are needed).
 *
 * BullMQ creates its ioredis clients from the plain options given here. Redis Cluster URLs are
 * refused for now: BullMQ needs a cluster *instance* and a hash-tagged prefix there.
 */
import type { ConnectionOptions, RedisClient } from "bullmq"
import { describeError, type ParsedNode, parseNode, redactUrl } from "../../../persistence/RedisConnection.js"
import { InvalidArgument } from "../../../persistence/StoreError.js"
import { DurableUnavailable } from "../DurableError.js"
import { type Command, commands } from "./durableScripts.js"

/** How to reach Redis. */
export interface BullConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS). */
  readonly url: string
  /** Most time to connect, in milliseconds (default 2,000). */
  readonly connectTimeoutMillis?: number | undefined
  /** Most time one producer command may take before it fails (default 5,000). */
  readonly commandTimeoutMillis?: number | undefined
}

/** The parts of a Redis URL. */
export type ParsedUrl = ParsedNode

/** Parses a standalone Redis URL, or names what is wrong with it (without its password). */
export const parseUrl = (url: string): ParsedUrl | InvalidArgument => {
  if (url.includes(",")) {
    return new InvalidArgument({ field: "redis", message: "Redis Cluster URLs are not supported by durable work yet: give one standalone redis:// URL" })
  }
  try {
    return parseNode(url)
  } catch (error) {
    return new InvalidArgument({ field: "redis", message: `${redactUrl(url)}: ${describeError(error)}` })
  }
}

const base = (parsed: ParsedUrl, options: BullConnectionOptions) => ({
  host: parsed.host,
  port: parsed.port,
  db: parsed.db,
  ...(parsed.username === undefined ? {} : { username: parsed.username }),
  ...(parsed.password === undefined ? {} : { password: parsed.password }),
  ...(parsed.tls ? { tls: {} } : {}),
  connectTimeout: options.connectTimeoutMillis ?? 2_000,
  // Reconnect forever with a capped backoff, so work resumes as soon as Redis returns.
  retryStrategy: (times: number) => Math.min(50 * times, 1_000)
})

/**
 * Options of producer connections (`Queue`): a send fails fast with `DurableUnavailable` while
 * Redis is away instead of queueing in memory without bound, and each command times out.
 */
export const producerOptions = (parsed: ParsedUrl, options: BullConnectionOptions): ConnectionOptions => ({
  ...base(parsed, options),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: options.commandTimeoutMillis ?? 5_000
})

/**
 * Options of consumer connections (`Worker`): BullMQ requires `maxRetriesPerRequest: null` for
 * its blocking connection, and commands wait through a reconnection rather than fail, so a
 * Redis restart pauses work instead of failing messages. No command timeout: the blocking
 * connection waits for jobs for up to `drainDelay` seconds by design.
 */
export const consumerOptions = (parsed: ParsedUrl, options: BullConnectionOptions): ConnectionOptions => ({
  ...base(parsed, options),
  enableOfflineQueue: true,
  maxRetriesPerRequest: null
})

/**
 * Consumer options that also pipeline automatically: commands issued in one turn of the event loop
 * go out in one socket write, in issue order. It pays off for a consumer that sends many commands
 * at once (the ingest bridge's fetch stream and completion bursts); ioredis builds a pipeline
 * object per turn, which costs more than it saves for one that sends a command or two per turn.
 */
export const pipelinedConsumerOptions = (parsed: ParsedUrl, options: BullConnectionOptions): ConnectionOptions => ({
  ...consumerOptions(parsed, options),
  enableAutoPipelining: true
})

/** Translates a BullMQ or ioredis failure: the one place this module reads driver errors. */
export const translate = (operation: string, cause: unknown): DurableUnavailable =>
  new DurableUnavailable({ operation, message: describeError(cause) })

const defined = new WeakSet<object>()

/** Defines this module's scripts on a BullMQ client (once per client). */
export const defineScripts = (client: RedisClient): void => {
  if (defined.has(client)) return
  for (const [name, lua] of Object.entries(commands)) {
    // No fixed key count: batch scripts take 2n keys, passed as the first argument (ioredis
    // sends EVALSHA and falls back to EVAL once per connection when the script is not cached).
    client.defineCommand(name, { lua } as { numberOfKeys: number; lua: string })
  }
  defined.add(client)
}

/** Runs one of this module's scripts. */
export const run = (client: RedisClient, command: Command, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>): Promise<unknown> =>
  client.runCommand(command, [keys.length, ...keys, ...args])
