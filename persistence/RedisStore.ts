/**
 * The Redis backend (ioredis), for standalone Redis and Redis Cluster: the shared store that lets
 * shards move between worker processes. Each namespace is a ZSET of keys (lexicographic order,
 * bytewise, as LevelDB's) beside a HASH of values; a partition's keys share one hash slot, and a
 * batch is one Lua script that checks the fence and writes (see `internal/redisScripts.ts`).
 *
 * Durability is Redis's own: with `appendonly yes` and `appendfsync always` an acknowledged write
 * survives a Redis restart; with `everysec` up to a second may be lost; without AOF, all of it.
 */
import { Effect, Layer, Option, type Scope, Stream } from "effect"
import { toLatin1 } from "./internal/bytes.js"
import * as Layout from "./internal/layout.js"
import * as RedisKeys from "./internal/redisKeys.js"
import * as Scripts from "./internal/redisScripts.js"
import { layerStores } from "./IndexedStore.js"
import { describeError, IN_FLIGHT_LOST, type RedisClient, RedisConnection, type RedisConnectionOptions } from "./RedisConnection.js"
import * as Connection from "./RedisConnection.js"
import {
  type BatchOutcome,
  type Entry,
  type ExportRecord,
  type KeyRange,
  type PartitionBatch,
  StoreBackend,
  type StoreBackendShape
} from "./StoreBackend.js"
import { type BackendError, InvalidArgument, StoreClosed, StoreUnavailable } from "./StoreError.js"

/** Options of the Redis backend. */
export interface RedisStoreOptions {
  /** Prefix of every key (default `sf`); it isolates stores sharing one Redis. No `{`, `}` or `:`. */
  readonly keyPrefix?: string | undefined
}

type Arg = string | Buffer

/** The script commands this module defines on its client. */
interface ScriptCommands {
  sfWriteBuffer(numberOfKeys: number, ...args: Array<Arg>): Promise<Array<number>>
  sfScanBuffer(numberOfKeys: number, ...args: Array<Arg>): Promise<Array<Buffer>>
  sfRegisterEpoch(epochKey: string, epoch: string): Promise<number>
}

const buffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
const view = (bytes: Buffer): Uint8Array => new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Replies that mean "not available right now"; any other Redis error reply is a bug. */
const TRANSIENT_REPLY = /^(LOADING|CLUSTERDOWN|TRYAGAIN|MOVED|ASK|MASTERDOWN|READONLY|BUSY|OOM|NOREPLICAS)\b/

/** Translates an ioredis failure: the one place this backend reads driver errors. */
const translate = (cause: unknown): Effect.Effect<never, BackendError> => {
  const name = (cause as { name?: unknown } | undefined)?.name
  const message = describeError(cause)
  if (name === "ReplyError" && !TRANSIENT_REPLY.test(message)) {
    return Effect.die(new Error(`Redis store script failed: ${message}`))
  }
  // A command whose connection dropped with it in flight, or that timed out, may have run.
  const outcomeUnknown = message.includes(IN_FLIGHT_LOST) || TIMED_OUT.test(message)
  return Effect.fail(new StoreUnavailable({ backend: "redis", message, ...(outcomeUnknown ? { outcomeUnknown } : {}) }))
}

/** ioredis's words for a command that got no reply within `commandTimeout`. */
const TIMED_OUT = /^Command timed out/

const lowerBound = (range: KeyRange): Arg =>
  range.gt !== undefined
    ? Buffer.concat([Buffer.from("("), buffer(range.gt)])
    : range.gte !== undefined
    ? Buffer.concat([Buffer.from("["), buffer(range.gte)])
    : "-"

const upperBound = (range: KeyRange): Arg =>
  range.lt !== undefined
    ? Buffer.concat([Buffer.from("("), buffer(range.lt)])
    : range.lte !== undefined
    ? Buffer.concat([Buffer.from("["), buffer(range.lte)])
    : "+"

interface Group {
  readonly index: number
  readonly puts: Map<string, Uint8Array>
  readonly deletes: Set<string>
}

/**
 * Encodes one partition batch as the `write` script's KEYS and ARGV. Puts and deletes are reduced
 * to the last op per key, so the script may apply each namespace's writes in two grouped calls.
 */
const encodeWrite = (keys: RedisKeys.RedisKeys, batch: PartitionBatch): Array<Arg> => {
  const groups = new Map<string, Group>()
  const groupOf = (namespace: string): Group => {
    let group = groups.get(namespace)
    if (group === undefined) {
      group = { index: groups.size + 1, puts: new Map(), deletes: new Set() }
      groups.set(namespace, group)
    }
    return group
  }
  const appends: Array<Arg> = []
  let appendCount = 0
  for (const op of batch.ops) {
    if (op._tag === "Append") {
      const entries = groupOf(Layout.TOPIC_NAMESPACE)
      const positions = groupOf(Layout.POSITION_NAMESPACE)
      appendCount++
      appends.push(
        String(entries.index),
        String(positions.index),
        buffer(Layout.topicPrefix(op.topic)),
        buffer(Layout.positionKey(op.topic)),
        String(op.values.length),
        ...op.values.map(buffer)
      )
      continue
    }
    const group = groupOf(op.namespace)
    const key = toLatin1(op.key)
    if (op._tag === "Put") {
      group.deletes.delete(key)
      group.puts.set(key, op.value)
    } else {
      group.puts.delete(key)
      group.deletes.add(key)
    }
  }
  const keyArgs: Array<Arg> = [keys.epoch(batch.partition)]
  const groupArgs: Array<Arg> = []
  for (const [namespace, group] of groups) {
    keyArgs.push(keys.sortedKeys(batch.partition, namespace), keys.values(batch.partition, namespace))
    groupArgs.push(String(group.puts.size), String(group.deletes.size))
    for (const [key, value] of group.puts) groupArgs.push(Buffer.from(key, "latin1"), buffer(value))
    for (const key of group.deletes) groupArgs.push(Buffer.from(key, "latin1"))
  }
  return [
    String(keyArgs.length),
    ...keyArgs,
    batch.epoch === undefined ? "" : String(batch.epoch),
    String(groups.size),
    ...groupArgs,
    String(appendCount),
    ...appends
  ] as Array<Arg>
}

const decodeOutcome = (reply: Array<number>): BatchOutcome =>
  reply[0] === 1
    ? { _tag: "Committed", firstIndexes: reply.slice(1).map(Number) }
    : { _tag: "Fenced", currentEpoch: Number(reply[1]) }

/** Lists every namespace of the store on one node, each once. */
async function* namespacesOn(node: RedisClient, keys: RedisKeys.RedisKeys) {
  const seen = new Set<string>()
  let cursor = "0"
  // SCAN terminates when the cursor returns to 0; each round is bounded by COUNT.
  do {
    const [next, names] = await node.scan(cursor, "MATCH", keys.valuesPattern, "COUNT", 1_000)
    cursor = next
    for (const name of names) {
      if (seen.has(name)) continue
      seen.add(name)
      const parsed = keys.parseValues(name)
      if (parsed !== undefined) yield parsed
    }
  } while (cursor !== "0")
}

/** Builds a Redis backend over the `RedisConnection` of this process. */
export const make = (options: RedisStoreOptions = {}): Effect.Effect<StoreBackendShape, InvalidArgument, RedisConnection | Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.keyPrefix ?? "sf"
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) {
      return yield* Effect.fail(new InvalidArgument({ field: "keyPrefix", message: "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' or '-'" }))
    }
    const connection = yield* RedisConnection
    const client = connection.client
    client.defineCommand("sfWrite", { lua: Scripts.write })
    client.defineCommand("sfScan", { lua: Scripts.scan })
    client.defineCommand("sfRegisterEpoch", { lua: Scripts.registerEpoch, numberOfKeys: 1 })
    const commands = client as unknown as ScriptCommands
    const keys = RedisKeys.make(prefix)
    let closed = false
    yield* Effect.addFinalizer(() => Effect.sync(() => { closed = true }))

    const call = <A>(f: () => Promise<A>): Effect.Effect<A, BackendError> =>
      Effect.suspend(() =>
        closed
          ? Effect.fail(new StoreClosed({ backend: "redis" }))
          : Effect.tryPromise({ try: f, catch: (cause) => cause }).pipe(Effect.catch(translate))
      )

    const scan = (partition: string, namespace: string, range: KeyRange, reverse: boolean, limit: number) =>
      call(() =>
        commands.sfScanBuffer(
          2,
          keys.sortedKeys(partition, namespace),
          keys.values(partition, namespace),
          lowerBound(range),
          upperBound(range),
          reverse ? "1" : "0",
          String(limit)
        )
      ).pipe(Effect.map((flat) => {
        const out: Array<Entry> = []
        for (let i = 0; i < flat.length; i += 2) out.push({ key: view(flat[i]!), value: view(flat[i + 1]!) })
        return out
      }))

    const write = (batches: ReadonlyArray<PartitionBatch>) =>
      call(() =>
        // Issued together: ioredis pipelines them into few socket writes (and routes each to its
        // slot's node on a cluster); each script is atomic on its own.
        Promise.allSettled(batches.map((batch) => {
          const [numberOfKeys, ...args] = encodeWrite(keys, batch)
          return commands.sfWriteBuffer(Number(numberOfKeys), ...args)
        }))
      ).pipe(Effect.flatMap((settled) => {
        const failed = settled.find((one) => one.status === "rejected")
        if (failed === undefined) return Effect.succeed(settled.map((one) => decodeOutcome((one as PromiseFulfilledResult<Array<number>>).value)))
        // The batches together are not atomic: when some committed, the write as a whole was
        // applied in part, which its callers must hear as an unknown outcome.
        const partly = settled.some((one) => one.status === "fulfilled")
        return Effect.mapError(translate(failed.reason), (error) =>
          partly && error._tag === "StoreUnavailable" ? new StoreUnavailable({ backend: error.backend, message: error.message, outcomeUnknown: true }) : error)
      }))

    const nodes = (): ReadonlyArray<RedisClient> =>
      "nodes" in client && connection.isCluster ? (client as import("ioredis").Cluster).nodes("master") : [client]

    const exportAll: Stream.Stream<ExportRecord, BackendError> = Stream.flatMap(
      Stream.flatMap(
        Stream.fromIterable(nodes()),
        (node) =>
          Stream.fromAsyncIterable(namespacesOn(node, keys), (cause) => cause).pipe(
            Stream.catch((cause) => Stream.fromEffect(translate(cause)))
          )
      ),
      ({ namespace, partition }) =>
        Stream.map(
          Stream.paginate({} as KeyRange, (range) =>
            Effect.map(scan(partition, namespace, range, false, 1_000), (entries) => {
              const last = entries[entries.length - 1]
              return [
                entries,
                last === undefined || entries.length < 1_000 ? Option.none() : Option.some<KeyRange>({ gt: last.key })
              ] as const
            })),
          (entry): ExportRecord => ({ partition, namespace, key: entry.key, value: entry.value })
        )
    )

    const backend: StoreBackendShape = {
      name: "redis",
      supports: { persistent: true, shared: true },
      get: (partition, namespace, key) =>
        call(() => client.hgetBuffer(keys.values(partition, namespace), buffer(key))).pipe(
          Effect.map((value) => (value === null ? undefined : view(value)))
        ),
      getMany: (partition, namespace, keyList) =>
        keyList.length === 0
          ? Effect.succeed([])
          : call(() => client.hmgetBuffer(keys.values(partition, namespace), ...keyList.map(buffer))).pipe(
            Effect.map((values) => values.map((value) => (value === null ? undefined : view(value))))
          ),
      scan,
      write,
      registerEpoch: (partition, epoch) =>
        call(() => commands.sfRegisterEpoch(keys.epoch(partition), String(epoch))).pipe(Effect.map(Number)),
      epoch: (partition) => call(() => client.get(keys.epoch(partition))).pipe(Effect.map((value) => (value === null ? 0 : Number(value)))),
      export: exportAll
    }
    return backend
  })

/** The Redis backend over the process's `RedisConnection`. */
export const layerBackend = (options: RedisStoreOptions = {}): Layer.Layer<StoreBackend, InvalidArgument, RedisConnection> =>
  Layer.effect(StoreBackend, make(options))

/** Redis-backed stores over a new connection (standalone or cluster, from the URL). */
export const layer = (options: RedisStoreOptions & RedisConnectionOptions) =>
  layerStores(layerBackend(options)).pipe(Layer.provideMerge(Connection.layer(options)))
