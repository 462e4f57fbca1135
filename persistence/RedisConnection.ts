/**
 * ioredis connections made one way for the whole project: from a URL (`redis://`, `rediss://`
 * for TLS, or several comma-separated URLs for a Redis Cluster), with every critical option set
 * explicitly, errors translated in one place, and passwords never printed.
 *
 * The Redis store, the Redis shard coordinator and BullMQ's cluster connections use this
 * module; ioredis is imported nowhere else. It does not define key names or scripts: each user of a connection does.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { Cluster, Redis } from "ioredis"
import type { ClusterOptions, RedisOptions } from "ioredis"
import { StoreUnavailable } from "./StoreError.js"

/** How to reach Redis and how long to wait for it. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]`, `rediss://...`, or comma-separated URLs of cluster nodes. */
  readonly url: string
  /** Treat the URL as a Redis Cluster even if it names a single node. */
  readonly cluster?: boolean | undefined
  /** Most time to connect, in milliseconds (default 2,000). */
  readonly connectTimeoutMillis?: number | undefined
  /** Most time one command may take before it fails with `StoreUnavailable` (default 5,000). */
  readonly commandTimeoutMillis?: number | undefined
}

/** An ioredis client, standalone or cluster. */
export type RedisClient = Redis | Cluster

/** A live connection and how to describe it without secrets. */
export interface RedisConnectionShape {
  readonly client: RedisClient
  /** The URL with any password replaced by `***`. */
  readonly redactedUrl: string
  readonly isCluster: boolean
  /** Opens another connection with the same options (for blocking commands). */
  readonly duplicate: Effect.Effect<RedisClient, StoreUnavailable, Scope.Scope>
  /**
   * Subscribes to `channel` on a connection of its own for the scope, and stays subscribed
   * through reconnections. On a standalone Redis `onResubscribed` runs each time the subscription
   * is made again (messages published while the connection was down are lost: it is the moment
   * to catch up); a Redis Cluster client re-subscribes by itself and does not report it.
   */
  readonly subscribe: (
    channel: string,
    onMessage: (message: string) => void,
    onResubscribed?: () => void
  ) => Effect.Effect<void, StoreUnavailable, Scope.Scope>
}

/** The connection service shared by the Redis store and the Redis coordinator of one process. */
export class RedisConnection extends Context.Service<RedisConnection, RedisConnectionShape>()("shardfeed/RedisConnection") {}

/** Replaces the password of every URL in a (comma-separated) Redis URL with `***`. */
export const redactUrl = (url: string): string =>
  url
    .split(",")
    .map((part) => part.trim().replace(/^(rediss?:\/\/)([^@/]*)@/, (_, scheme: string, auth: string) => {
      const colon = auth.indexOf(":")
      return colon < 0 ? `${scheme}***@` : `${scheme}${auth.slice(0, colon)}:***@`
    }))
    .join(",")

/** The parts of one Redis node's URL. */
export interface ParsedNode {
  readonly host: string
  readonly port: number
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly db: number
  readonly tls: boolean
}

/** Parses one `redis://` or `rediss://` URL; throws an `Error` naming what is wrong (never the password). */
export const parseNode = (url: string): ParsedNode => {
  const parsed = new URL(url.trim())
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new Error(`unsupported scheme ${parsed.protocol} (use redis:// or rediss://)`)
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) throw new Error("database number must be a non-negative integer")
  return {
    host: parsed.hostname === "" ? "127.0.0.1" : parsed.hostname,
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    db,
    tls: parsed.protocol === "rediss:"
  }
}

/**
 * The options every connection uses. Set explicitly rather than trusting defaults: commands fail
 * fast while disconnected instead of queueing without bound, each command is retried at most
 * once and times out, and reconnection goes on forever with a capped backoff so the store works
 * again as soon as Redis returns.
 *
 * Commands in flight when a connection drops are not sent again after it reconnects (ioredis's
 * default is to re-send them): Redis may have run one and lost only its reply, and running a
 * topic append twice stores its values twice. Such a command fails instead, at once (see
 * `failInFlightOnClose`): its outcome is unknown, which the caller hears as it would of a timeout.
 */
const baseOptions = (options: RedisConnectionOptions): RedisOptions => ({
  protocol: 2,
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  enableAutoPipelining: true,
  connectTimeout: options.connectTimeoutMillis ?? 2_000,
  commandTimeout: options.commandTimeoutMillis ?? 5_000,
  retryStrategy: (times: number) => Math.min(50 * times, 1_000),
  autoResendUnfulfilledCommands: false,
  enableReadyCheck: true
})

/** The credentials and TLS of a node, as ioredis options (every node of a cluster shares the first's). */
export const nodeAuth = (node: ParsedNode) => ({
  ...(node.username === undefined ? {} : { username: node.username }),
  ...(node.password === undefined ? {} : { password: node.password }),
  ...(node.tls ? { tls: {} } : {})
})

/** The nodes a URL names: one, or the comma-separated seed nodes of a Redis Cluster (throws on a malformed one). */
export const parseNodes = (url: string): ReadonlyArray<ParsedNode> => url.split(",").filter((part) => part.trim().length > 0).map(parseNode)

/**
 * A Redis Cluster client on seed `nodes` with the options every cluster client of shardfeed
 * shares (writes and reads on masters, a bounded number of redirections, reconnection forever
 * with a capped backoff) and the caller's own (offline queue, pipelining, node options).
 */
export const clusterClient = (nodes: ReadonlyArray<ParsedNode>, options: ClusterOptions): Cluster =>
  new Cluster(nodes.map((node) => ({ host: node.host, port: node.port })), {
    scaleReads: "master",
    maxRedirections: 16,
    clusterRetryStrategy: (times: number) => Math.min(100 * times, 1_000),
    ...options
  })

const createClient = (options: RedisConnectionOptions, extra: RedisOptions = {}): RedisClient => {
  const nodes = parseNodes(options.url)
  const first = nodes[0]
  if (first === undefined) throw new Error("no Redis URL given")
  const auth = nodeAuth(first)
  if (options.cluster === true || nodes.length > 1) {
    return clusterClient(nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      // ioredis's cluster auto-pipelining rejects pipelines whose commands' slots fall into
      // different allocation groups of one node, so on a cluster every command goes on its own.
      enableAutoPipelining: false,
      redisOptions: { ...baseOptions(options), enableAutoPipelining: false, ...auth }
    })
  }
  return new Redis({ ...baseOptions(options), ...auth, ...extra, host: first.host, port: first.port, db: first.db })
}

/** What a command dropped with its connection fails with (not ioredis's "Connection is closed.", which a cluster client would retry). */
export const IN_FLIGHT_LOST = "the connection to Redis dropped with the command in flight: its outcome is unknown"

/** The part of an ioredis client's state that holds the commands in flight on a closed connection. */
interface InFlight {
  prevCommandQueue?: {
    readonly shift: () => { readonly command: { readonly reject: (error: Error) => void; readonly promise?: Promise<unknown> } } | undefined
  } | null
}

const ignore = () => undefined

/**
 * Fails the commands in flight on a connection as soon as it drops. Without re-sending (see
 * `baseOptions`), ioredis keeps them until their timeout fires, which would stall every caller
 * with a command in flight for `commandTimeoutMillis` after each blip. This reads ioredis's
 * queue of unanswered commands (ioredis is pinned; a test cuts connections and checks the
 * failures say so); if the queue is not where it was, commands fail by their timeout instead.
 */
const failInFlightOnClose = (client: RedisClient): void =>
  forEachConnection(client, (redis) =>
    redis.on("close", () => {
      const state = redis as unknown as InFlight
      const queue = state.prevCommandQueue
      if (queue === undefined || queue === null || typeof queue.shift !== "function") return
      state.prevCommandQueue = null
      // Bounded by the commands that were in flight; nothing is added to this queue any more.
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
        // ioredis sends some commands of its own without waiting for their answer (a SELECT or
        // a re-subscription after reconnecting): failing one must not be an unhandled rejection,
        // which ends a Node process. Callers that wait for theirs still get the error.
        item.command.promise?.catch(ignore)
        item.command.reject(new Error(IN_FLIGHT_LOST))
      }
    }))

/**
 * Calls `each` once for every connection of `client`: the client itself on a standalone Redis,
 * every node's on a Redis Cluster (those it has now and those it connects later).
 */
export const forEachConnection = (client: RedisClient, each: (redis: Redis) => void): void => {
  if (!(client instanceof Cluster)) return each(client)
  const seen = new WeakSet<Redis>()
  const once = (node: Redis) => {
    if (seen.has(node)) return
    seen.add(node)
    each(node)
  }
  for (const node of client.nodes()) once(node)
  client.on("+node", once)
}

/** Describes an ioredis failure without secrets, for `StoreUnavailable` messages. */
export const describeError = (cause: unknown): string => {
  const message = cause instanceof Error ? cause.message : String(cause)
  return redactUrl(message)
}

/** Opens a client and waits until it is ready, or fails with `StoreUnavailable` in bounded time. */
const connect = (options: RedisConnectionOptions, extra?: RedisOptions): Effect.Effect<RedisClient, StoreUnavailable, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = createClient(options, extra)
        failInFlightOnClose(client)
        // Errors are reported through the commands that fail; without a listener ioredis would
        // print every reconnection error. The last one says why a connection never became ready
        // (a refused password, a TLS failure) where `connect` only says it closed.
        let last: unknown
        client.on("error", (error) => {
          last = error
        })
        try {
          await client.connect()
        } catch (cause) {
          client.disconnect()
          throw last === undefined || last === cause ? cause : new Error(`${describeError(cause)} (${describeError(last)})`)
        }
        return client
      },
      catch: (cause) =>
        new StoreUnavailable({ backend: "redis", message: `cannot connect to ${redactUrl(options.url)}: ${describeError(cause)}` })
    }),
    (client) => Effect.promise(() => client.quit().then(() => undefined, () => client.disconnect()))
  )

/**
 * A subscription on a connection of its own. On a standalone Redis it subscribes again itself
 * each time the connection is ready after a drop, rather than leave it to ioredis: ioredis
 * re-subscribes only to the channels whose subscription was confirmed before the drop, so a
 * connection that drops again while re-subscribing (its SUBSCRIBE fails, see
 * `failInFlightOnClose`) would stay unsubscribed for good. A Redis Cluster client re-subscribes
 * through its own subscriber connection.
 */
const subscribeOn = (options: RedisConnectionOptions) =>
(channel: string, onMessage: (message: string) => void, onResubscribed?: () => void) =>
  Effect.gen(function*() {
    const subscriber = yield* connect(options, { autoResubscribe: false })
    subscriber.on("message", (from: string, message: string) => {
      if (from === channel) onMessage(message)
    })
    yield* Effect.tryPromise({
      try: () => subscriber.subscribe(channel),
      catch: (cause) => new StoreUnavailable({ backend: "redis", message: `cannot subscribe to ${channel}: ${describeError(cause)}` })
    })
    if (subscriber instanceof Cluster) return
    // A failed SUBSCRIBE means the connection dropped again: its next "ready" tries again.
    subscriber.on("ready", () => void subscriber.subscribe(channel).then(() => onResubscribed?.(), ignore))
  })

/** Opens a connection for the lifetime of the scope. */
export const make = (options: RedisConnectionOptions): Effect.Effect<RedisConnectionShape, StoreUnavailable, Scope.Scope> =>
  Effect.map(connect(options), (client) => ({
    client,
    redactedUrl: redactUrl(options.url),
    isCluster: client instanceof Cluster,
    duplicate: connect(options),
    subscribe: subscribeOn(options)
  }))

/** The connection as a layer. */
export const layer = (options: RedisConnectionOptions): Layer.Layer<RedisConnection, StoreUnavailable> =>
  Layer.effect(RedisConnection, make(options))
