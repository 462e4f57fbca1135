/**
 * The process's ioredis connection as Effect's own `effect/persistence` `Redis` service, so
 * Effect's Redis-backed modules (rate limiter, persisted queue, ...) run on the same connection
 * settings as the Redis store. Commands go through the shared client; subscriptions and
 * reserved connections get connections of their own, closed with their scope.
 */
import { Effect, Layer } from "effect"
import { Redis } from "effect/persistence"
import { describeError, type RedisClient, RedisConnection, type RedisConnectionShape } from "./RedisConnection.js"

const failure = (cause: unknown) => new Redis.RedisError({ cause: new Error(describeError(cause)) })

const sender = (client: RedisClient) =>
<A = unknown>(command: string, ...args: ReadonlyArray<string>): Effect.Effect<A, Redis.RedisError> =>
  Effect.tryPromise({ try: () => client.call(command, ...args) as Promise<A>, catch: failure })

/** Builds Effect's `Redis` service over a connection. */
export const make = (connection: RedisConnectionShape) =>
  Redis.make({
    send: sender(connection.client),
    subscribe: (channel, onMessage) =>
      Effect.gen(function*() {
        yield* Effect.mapError(connection.subscribe(channel, (message) => onMessage({ channel, message })), failure)
        // The listener lives until the scope closes; the subscription's connection quits then.
        return Effect.never
      }),
    connect: Effect.gen(function*() {
      const client = (connection.client as unknown as { duplicate(): RedisClient }).duplicate()
      client.on("error", () => undefined)
      yield* Effect.tryPromise({ try: () => client.connect(), catch: failure })
      return { send: sender(client), close: Effect.sync(() => client.disconnect()) }
    })
  })

/** Effect's `Redis` service over the process's `RedisConnection`. */
export const layer: Layer.Layer<Redis.Redis, never, RedisConnection> = Layer.effect(
  Redis.Redis,
  Effect.flatMap(RedisConnection, make)
)
