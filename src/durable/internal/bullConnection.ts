/**
 * How durable work reaches Redis through BullMQ: connections built from a Redis URL with every
 * critical ioredis option set explicitly, the one place where BullMQ and ioredis errors are
 * translated into `DurableUnavailable`, and the registration of this module's Lua scripts on
 * BullMQ's own client (so no second connection is needed).
 *
 * On a standalone Redis, BullMQ creates its ioredis clients from the plain options given here
 * and closes them. On a Redis Cluster (a comma-separated list of node URLs, as everywhere in
 * shardfeed) BullMQ needs a cluster *instance*, which it shares and never closes: `connect`
 * makes one per component and answers how to release it after the component closed. Every key
 * of a queue must then hash to one slot, so the key prefix carries a hash tag (`slotPrefix`).
 */
import type { ConnectionOptions, RedisClient } from "bullmq"
import { clusterClient, describeError, forEachConnection, nodeAuth, type ParsedNode, parseNodes, redactUrl } from "../../../persistence/RedisConnection.js"
import { InvalidArgument } from "../../../persistence/StoreError.js"
import { DurableUnavailable } from "../DurableError.js"
import { type Command, commands } from "./durableScripts.js"

/** How to reach Redis. */
export interface BullConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS); several, comma-separated, for a Redis Cluster. */
  readonly url: string
  /** Most time to connect, in milliseconds (default 2,000). */
  readonly connectTimeoutMillis?: number | undefined
  /** Most time one producer command may take before it fails (default 5,000). */
  readonly commandTimeoutMillis?: number | undefined
}

/** A parsed Redis URL: one node, or the seed nodes of a Redis Cluster. */
export interface ParsedUrl {
  readonly nodes: ReadonlyArray<ParsedNode>
  readonly cluster: boolean
}

/** Parses a Redis URL (a comma-separated list is a Redis Cluster), or names what is wrong with it (without its password). */
export const parseUrl = (url: string): ParsedUrl | InvalidArgument => {
  try {
    const nodes = parseNodes(url)
    if (nodes.length === 0) return new InvalidArgument({ field: "redis", message: "no Redis URL given" })
    if (nodes.length > 1 && nodes.some((node) => node.db !== 0)) {
      return new InvalidArgument({ field: "redis", message: `${redactUrl(url)}: a Redis Cluster has only database 0` })
    }
    return { nodes, cluster: nodes.length > 1 }
  } catch (error) {
    return new InvalidArgument({ field: "redis", message: `${redactUrl(url)}: ${describeError(error)}` })
  }
}

/** Where the parsed URL points, for messages (no password). */
export const describeTarget = (parsed: ParsedUrl): string =>
  parsed.nodes.map((node) => `${node.host}:${node.port}`).join(",")

/** Queue names and prefixes: no `:` (BullMQ's separator), no braces unless a whole hash tag. */
export const PREFIX = /^(\{[A-Za-z0-9_.-]{1,64}\}|[A-Za-z0-9_.-]{1,64})$/

const HASH_TAG = /\{[^}]+\}/

/**
 * The key prefix to give BullMQ and this module's keys: on a Redis Cluster every key of a queue
 * must hash to one slot (BullMQ's scripts and ours touch several), so a prefix without a hash tag
 * is wrapped in one (`shardfeed` → `{shardfeed}`); elsewhere it is used as given.
 */
export const slotPrefix = (parsed: ParsedUrl, prefix: string): string =>
  parsed.cluster && !HASH_TAG.test(prefix) ? `{${prefix}}` : prefix

/** Refuses a prefix without a hash tag on a Redis Cluster (for queues other systems produce to, whose prefix is theirs). */
export const checkSlotPrefix = (parsed: ParsedUrl, prefix: string, field: string): InvalidArgument | undefined =>
  parsed.cluster && !HASH_TAG.test(prefix)
    ? new InvalidArgument({ field, message: `on a Redis Cluster BullMQ needs a prefix with a hash tag, such as {${prefix}}: its producers must use it too` })
    : undefined

/** What every connection to a node needs: its credentials and the connect timeout. */
const nodeOptions = (node: ParsedNode, options: BullConnectionOptions) => ({
  ...nodeAuth(node),
  connectTimeout: options.connectTimeoutMillis ?? 2_000
})

/** What a kind of connection needs on top of the base options. */
const KINDS = {
  /**
   * Producer connections (`Queue`): a send fails fast with `DurableUnavailable` while Redis is
   * away instead of queueing in memory without bound, and each command times out.
   */
  producer: (options: BullConnectionOptions) => ({
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMillis ?? 5_000
  }),
  /**
   * Consumer connections (`Worker`): BullMQ requires `maxRetriesPerRequest: null` for its
   * blocking connection, and commands wait through a reconnection rather than fail, so a Redis
   * restart pauses work instead of failing messages. No command timeout: the blocking connection
   * waits for jobs for up to `drainDelay` seconds by design.
   */
  consumer: () => ({
    enableOfflineQueue: true,
    maxRetriesPerRequest: null
  }),
  /**
   * Consumer connections that also pipeline automatically: commands issued in one turn of the
   * event loop go out in one socket write, in issue order. The ingest bridge uses it on a Redis
   * Cluster, whose client has no single socket to cork (see `corker`); ioredis builds a pipeline
   * object per turn, which costs more than it saves for one that sends a command or two per turn.
   */
  pipelinedConsumer: () => ({
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    enableAutoPipelining: true
  })
} as const

/** A kind of connection: see `KINDS`. */
export type Kind = keyof typeof KINDS

/** A connection for one BullMQ component, and how to release it once the component closed. */
export interface Connection {
  readonly connection: ConnectionOptions
  readonly release: () => Promise<void>
}

const nothing = () => Promise.resolve()

/**
 * A connection of `kind` for one BullMQ `Queue` or `Worker`. On a standalone Redis these are
 * options, and BullMQ owns (and closes) its clients. On a Redis Cluster this is a cluster
 * client of its own, which BullMQ shares (its blocking connection is a duplicate it owns), so
 * `release` disconnects it after the component closed. All a queue's keys share one slot
 * (`slotPrefix`), so its commands go to one node, in order.
 */
export const connect = (parsed: ParsedUrl, options: BullConnectionOptions, kind: Kind): Connection => {
  const extra = KINDS[kind](options)
  const first = parsed.nodes[0]!
  if (!parsed.cluster) {
    return {
      connection: {
        host: first.host,
        port: first.port,
        db: first.db,
        ...nodeOptions(first, options),
        // Reconnect forever with a capped backoff, so work resumes as soon as Redis returns.
        retryStrategy: (times: number) => Math.min(50 * times, 1_000),
        ...extra
      },
      release: nothing
    }
  }
  // The cluster client reconnects and queues by its own options (ioredis overrides the nodes'
  // `retryStrategy` and offline queue), so those are set at its level only.
  const { enableOfflineQueue, ...nodeExtra } = extra
  const cluster = clusterClient(parsed.nodes, {
    enableOfflineQueue,
    enableAutoPipelining: "enableAutoPipelining" in extra,
    redisOptions: { ...nodeOptions(first, options), ...nodeExtra }
  })
  // Errors surface through the commands that fail.
  cluster.on("error", () => undefined)
  let released = false
  return {
    connection: cluster as unknown as ConnectionOptions,
    release: () => {
      if (!released) cluster.disconnect()
      released = true
      return Promise.resolve()
    }
  }
}

/**
 * Awaits a step of opening a BullMQ component; if it fails, closes the component and releases
 * its connection before rethrowing, so no connection outlives a failed start.
 */
/** How long a component may take to start: five connect timeouts (10 s by default). */
export const readyLimitMillis = (options: BullConnectionOptions): number => (options.connectTimeoutMillis ?? 2_000) * 5

/**
 * Waits for a component's start (`step`), at most `readyLimitMillis`: ioredis retries an
 * unreachable Redis without end, so without a bound a process would wait forever at start (and,
 * its start being uninterruptible, not even stop on a signal). A start that fails or runs out of
 * time closes the component and releases its connection, without waiting for that (closing a
 * client that never connected, or lost its credentials, may itself wait).
 */
export const readyWithin = async <A>(
  step: Promise<A>,
  component: { readonly close: () => Promise<void> },
  release: () => Promise<void>,
  parsed: ParsedUrl,
  options: BullConnectionOptions
): Promise<A> => {
  const limit = readyLimitMillis(options)
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      step,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis at ${describeTarget(parsed)} did not answer within ${limit} ms`)), limit)
      })
    ])
  } catch (error) {
    void component.close().catch(() => undefined).finally(release)
    throw error
  } finally {
    clearTimeout(timer)
  }
}

export const orClose = async <A>(step: Promise<A>, component: { readonly close: () => Promise<void> }, release: () => Promise<void>): Promise<A> => {
  try {
    return await step
  } catch (error) {
    await component.close().catch(() => undefined).finally(release)
    throw error
  }
}

/**
 * Holds a standalone client's socket writes until the next turn of the event loop, so the many
 * commands of a burst (the ingest bridge completes a whole batch of jobs at once) leave in one
 * write, in issue order, without ioredis's per-turn pipeline objects: 10-25% more ingest
 * throughput than auto-pipelining on this project's test machine. Only for bursts whose replies nobody waits for within the
 * turn. A no-op on a Redis Cluster client (no single socket) or before the socket exists.
 */
export const corker = (client: RedisClient): (() => void) => {
  let corked = false
  return () => {
    const stream = (client as { readonly stream?: { cork?: () => void; uncork?: () => void } }).stream
    if (corked || stream?.cork === undefined || stream.uncork === undefined) return
    corked = true
    stream.cork()
    setImmediate(() => {
      corked = false
      stream.uncork!()
    })
  }
}

/**
 * Calls `lost` whenever a connection of `client` closes: the client's own socket on a
 * standalone Redis, any node's on a Redis Cluster. Commands in flight on a closed socket may
 * have run with their replies lost.
 */
export const onConnectionLost = (client: RedisClient, lost: () => void): void =>
  forEachConnection(client as unknown as Parameters<typeof forEachConnection>[0], (redis) => redis.on("close", lost))

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
