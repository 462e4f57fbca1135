/**
 * `npm run bench -- store [--entries 200000] [--rounds 3]`: the storage layer against the raw
 * drivers, on 100-byte values, in one run. Rounds alternate between shardfeed and the baseline so
 * that load from elsewhere on the machine hits both alike; each figure is the median round.
 *
 * - level batched puts (1,000 per batch) vs raw classic-level `batch()` of the same keys/values
 * - level scan of 100,000 entries vs a raw classic-level iterator (`nextv`)
 * - redis batched puts vs raw ioredis pipelined SETs of the same keys
 * - redis fenced batches vs unfenced batches (the cost of the fence check)
 */
import { ClassicLevel } from "classic-level"
import { Effect, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as RedisStore from "../../persistence/RedisStore.js"
import { startRedis } from "../support/RedisServer.js"
import { options, report, type Row } from "./report.js"

const BATCH = 1_000

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const dataset = (count: number) => {
  const value = new Uint8Array(100).fill(0x61)
  const keys = Array.from({ length: count }, (_, i) => `key-${String(i).padStart(9, "0")}`)
  return { keys, value }
}

/** Times `f` and returns items per second. */
const rate = async (items: number, f: () => Promise<void>): Promise<number> => {
  const started = performance.now()
  await f()
  return (items * 1000) / (performance.now() - started)
}

const tempDir = (label: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), `shardfeed-bench-${label}-`))

const levelPuts = async (keys: ReadonlyArray<string>, value: Uint8Array) => {
  const directory = tempDir("level")
  const runtime = ManagedRuntime.make(LevelStore.layer({ directory }))
  const store = await runtime.runPromise(KeyValueStore)
  try {
    return await rate(keys.length, async () => {
      for (let i = 0; i < keys.length; i += BATCH) {
        const ops = keys.slice(i, i + BATCH).map((key) => ({ op: "put" as const, namespace: "bench", key, value }))
        await Effect.runPromise(store.batch("p1", ops))
      }
    })
  } finally {
    await runtime.dispose()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

const rawLevelPuts = async (keys: ReadonlyArray<string>, value: Uint8Array) => {
  const directory = tempDir("raw-level")
  const db = new ClassicLevel<string, Uint8Array>(directory, { valueEncoding: "view" })
  await db.open()
  try {
    return await rate(keys.length, async () => {
      for (let i = 0; i < keys.length; i += BATCH) {
        await db.batch(keys.slice(i, i + BATCH).map((key) => ({ type: "put" as const, key, value })))
      }
    })
  } finally {
    await db.close()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** Fills a store and a raw database with the same 100,000 entries, then scans each once per round. */
const scans = async (rounds: number) => {
  const { keys, value } = dataset(100_000)
  const directory = tempDir("level-scan")
  const rawDirectory = tempDir("raw-scan")
  const runtime = ManagedRuntime.make(LevelStore.layer({ directory }))
  const store = await runtime.runPromise(KeyValueStore)
  const db = new ClassicLevel<string, Uint8Array>(rawDirectory, { valueEncoding: "view" })
  await db.open()
  try {
    for (let i = 0; i < keys.length; i += BATCH) {
      const slice = keys.slice(i, i + BATCH)
      await Effect.runPromise(store.batch("p1", slice.map((key) => ({ op: "put" as const, namespace: "bench", key, value }))))
      await db.batch(slice.map((key) => ({ type: "put" as const, key, value })))
    }
    const ours: Array<number> = []
    const raw: Array<number> = []
    const rawText: Array<number> = []
    const rawScan = (encodings: object) => async () => {
      const iterator = db.iterator({ limit: 100_000, ...encodings })
      let count = 0
      for (;;) {
        const entries = await iterator.nextv(100_000)
        if (entries.length === 0) break
        count += entries.length
      }
      await iterator.close()
      if (count !== keys.length) throw new Error(`raw scan returned ${count}`)
    }
    for (let round = 0; round < rounds; round++) {
      ours.push(await rate(keys.length, async () => {
        const entries = await Effect.runPromise(store.scan("p1", "bench", { limit: 100_000 }))
        if (entries.length !== keys.length) throw new Error(`scan returned ${entries.length}`)
      }))
      // Binary keys and values, as the store's contract has them: the like-for-like baseline.
      raw.push(await rate(keys.length, rawScan({ keyEncoding: "buffer", valueEncoding: "buffer" })))
      // String keys: faster (no Buffer per key) but not binary-safe; shown for reference.
      rawText.push(await rate(keys.length, rawScan({})))
    }
    return { ours: median(ours), raw: median(raw), rawText: median(rawText) }
  } finally {
    await runtime.dispose()
    await db.close()
    Fs.rmSync(directory, { recursive: true, force: true })
    Fs.rmSync(rawDirectory, { recursive: true, force: true })
  }
}

const redisRuns = async (url: string, keys: ReadonlyArray<string>, value: Uint8Array, rounds: number) => {
  const runtime = ManagedRuntime.make(RedisStore.layer({ url, keyPrefix: "bench" }))
  const store = await runtime.runPromise(KeyValueStore)
  const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true })
  const buffer = Buffer.from(value)
  await Effect.runPromise(store.registerEpoch("p1", 1))
  const batched = (epoch: number | undefined) => () =>
    rate(keys.length, async () => {
      for (let i = 0; i < keys.length; i += BATCH) {
        const ops = keys.slice(i, i + BATCH).map((key) => ({ op: "put" as const, namespace: "bench", key, value }))
        await Effect.runPromise(store.batch("p1", ops, { epoch }))
      }
    })
  const pipelined = () =>
    rate(keys.length, async () => {
      for (let i = 0; i < keys.length; i += BATCH) {
        const pipeline = client.pipeline()
        for (const key of keys.slice(i, i + BATCH)) pipeline.set(`raw:${key}`, buffer)
        await pipeline.exec()
      }
    })
  const results = { ours: [] as Array<number>, raw: [] as Array<number>, fenced: [] as Array<number> }
  try {
    for (let round = 0; round < rounds; round++) {
      results.ours.push(await batched(undefined)())
      results.raw.push(await pipelined())
      results.fenced.push(await batched(1)())
    }
  } finally {
    client.disconnect()
    await runtime.dispose()
  }
  return { ours: median(results.ours), raw: median(results.raw), fenced: median(results.fenced) }
}

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const flags = options(args)
  const entries = Number(flags.entries ?? 200_000)
  const rounds = Number(flags.rounds ?? 3)
  const { keys, value } = dataset(entries)
  const levelOurs: Array<number> = []
  const levelRaw: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    levelOurs.push(await levelPuts(keys, value))
    levelRaw.push(await rawLevelPuts(keys, value))
  }
  const scan = await scans(rounds)
  const redis = await startRedis()
  let redisFigures: { ours: number; raw: number; fenced: number }
  try {
    redisFigures = await redisRuns(redis.url, keys, value, rounds)
  } finally {
    await redis.stop()
  }
  const level = { ours: median(levelOurs), raw: median(levelRaw) }
  const rows: Array<Row> = [
    { name: "level batched puts", value: level.ours, unit: "puts/s", baseline: "raw classic-level batch()", ratio: level.ours / level.raw, target: ">= 0.8x" },
    { name: "raw classic-level batch()", value: level.raw, unit: "puts/s" },
    { name: "level scan of 100,000", value: scan.ours, unit: "entries/s", baseline: "raw iterator, Buffer keys", ratio: scan.ours / scan.raw, target: ">= 0.8x" },
    { name: "raw classic-level iterator (Buffer keys)", value: scan.raw, unit: "entries/s" },
    { name: "raw classic-level iterator (string keys)", value: scan.rawText, unit: "entries/s", baseline: "ours / this", ratio: scan.ours / scan.rawText },
    { name: "redis batched puts", value: redisFigures.ours, unit: "puts/s", baseline: "ioredis pipelined SET", ratio: redisFigures.ours / redisFigures.raw, target: ">= 0.8x" },
    { name: "ioredis pipelined SET", value: redisFigures.raw, unit: "puts/s" },
    { name: "redis fenced batched puts", value: redisFigures.fenced, unit: "puts/s", baseline: "unfenced batch time / fenced", ratio: redisFigures.ours / redisFigures.fenced, target: "<= 1.25x (time)" }
  ]
  report("store", rows, { entries, rounds, batch: BATCH, valueBytes: 100 })
}

