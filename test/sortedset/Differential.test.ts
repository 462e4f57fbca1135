/**
 * Goal: the sorted-set engine answers every operation exactly as a real Redis ZSET does, and
 * what it acknowledges is what a reload finds.
 *
 * Method: a seeded random sequence of at least 10,000 operations (every operation, mixed flags
 * and bounds, edge scores, repeated and Unicode members, members past the inline key limit) is
 * applied to the engine — over a direct view of a memory store, with a tiny delta bound so that
 * snapshots are rewritten all the time, and reloaded from the store every 1,000 operations — and
 * to the private test redis-server under a random key prefix. Every answer must agree (values
 * equal, or both an error). On a mismatch the sequence is shrunk by delta debugging and the
 * short reproduction is printed with the seed (`ZSET_SEED=<seed>` replays it). At the end, both
 * sets are reloaded and compared in full with Redis.
 *
 * A second test plants a bug in the engine and checks that the harness catches and shrinks it.
 */
import { Effect, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import * as SortedSet from "../../src/sortedset/SortedSet.js"
import {
  agree,
  type Operation,
  type Outcome,
  runEngine,
  runRedis,
  sequence,
  type SetName,
  shrink
} from "./ZsetOperations.js"

const SEED = Number(process.env.ZSET_SEED ?? Math.floor(Math.random() * 2 ** 31))
const LENGTH = Number(process.env.ZSET_OPERATIONS ?? 12_000)
const PREFIX = `zset-diff-${Math.random().toString(36).slice(2, 10)}`
const NAMESPACES: Record<SetName, string> = { score: "zset:score", lex: "zset:lex" }

// Tiny bounds: a snapshot rewrite every few writes and paged loads, so persistence is exercised
// on nearly every operation rather than once.
const TEST_CONFIG: SortedSet.SortedSetConfigShape = {
  memberBytesMax: 64 * 1024,
  membersPerOperationMax: 1_000_000,
  resultMembersMax: 100_000,
  deltaRecordsMax: 16,
  loadChunkSize: 7
}

let redis: Redis
let replays = 0

beforeAll(async () => {
  // RESP2 explicitly: the comparison parses flat [member, score, ...] replies with scores as strings.
  redis = new Redis(inject("redisUrl"), { protocol: 2, maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false })
  await redis.ping()
})

afterAll(async () => {
  await redis.quit()
})

interface Mismatch {
  readonly index: number
  readonly operation: Operation
  readonly engine: Outcome
  readonly redis: Outcome
}

type Engines = Record<SetName, SortedSet.SortedSet>

interface ReplayOptions {
  readonly reloadEvery?: number
  /** Changes the engines before use (the planted-bug test). */
  readonly plant?: (engines: Engines) => Engines
  /** Sees the engines after every operation (statistics). */
  readonly observe?: (engines: Engines, outcome: Outcome) => void
  /** Runs after a sequence without mismatch, with a loader of fresh engines from the store. */
  readonly finish?: (engines: Engines, reload: () => Promise<Engines>, keys: Record<SetName, string>) => Promise<void>
}

/** Replays `operations` from empty sets on both sides; returns the first mismatch, if any. */
const replay = async (operations: ReadonlyArray<Operation>, options: ReplayOptions = {}): Promise<Mismatch | undefined> => {
  const id = `${PREFIX}:${replays++}`
  const keys: Record<SetName, string> = { score: `${id}:score`, lex: `${id}:lex` }
  const runtime = ManagedRuntime.make(MemoryStore.layer)
  try {
    const store = await runtime.runPromise(Effect.gen(function*() {
      return yield* KeyValueStore
    }))
    const view = StoreView.direct(store, "zset-diff")
    const reload = () =>
      runtime.runPromise(
        Effect.all({ score: SortedSet.load(view, NAMESPACES.score), lex: SortedSet.load(view, NAMESPACES.lex) }).pipe(
          Effect.provideService(SortedSet.SortedSetConfig, TEST_CONFIG)
        )
      )
    const plant = options.plant ?? ((engines: Engines) => engines)
    let engines = plant(await reload())
    for (let index = 0; index < operations.length; index++) {
      if (options.reloadEvery !== undefined && index > 0 && index % options.reloadEvery === 0) engines = plant(await reload())
      const operation = operations[index]!
      const engine = await runEngine(engines, view, operation)
      const answer = await runRedis(redis, keys, operation)
      if (!agree(engine, answer)) return { index, operation, engine, redis: answer }
      options.observe?.(engines, engine)
    }
    await options.finish?.(engines, reload, keys)
    return undefined
  } finally {
    // Cleanup through the public API: this file's keys only, never FLUSHALL.
    await redis.del(keys.score, keys.lex)
    await runtime.dispose()
  }
}

/** Shrinks a failing sequence and describes the reproduction. */
const reproduce = async (operations: ReadonlyArray<Operation>, mismatch: Mismatch, options: ReplayOptions = {}) => {
  const failing = operations.slice(0, mismatch.index + 1)
  const short = await shrink(failing, async (candidate) => (await replay(candidate, { plant: options.plant })) !== undefined)
  const last = await replay(short, { plant: options.plant })
  return { short, last }
}

/** JSON that keeps ±Infinity and −0, so a printed reproduction replays exactly. */
const printable = (value: unknown): string =>
  JSON.stringify(value, (_, item) =>
    typeof item === "number" && (!Number.isFinite(item) || Object.is(item, -0)) ? `<${String(Object.is(item, -0) ? "-0" : item)}>` : item)

const contents = async (key: string) => {
  const flat = (await redis.call("ZRANGE", key, "0", "-1", "WITHSCORES")) as Array<string>
  const out: Array<[string, number]> = []
  for (let i = 0; i < flat.length; i += 2) {
    const text = flat[i + 1]!
    const score = text === "inf" ? Infinity : text === "-inf" ? -Infinity : Number(text)
    out.push([flat[i]!, score === 0 ? 0 : score])
  }
  return out
}

const engineContents = (engine: SortedSet.SortedSet) => Array.from(engine.state.entries(), ({ member, score }) => [member, score])

describe("sorted set against a real Redis", () => {
  it(`answers ${LENGTH} seeded random operations as Redis does, and reloads what it acknowledged`, async () => {
    console.log(`zset differential: seed ${SEED}, ${LENGTH} operations (replay with ZSET_SEED=${SEED})`)
    const operations = sequence(SEED, LENGTH)
    const kinds = new Set(operations.map((operation) => `${operation.op}${"query" in operation ? `:${operation.query.by}` : ""}`))
    expect([...kinds].sort()).toEqual([
      "add", "card", "count", "incrBy", "pop", "range:lex", "range:rank", "range:score", "rank", "remove", "removeRange", "score"
    ])
    let finalCards: Record<string, number> = {}
    const largest = { score: 0, lex: 0 }
    let cardTotal = 0
    let errors = 0
    const mismatch = await replay(operations, {
      reloadEvery: 1_000,
      observe: (engines, outcome) => {
        largest.score = Math.max(largest.score, engines.score.state.card)
        largest.lex = Math.max(largest.lex, engines.lex.state.card)
        cardTotal += engines.score.state.card
        if ("error" in outcome) errors++
      },
      finish: async (engines, reload, keys) => {
        const reloaded = await reload()
        for (const name of ["score", "lex"] as const) {
          const expected = await contents(keys[name])
          expect(engineContents(engines[name])).toEqual(expected)
          expect(engineContents(reloaded[name])).toEqual(expected)
          reloaded[name].state.check()
          finalCards[name] = expected.length
        }
      }
    })
    if (mismatch !== undefined) {
      const { short, last } = await reproduce(operations, mismatch)
      const lines = short.map(printable).join("\n")
      console.log(`zset differential FAILED, seed ${SEED}, operation ${mismatch.index}; shrunk to ${short.length}:\n${lines}\n` +
        `last: engine ${printable(last?.engine)} redis ${printable(last?.redis)}`)
      expect.fail(`mismatch at operation ${mismatch.index} (seed ${SEED}): engine ${JSON.stringify(mismatch.engine)}, redis ${JSON.stringify(mismatch.redis)}; shrunk repro of ${short.length} operations printed above`)
    }
    console.log(`zset differential: all ${LENGTH} operations agree; ${errors} refused on both sides; largest sets ` +
      `${JSON.stringify(largest)}, mean score-set size ${(cardTotal / LENGTH).toFixed(0)}; final sizes ${JSON.stringify(finalCards)}`)
    // The sequence must reach sets past Redis's listpack limit (128) to compare its skip list too.
    expect(largest.score).toBeGreaterThan(128)
  }, 300_000)

  it("catches a planted bug and shrinks it to a short reproduction", async () => {
    // The bug: a reverse rank of "a" or "b" is off by one. The harness must notice and shrink to
    // the few operations that expose it.
    const buggy = (member: string, rev: boolean | undefined) => rev === true && (member === "a" || member === "b")
    const plant = (engines: Engines): Engines => ({
      ...engines,
      score: {
        ...engines.score,
        rank: (member, rev) => Effect.map(engines.score.rank(member, rev), (rank) => (buggy(member, rev) && rank !== undefined ? rank + 1 : rank))
      }
    })
    const operations = sequence(SEED ^ 0x5bd1e995, 6_000)
    const mismatch = await replay(operations, { plant })
    expect(mismatch).toBeDefined()
    const { short, last } = await reproduce(operations, mismatch!, { plant })
    console.log(`planted bug shrunk from ${mismatch!.index + 1} to ${short.length} operations: ${printable(short)}`)
    expect(short.length).toBeLessThanOrEqual(3)
    expect(last?.operation).toMatchObject({ op: "rank", rev: true })
    expect(["a", "b"]).toContain((last?.operation as { member: string }).member)
  }, 300_000)
})
