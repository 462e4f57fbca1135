/**
 * `npm run bench -- zset [--members 1000000] [--seconds 5] [--inflight 1000]`: the sorted-set
 * engine on LevelDB against Redis itself, in the same run on the same machine.
 *
 * - Activation: loading a set of `members` from LevelDB after a restart (snapshot only, and again
 *   later with whatever deltas the update phase left).
 * - Updates: `add` of an existing member with a new score, `inflight` at a time, acknowledged
 *   only once committed, through the SortedSet entity with the coalescing `SortedSetClient`
 *   (calls made while one is in flight go as one `Batch` message; group committed by the
 *   runtime); for comparison, the plain entity client (one message per call) and the engine
 *   alone on one staged view per round.
 * - Reads: `rank` of random members and `range` of 100 by rank from random positions, through
 *   the entity (and the engine alone).
 * - Baseline: a private redis-server, pipelined ZADD / ZRANK / ZRANGE WITHSCORES through ioredis,
 *   `inflight` commands per pipeline; Redis keeps the set in memory only.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import { KeyValueStore, type KeyValueStoreShape } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import { Layer } from "effect"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { partitionOf, shardOf } from "../../actors/ShardId.js"
import { defaults } from "../../actors/RuntimeConfig.js"
import * as SortedSet from "../../src/sortedset/SortedSet.js"
import * as SortedSetClient from "../../src/sortedset/SortedSetClient.js"
import * as SortedSetEntity from "../../src/sortedset/SortedSetEntity.js"
import { startRedis } from "../support/RedisServer.js"
import { drive, options, report, type Row, throughput } from "./report.js"
import { random as generator } from "../support/random.js"
import { collectGarbage } from "../support/gc.js"

const PARTITION = "bench"
const NAMESPACE = "zset:bench"
const SETUP_BATCH = 100_000
const RANGE_SIZE = 100

/** Where acknowledged updates go: one round of concurrent updates, resolved when all are acknowledged. */
export interface UpdateTarget {
  readonly round: (updates: ReadonlyArray<SortedSet.ScoredMember>) => Promise<void>
}

/** The engine over a staged view per round, committed in one batch: the runtime's group commit, emulated. */
const engineTarget = (runtime: ManagedRuntime.ManagedRuntime<KeyValueStore, unknown>, store: KeyValueStoreShape, set: SortedSet.SortedSet): UpdateTarget => ({
  round: (updates) =>
    runtime.runPromise(Effect.gen(function*() {
      const view = yield* StoreView.staged(store, PARTITION)
      for (const update of updates) yield* set.add(view, [update])
      yield* store.batch(PARTITION, view.ops())
    }))
})

const member = (i: number) => `member:${i}`


const openLevel = (directory: string) => ManagedRuntime.make(LevelStore.layer({ directory }))

const storeOf = (runtime: ManagedRuntime.ManagedRuntime<KeyValueStore, unknown>) =>
  runtime.runPromise(Effect.gen(function*() {
    return yield* KeyValueStore
  }))

/** Fills the set through the engine, 100,000 members per committed batch. */
const fill = async (runtime: ManagedRuntime.ManagedRuntime<KeyValueStore, unknown>, members: number, random: () => number) => {
  const store = await storeOf(runtime)
  await runtime.runPromise(Effect.gen(function*() {
    const set = yield* SortedSet.load(StoreView.direct(store, PARTITION), NAMESPACE)
    for (let base = 0; base < members; base += SETUP_BATCH) {
      const view = yield* StoreView.staged(store, PARTITION)
      const batch = Array.from({ length: Math.min(SETUP_BATCH, members - base) }, (_, i) => ({ member: member(base + i), score: Math.floor(random() * 1e9) }))
      yield* set.add(view, batch)
      yield* store.batch(PARTITION, view.ops())
    }
  }))
}

const timedLoad = async (runtime: ManagedRuntime.ManagedRuntime<KeyValueStore, unknown>) => {
  const store = await storeOf(runtime)
  const started = performance.now()
  const cpu = process.cpuUsage()
  const set = await runtime.runPromise(SortedSet.load(StoreView.direct(store, PARTITION), NAMESPACE))
  const used = process.cpuUsage(cpu)
  // CPU time too: on a shared machine the wall time also counts other processes' turns.
  return { set, store, millis: performance.now() - started, cpuMillis: (used.user + used.system) / 1000 }
}

/** Activates the set after a restart, measures updates and reads, then leaves the most deltas a load may meet. */
const measureActive = async (directory: string, members: number, seconds: number, inflight: number, random: () => number) => {
  const runtime = openLevel(directory)
  try {
    collectGarbage()
    const heapBefore = process.memoryUsage().heapUsed
    const { set, store, millis: loadMillis, cpuMillis: loadCpuMillis } = await timedLoad(runtime)
    collectGarbage()
    const bytesPerMember = (process.memoryUsage().heapUsed - heapBefore) / members
    const target = engineTarget(runtime, store, set)
    const randomUpdates = () => Array.from({ length: inflight }, () => ({ member: member(Math.floor(random() * members)), score: Math.floor(random() * 1e9) }))
    const updates = await throughput(async () => {
      await target.round(randomUpdates())
      return inflight
    }, seconds * 1000)
    const ranks = await throughput(() =>
      runtime.runPromise(Effect.gen(function*() {
        for (let i = 0; i < inflight; i++) yield* set.rank(member(Math.floor(random() * members)))
        return inflight
      })), seconds * 1000)
    const ranges = await throughput(() =>
      runtime.runPromise(Effect.gen(function*() {
        for (let i = 0; i < inflight; i++) {
          const start = Math.floor(random() * (members - RANGE_SIZE))
          const got = yield* set.range({ by: "rank", min: start, max: start + RANGE_SIZE - 1 })
          if (got.length !== RANGE_SIZE) throw new Error("short range")
        }
        return inflight
      })), seconds * 1000)
    // Worst case for the next activation: as many deltas as fit before a snapshot rewrite.
    const { deltaRecordsMax } = await runtime.runPromise(Effect.gen(function*() {
      return yield* SortedSet.SortedSetConfig
    }))
    while (set.storage().deltaRecords + inflight <= deltaRecordsMax) await target.round(randomUpdates())
    return { loadMillis, loadCpuMillis, bytesPerMember, updates, ranks, ranges, deltas: set.storage().deltaRecords }
  } finally {
    await runtime.dispose()
  }
}

/** The engine side: fill, activate and measure, then activate again with the deltas left behind. */
const measureEngine = async (members: number, seconds: number, inflight: number) => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-bench-zset-"))
  const random = generator(1)
  try {
    const setupRuntime = openLevel(directory)
    const setupStarted = performance.now()
    await fill(setupRuntime, members, random)
    const setupMillis = performance.now() - setupStarted
    await setupRuntime.dispose()
    const active = await measureActive(directory, members, seconds, inflight, random)
    // A second restart, the first set gone as it would be in a new process.
    collectGarbage()
    const againRuntime = openLevel(directory)
    const again = await timedLoad(againRuntime)
    const card = again.set.state.card
    await againRuntime.dispose()
    if (card !== members) throw new Error(`reloaded ${card} members, expected ${members}`)
    return { ...active, setupMillis, loadWithDeltasMillis: again.millis, loadWithDeltasCpuMillis: again.cpuMillis }
  } finally {
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

const ENTITY_KEY = "bench"

/**
 * The entity side: the set filled through the engine where the `zset` entity keeps it (its
 * shard's partition, its own scope), then updates and reads as asks through the entity client.
 */
const measureEntity = async (members: number, seconds: number, inflight: number) => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-bench-zset-entity-"))
  const random = generator(3)
  try {
    const setup = openLevel(directory)
    const store = await storeOf(setup)
    const view = StoreView.scoped(StoreView.direct(store, partitionOf(shardOf("zset", ENTITY_KEY, defaults.shardCount))), {
      namespacePrefix: "zset.",
      keyPrefix: new TextEncoder().encode(`${ENTITY_KEY}\u0000`)
    })
    await setup.runPromise(Effect.gen(function*() {
      const set = yield* SortedSet.load(view, "set")
      for (let base = 0; base < members; base += SETUP_BATCH) {
        const staged = yield* StoreView.stagedOver(view)
        const batch = Array.from({ length: Math.min(SETUP_BATCH, members - base) }, (_, i) => ({ member: member(base + i), score: Math.floor(random() * 1e9) }))
        yield* set.add(staged, batch)
        for (const op of staged.ops()) {
          if (op.op === "put") yield* view.put(op.namespace, op.key, op.value)
          else if (op.op === "delete") yield* view.delete(op.namespace, op.key)
        }
      }
    }))
    await setup.dispose()
    const runtime = ManagedRuntime.make(SortedSetEntity.layer.pipe(Layer.provideMerge(EntityRuntime.layerLocal), Layer.provideMerge(LevelStore.layer({ directory }))))
    try {
      // The coalescing client (what the library and the HTTP routes use); the plain entity
      // client, one message per call, is measured for updates too.
      const plain = await runtime.runPromise(SortedSetEntity.client)
      const plainAsk = plain.promise.ask as (id: string, tag: string, payload?: unknown) => Promise<any>
      const client = await runtime.runPromise(SortedSetClient.make)
      const ask = client.promise as (id: string, tag: string, payload: object) => Promise<any>
      const activated = performance.now()
      await ask(ENTITY_KEY, "Card", {})
      const activationMillis = performance.now() - activated
      const update = (call: typeof ask) => () =>
        call(ENTITY_KEY, "Add", { members: [{ member: member(Math.floor(random() * members)), score: Math.floor(random() * 1e9) }] })
      const updates = await drive(inflight, seconds * 1000, update(ask))
      const plainUpdates = await drive(inflight, seconds * 1000, update(plainAsk))
      const ranks = await drive(inflight, seconds * 1000, () => ask(ENTITY_KEY, "Rank", { member: member(Math.floor(random() * members)) }))
      const ranges = await drive(inflight, seconds * 1000, async () => {
        const start = Math.floor(random() * (members - RANGE_SIZE))
        const got = await ask(ENTITY_KEY, "Range", { by: "rank", min: start, max: start + RANGE_SIZE - 1 })
        if (got.members.length !== RANGE_SIZE) throw new Error("short range")
      })
      return { activationMillis, updates, plainUpdates, ranks, ranges }
    } finally {
      await runtime.dispose()
    }
  } finally {
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** The Redis side: the same set, the same operations, pipelined `inflight` at a time. */
const measureRedis = async (members: number, seconds: number, inflight: number) => {
  const server = await startRedis()
  const redis = new Redis(server.url, { protocol: 2, maxRetriesPerRequest: 1, enableOfflineQueue: true, enableAutoPipelining: false })
  const random = generator(2)
  const key = "bench:zset"
  try {
    for (let base = 0; base < members; base += 10_000) {
      const args: Array<string | number> = []
      for (let i = base; i < Math.min(members, base + 10_000); i++) args.push(Math.floor(random() * 1e9), member(i))
      await redis.call("ZADD", key, ...args.map(String))
    }
    const pipelined = (build: (pipeline: ReturnType<Redis["pipeline"]>) => void) => async () => {
      const pipeline = redis.pipeline()
      for (let i = 0; i < inflight; i++) build(pipeline)
      const results = await pipeline.exec()
      if (results === null || results.some(([error]) => error !== null)) throw new Error("pipeline failed")
      return inflight
    }
    const updates = await throughput(pipelined((pipeline) => pipeline.zadd(key, Math.floor(random() * 1e9), member(Math.floor(random() * members)))), seconds * 1000)
    const ranks = await throughput(pipelined((pipeline) => pipeline.zrank(key, member(Math.floor(random() * members)))), seconds * 1000)
    const ranges = await throughput(pipelined((pipeline) => {
      const start = Math.floor(random() * (members - RANGE_SIZE))
      pipeline.zrange(key, String(start), String(start + RANGE_SIZE - 1), "WITHSCORES")
    }), seconds * 1000)
    return { updates, ranks, ranges }
  } finally {
    await redis.quit()
    await server.stop()
  }
}

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const option = options(args)
  const members = Number(option["members"] ?? 1_000_000)
  const seconds = Number(option["seconds"] ?? 5)
  const inflight = Number(option["inflight"] ?? 1_000)
  const entity = await measureEntity(members, seconds, inflight)
  const engine = await measureEngine(members, seconds, inflight)
  const redis = await measureRedis(members, seconds, inflight)
  const count = members.toLocaleString("en-US")
  const rows: Array<Row> = [
    { name: `load ${count} members (level, snapshot)`, value: engine.loadMillis, unit: "ms", target: "< 2,000 ms" },
    { name: `  of which CPU time`, value: engine.loadCpuMillis, unit: "ms" },
    { name: `load ${count} members + ${engine.deltas.toLocaleString("en-US")} deltas`, value: engine.loadWithDeltasMillis, unit: "ms", target: "< 2,000 ms" },
    { name: `  of which CPU time`, value: engine.loadWithDeltasCpuMillis, unit: "ms" },
    { name: `entity activation (load ${count} members)`, value: entity.activationMillis, unit: "ms", target: "< 2,000 ms" },
    {
      name: `updates, ${inflight} in flight, persisted, via entity`,
      value: entity.updates,
      unit: "ops/s",
      baseline: "Redis ZADD (memory)",
      ratio: entity.updates / redis.updates,
      target: "≥ 0.3x"
    },
    {
      name: "  updates, one message per call (no coalescing)",
      value: entity.plainUpdates,
      unit: "ops/s",
      baseline: "Redis ZADD (memory)",
      ratio: entity.plainUpdates / redis.updates
    },
    { name: "rank, via entity", value: entity.ranks, unit: "ops/s", baseline: "Redis ZRANK", ratio: entity.ranks / redis.ranks, target: "≥ 0.5x" },
    {
      name: `range of ${RANGE_SIZE} by rank, via entity`,
      value: entity.ranges,
      unit: "ops/s",
      baseline: "Redis ZRANGE",
      ratio: entity.ranges / redis.ranges,
      target: "≥ 0.5x"
    },
    { name: "updates, engine alone (one staged view per round)", value: engine.updates, unit: "ops/s", baseline: "Redis ZADD", ratio: engine.updates / redis.updates },
    { name: "rank, engine alone", value: engine.ranks, unit: "ops/s", baseline: "Redis ZRANK", ratio: engine.ranks / redis.ranks },
    { name: `range of ${RANGE_SIZE}, engine alone`, value: engine.ranges, unit: "ops/s", baseline: "Redis ZRANGE", ratio: engine.ranges / redis.ranges },
    { name: "Redis ZADD, pipelined", value: redis.updates, unit: "ops/s" },
    { name: "Redis ZRANK, pipelined", value: redis.ranks, unit: "ops/s" },
    { name: `Redis ZRANGE ${RANGE_SIZE} WITHSCORES, pipelined`, value: redis.ranges, unit: "ops/s" },
    { name: "heap per member after load (strings included)", value: engine.bytesPerMember, unit: "bytes" },
    { name: `setup: fill ${count} members through the engine`, value: engine.setupMillis, unit: "ms" }
  ]
  report("zset", rows, { members, seconds, inflight })
}
